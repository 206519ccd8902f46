package redis

// Doer is an optional interface of a Conn: a Conn that implements it sends
// any command. The library sends through it only commands that read
// (INFO, TIME, CONFIG GET and, to see whether the server runs scripts,
// EVAL and EVALSHA of a script that reads nothing), for
// Redsync.Check; a Conn without it is checked through Eval, with a
// script that calls INFO and TIME. Every adapter in this project
// implements it.
//
// Do sends args, the command name first, within the context given to
// Pool.Get, and returns the reply as Eval does (see the package comment):
// nil, an int64, a string or a []byte, a []any; a map reply (RESP3) as a
// map, with keys of type string or any, or as a []any of keys and values,
// whichever the client library returns. An error reply is the client's
// error. A cluster or ring client sends a command without a key to the
// node of its choosing.
type Doer interface {
	Do(args ...string) (any, error)
}
