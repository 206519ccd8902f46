// Package valkeygo adapts github.com/valkey-io/valkey-go, through its
// go-redis style API valkeycompat, to redsync's redis.Pool. Build the
// Cmdable with valkeycompat.NewAdapter around any valkey.Client (standalone,
// cluster or sentinel); it works with Valkey and with Redis servers.
//
// It lives in the root module, as in redsync: go get
// github.com/quorumlock/redsync brings it, and a program that does not
// import it neither downloads nor builds valkey-go (module graph pruning).
//
// The context given to Pool.Get is passed to every command of the returned
// Conn. A context that is already done fails the command before anything is
// written to the server, and valkey-go stops waiting for a reply the moment
// the context is done (cancelled or past its deadline), returning ctx.Err().
// A command cut short is not withdrawn: a server that was merely slow may
// still execute it.
//
// Errors are valkey-go's own, unwrapped (a server error reply is a
// *valkey.ValkeyError); errors made by this package start with "valkeygo:".
//
// Every other file of this package, tests included, is generated from the
// rueidis adapter (../rueidis) by internal/gen, since valkey-go is a fork of
// rueidis with its names changed: edit the rueidis files, then run
// go generate here. internal/gen's test fails while the files are stale.
package valkeygo

//go:generate go run ./internal/gen
