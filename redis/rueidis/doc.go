// Package rueidis adapts github.com/redis/rueidis, through its go-redis
// style API rueidiscompat, to redsync's redis.Pool. Build the Cmdable with
// rueidiscompat.NewAdapter around any rueidis.Client (standalone, cluster or
// sentinel).
//
// It lives in the root module, as in redsync: go get
// github.com/quorumlock/redsync brings it, and a program that does not
// import it neither downloads nor builds rueidis (module graph pruning).
//
// The context given to Pool.Get is passed to every command of the returned
// Conn. A context that is already done fails the command before anything is
// written to the server, and rueidis stops waiting for a reply the moment
// the context is done (cancelled or past its deadline), returning ctx.Err().
// A command cut short is not withdrawn: a server that was merely slow may
// still execute it.
//
// Errors are rueidis' own, unwrapped (a server error reply is a
// *rueidis.RedisError); errors made by this package start with "rueidis:".
//
// The valkey-go adapter (../valkeygo) is generated from this package's files
// other than doc.go: after changing them, run go generate in ../valkeygo.
package rueidis
