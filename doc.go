// Package redsync is a distributed mutual exclusion lock on Redis, using
// the Redlock algorithm over N independent Redis servers.
//
// It is a drop-in replacement for github.com/go-redsync/redsync/v4: the same
// types, functions, options, defaults, errors and keys on the servers, so a
// service moves over by rewriting the import prefix, and services on either
// library exclude each other on the same lock name.
//
// # How a lock is taken
//
// Lock sets the key (the Mutex's name) to a random value with SET NX PX on
// every server in parallel. The lock is held when a majority of servers,
// len(pools)/2+1, set it and time remains: Until is the start of the try
// plus the expiry, minus the clock drift allowance. Otherwise whatever the
// try set is released and Lock tries again after a delay, up to the number
// of tries. Unlock deletes the key where it still holds the Mutex's value;
// Extend resets its expiry there.
//
// # Waiting for a lock
//
// A Lock that finds the lock taken waits to be told of its release, or of
// when the key expires, instead of sleeping the retry delay, and an Unlock
// can hand the lock straight over to a waiter of its own process. See
// WithHandoff, and docs/waiting.md for how it works:
// https://github.com/quorumlock/redsync/blob/main/docs/waiting.md.
//
// # Servers that are slow, stalled or gone
//
// Every operation gives each server a deadline (the expiry times the
// timeout factor, 400 ms by default), whatever the client's own timeouts,
// and returns as soon as its outcome is decided: a stalled server costs
// next to nothing while a quorum answers. A request to a server that missed
// the deadline is not cut off: it stays on its connection, in the
// background, for up to the expiry, and when it completes what it did is
// undone if nobody wants it (a late acquire of a try that failed, or of a
// lock already unlocked, is released). Cutting it off would leave it queued
// on a stalled server, to run when the server resumes, after any cleanup.
// A caller's context decides how long an operation waits, never whether a
// request already sent completes. Redsync.Wait waits for those requests.
//
// # Safety
//
// Redlock's guarantee rests on assumptions: the holder finishes its work
// before Until (a process paused past it, by GC or by the scheduler, may
// still act as the holder while another holds the lock), clocks run at
// about the same rate (the drift factor), and a server that restarts does
// not forget a key within its expiry (run servers with persistence, or keep
// a restarted server out for one expiry, and never let it evict keys:
// maxmemory-policy noeviction). A lock over a Redis Cluster or a
// replicated primary counts as one server, and a failover with
// asynchronous replication can lose it. Redsync.Check asks the servers
// and reports what breaks these assumptions, each as a Finding.
//
// # Fencing tokens
//
// A holder paused past Until that wakes up and writes after the next holder
// cannot be stopped by the lock, only by the storage it writes to. With
// WithFencing, every acquisition gets a token (Mutex.Token) larger than the
// tokens of all earlier acquisitions of the name, agreed through the same
// quorum as the lock; the holder sends it with its writes, and the storage
// refuses a write with a token below the highest it has accepted. It costs
// one more round trip per acquisition (none with a single server).
// WithFencing states the contract, the keys it adds and what it assumes of
// restarts and clocks; why the tokens only grow is argued in
// https://github.com/quorumlock/redsync/blob/main/docs/fencing.md.
//
// # Observing locks
//
// An Observer, set for a Redsync with SetObserver or for one Mutex with
// WithObserver, is told about every Lock, Unlock and Extend, every attempt
// to acquire, every server's reply with its latency (late ones too), and
// every lock that KeepAlive finds lost: enough to see which lock is hot,
// how long callers wait and which server fails. The nested modules
// github.com/quorumlock/redsync/contrib/prometheus and .../contrib/otel
// turn those events into Prometheus metrics and OpenTelemetry spans and
// metrics. A Mutex without an Observer pays nothing for them.
//
// # Concurrency
//
// A Redsync is safe for concurrent use. A Mutex stands for one holder: use
// one per goroutine that wants the lock. Name, Value, Until and Token may be
// read from any goroutine at any time.
//
// # Errors
//
// Operations return redsync's errors: ErrFailed, ErrExtendFailed,
// ErrLockAlreadyExpired, *ErrTaken, *ErrNodeTaken and *RedisError, several
// of them combined with errors.Join, so use errors.Is and errors.As. A bad
// argument or option is reported as an *ArgumentError (matching
// ErrInvalidArgument) before any server is contacted. This library adds
// ErrNotHeld (Unlock or Extend without a value), ErrLockLost and
// ErrUnlocked (why a KeepAlive context ended), ErrTokenNotStored (a
// fencing token a quorum did not store) and ErrFenceKeyInUse (a fencing
// counter's key holds something else). A call into a Pool that panics, on
// any goroutine of the library, is recovered and reported as that server's
// error: a *RedisError whose Err is a *PanicError.
package redsync
