// Package redis is the contract between the lock algorithm and a Redis
// client library.
//
// The root package never talks to a client directly: it asks a Pool for a
// Conn, issues a handful of commands on it and closes it. An adapter for a
// client library (go-redis, redigo, ...) is a small package that implements
// Pool and Conn; a user can also implement them for a client of their own.
//
// Every adapter in this project agrees on these semantics:
//
//   - Get of a missing key returns "" and a nil error.
//   - PTTL returns the remaining time to live; for a key without an expiry
//     it returns -1 ms and for a missing key -2 ms (Redis' replies, in
//     milliseconds, whatever unit the client library uses itself).
//   - Eval runs a script by EVALSHA and falls back to EVAL when the server
//     answers NOSCRIPT, so a SCRIPT FLUSH or a restarted server is harmless.
//     A Script whose Hash is empty is named by the SHA-1 of its Src, which
//     the adapters of this project compute once per source, not per call.
//   - A nil reply is returned as a nil value with a nil error; an integer
//     reply as an int64; a bulk string reply as a string or a []byte,
//     whichever the client library returns; an array reply as a []any of
//     such values (the fencing acquire script replies with one).
//   - The context given to Pool.Get bounds every command of that Conn.
package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Pool hands out connections to one Redis server (one "node" in Redlock's
// sense). Get must be safe for concurrent use.
type Pool interface {
	// Get returns a connection whose commands are bounded by ctx. The
	// caller closes it when done.
	Get(ctx context.Context) (Conn, error)
}

// Conn is a connection to one Redis server, used by one goroutine at a time.
type Conn interface {
	// Get returns the string value of name, or "" if the key is missing.
	Get(name string) (string, error)
	// Set sets name to value without expiry and reports whether the server
	// answered OK.
	Set(name string, value string) (bool, error)
	// SetNX sets name to value with the given expiry if name does not exist
	// (SET name value NX PX expiry) and reports whether it did.
	SetNX(name string, value string, expiry time.Duration) (bool, error)
	// Eval runs script with keysAndArgs, by EVALSHA with a fallback to EVAL.
	// When script.KeyCount is negative the first element of keysAndArgs is
	// the number of keys. The root package itself sends every script with
	// its KeyCount set (never negative), as redsync does, so that a Pool
	// written for redsync that makes KeyCount keys serves every primitive.
	Eval(script *Script, keysAndArgs ...any) (any, error)
	// ScriptLoad loads script into the server's script cache (SCRIPT LOAD)
	// and stores the hash the server returned in script.Hash.
	ScriptLoad(script *Script) error
	// PTTL returns the remaining time to live of name (see the package
	// comment for missing keys and keys without expiry).
	PTTL(name string) (time.Duration, error)
	// Close returns the connection to its pool.
	Close() error
}

// Script is a Lua script with the number of keys it takes and the SHA-1 hash
// of its source, as EVALSHA expects.
type Script struct {
	// KeyCount is the number of keys the script takes; when it is negative
	// the caller passes the count as the first element of keysAndArgs.
	KeyCount int
	// Src is the Lua source.
	Src string
	// Hash is the lowercase hex SHA-1 of Src, or empty when the caller did
	// not give it (see the package comment on Eval).
	Hash string
}

// NewScript returns a Script for src taking keyCount keys, with the hash
// given (the hex SHA-1 of src, or ""). It keeps its arguments as given, as
// redsync's NewScript does: it computes no hash.
func NewScript(keyCount int, src, hash string) *Script {
	return &Script{KeyCount: keyCount, Src: src, Hash: hash}
}

// Subscriber is an optional interface of a Pool: a pool that implements it
// can open connections that listen on pub/sub channels. The lock uses it to
// wake waiters the moment a lock is released, instead of polling; a Pool
// without it keeps working, by polling. Every adapter in this project
// implements it. Through a Pool that does not, the lock makes only the
// calls redsync v4 makes in the same situation (a SET NX per try, the
// release and extend scripts through Eval, Get for Valid), so that a Pool
// written for redsync sees nothing new.
type Subscriber interface {
	// Subscribe opens a connection dedicated to pub/sub, bounded by ctx
	// while it connects.
	Subscribe(ctx context.Context) (Subscription, error)
}

// Subscription is a connection dedicated to pub/sub. Subscribe and
// Unsubscribe send their command and return; the server's confirmation
// arrives through Receive. They may be called while another goroutine is
// blocked in Receive, but never concurrently with each other.
//
// Close never waits for the server. It is called by the goroutine that
// calls Receive, once Receive returned; it may also be called by another
// goroutine while Receive is blocked, to give up a connection whose server
// does not answer: Receive must then return an error at once, after which
// its goroutine calls Close again. A Close after the first does nothing.
type Subscription interface {
	// Subscribe asks the server to start sending the messages published
	// on channels.
	Subscribe(ctx context.Context, channels ...string) error
	// Unsubscribe asks the server to stop sending the messages published
	// on channels.
	Unsubscribe(ctx context.Context, channels ...string) error
	// Receive blocks until the server sends a message or a confirmation.
	// It returns an error when the connection fails; the subscriptions are
	// then gone, and the caller closes it and opens a new Subscription.
	Receive() (Event, error)
	// Close closes the connection.
	Close() error
}

// ShardedSubscription is an optional interface of a Subscription: one
// that implements it can also listen on sharded channels (SSUBSCRIBE,
// Redis 7.0+), which a Redis Cluster delivers from the shard of the
// channel's hash slot only, instead of from every node. The lock listens
// on them where it can: the release script publishes on a sharded channel
// in the lock key's slot (see docs/waiting.md).
//
// SSubscribe and SUnsubscribe send their command and return, as Subscribe
// and Unsubscribe do; the server's confirmations arrive through Receive as
// Subscribed and Unsubscribed events, its messages as Message events. The
// count of a confirmation is the one the server sends, which counts the
// sharded channels apart from the classic ones. Channels of one call may
// hash to different slots: an adapter for a Redis Cluster sends each to
// the node of its slot. A server that has no sharded pub/sub refuses
// SSUBSCRIBE: the Subscription then returns an error that wraps
// ErrNoShardedPubSub, from SSubscribe or from Receive, whichever learns of
// it. Subscribe, Unsubscribe, SSubscribe and SUnsubscribe are never called
// concurrently with each other.
type ShardedSubscription interface {
	Subscription
	// SSubscribe asks the server to start sending the messages
	// published with SPUBLISH on channels.
	SSubscribe(ctx context.Context, channels ...string) error
	// SUnsubscribe asks the server to stop sending the messages published
	// with SPUBLISH on channels.
	SUnsubscribe(ctx context.Context, channels ...string) error
}

// ErrNoShardedPubSub is wrapped by the error of a ShardedSubscription
// whose server does not know SSUBSCRIBE (a server before Redis 7.0, or one
// where the command is renamed away). The lock's listener then subscribes
// to the classic channels on that server.
var ErrNoShardedPubSub = errors.New("redis: the server has no sharded pub/sub (SSUBSCRIBE)")

// ShardedRefusal returns err wrapped with ErrNoShardedPubSub when it is
// a server's reply that it does not know the command sent (its text has
// "unknown command", as every Redis version words it), else err itself.
// Adapters call it on the error replies a pub/sub connection receives.
func ShardedRefusal(err error) error {
	if err == nil || errors.Is(err, ErrNoShardedPubSub) || !strings.Contains(strings.ToLower(err.Error()), "unknown command") {
		return err
	}
	return fmt.Errorf("%w: %w", ErrNoShardedPubSub, err)
}

// EventKind tells what an Event reports.
type EventKind int

const (
	// Message is a message published on Channel.
	Message EventKind = iota
	// Subscribed confirms that the server now sends what is published on
	// Channel.
	Subscribed
	// Unsubscribed confirms that the server no longer sends what is
	// published on Channel.
	Unsubscribed
)

// Event is what Subscription.Receive returns.
type Event struct {
	Kind    EventKind
	Channel string
	// Count is, for Subscribed and Unsubscribed, the number of channels the
	// connection is still subscribed to.
	Count int
	// Payload is, for Message, what was published.
	Payload string
}
