package redsync

import (
	"errors"
	"fmt"
)

// ErrFailed is returned by Lock when the lock could not be acquired: the
// tries ran out without an error to report, or the caller's context ended
// (then the error also matches ctx.Err() with errors.Is).
var ErrFailed = errors.New("redsync: failed to acquire lock")

// ErrExtendFailed is returned by Extend when a quorum of servers extended
// the key but the time that took left no validity.
var ErrExtendFailed = errors.New("redsync: failed to extend lock")

// ErrLockAlreadyExpired is reported by Unlock for a server on which the key
// no longer exists: the lock expired there before it was released.
var ErrLockAlreadyExpired = errors.New("redsync: failed to unlock, lock was already expired")

// ErrNotHeld is returned by Unlock and Extend on a Mutex that has no value:
// it was never locked and no value was given with WithValue. No server is
// contacted. (Valid reports false with an *ErrTaken of every server there,
// as redsync does, also without contacting any.)
var ErrNotHeld = errors.New("redsync: mutex has no value: lock it first or give its value with WithValue")

// ErrLockLost is the cause (context.Cause) of a KeepAlive context cancelled
// because the lock could no longer be proven held; the cause wraps it and
// says why.
var ErrLockLost = errors.New("redsync: lock lost")

// ErrUnlocked is the cause (context.Cause) of a KeepAlive context cancelled
// by Unlock.
var ErrUnlocked = errors.New("redsync: lock released by Unlock")

// ErrInvalidArgument matches (with errors.Is) every *ArgumentError.
var ErrInvalidArgument = errors.New("redsync: invalid argument")

// ArgumentError reports a bad argument or option given to New, NewMutex or
// a method of Mutex. It is returned before any server is contacted.
type ArgumentError struct {
	// Arg names the argument or option, for example "WithExpiry".
	Arg string
	// Problem says what was wrong and what was expected (for a value that
	// cannot work, the smallest one that can).
	Problem string
}

func (e *ArgumentError) Error() string {
	return fmt.Sprintf("redsync: invalid %s: %s", e.Arg, e.Problem)
}

// Is makes errors.Is(err, ErrInvalidArgument) true for every ArgumentError.
func (e *ArgumentError) Is(target error) bool {
	return target == ErrInvalidArgument
}

// ErrTaken is returned when a quorum of servers holds the key with another
// value: somebody else has the lock. Nodes are the indexes (in the order the
// pools were given to New) of the servers that refused.
type ErrTaken struct {
	Nodes []int
}

func (err ErrTaken) Error() string {
	return fmt.Sprintf("lock already taken, locked nodes: %v", err.Nodes)
}

// ErrNodeTaken reports one server on which the key holds another value.
// Several are combined with errors.Join when no quorum refused.
type ErrNodeTaken struct {
	Node int
}

func (err ErrNodeTaken) Error() string {
	return fmt.Sprintf("node #%d: lock already taken", err.Node)
}

// RedisError is an error talking to one server: Node is its index in the
// order the pools were given to New, Err what the client returned (or a
// timeout error matching context.DeadlineExceeded when the server did not
// answer within the per-server deadline).
type RedisError struct {
	Node int
	Err  error
}

func (e RedisError) Error() string {
	return fmt.Sprintf("node #%d: %s", e.Node, e.Err)
}

// Unwrap returns the client's error.
func (e RedisError) Unwrap() error {
	return e.Err
}

// ErrBacklogged is the error (in a *RedisError) of a server that an
// operation did not send its request to: at least 64 requests were waiting
// for that server and it had answered none of them for longer than the
// per-server deadline (a stopped server, say). Under load, requests to
// such a server would otherwise pile up on goroutines until their
// contexts end. Lock, Extend and Valid spare it their requests, and Unlock
// those releases the server cannot need; a request not sent set nothing
// there. Requests go out again as soon as the server answers. An Observer
// sees such a server as a NodeEvent with the outcome NodeNotSent.
var ErrBacklogged = fmt.Errorf("redsync: not sent: the server answered none of the %d or more requests waiting for it within the per-server deadline", backlogMin)

// PanicError is the error of a call into a Pool (or into a connection or a
// subscription it returned) that panicked on a goroutine of this library:
// the panic is recovered and the call fails with a PanicError instead of
// crashing the process. An operation reports it as that server's error,
// the Err of a *RedisError; a hand-off listener whose Subscribe or Receive
// panics reconnects, as after any failure. Value is what panic was called
// with, Stack the panicking goroutine's stack.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("redsync: the pool panicked: %v\n%s", e.Value, e.Stack)
}

// Unwrap returns the panic value when it is an error, and nil otherwise.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// ErrTokenNotStored is wrapped by the error of a try, with fencing, that a
// quorum of servers granted but whose token fewer than a quorum stored
// (the key vanished from them in between, or they failed): the try does
// not count and is released, and Lock tries again as usual (and returns
// it when that was its last try).
var ErrTokenNotStored = errors.New("redsync: the fencing token was not stored by a quorum")

// ErrFenceKeyInUse is returned by Lock and TryLock with fencing (see
// WithFencing) when the key of the name's fencing counter holds, on some
// server, something that is not a counter: a lock of a Mutex named like the
// counter key, say. The counter is never written over such a value: the
// error names the key and the server, and Lock fails at once, since every
// later try would find the same.
var ErrFenceKeyInUse = errors.New("redsync: the key of the fencing counter holds something that is not a fencing counter")

// ErrNotLeader is returned by Election.Proclaim when the candidate does
// not lead, and is the cause of Election.Context before the candidate
// first led.
var ErrNotLeader = errors.New("redsync: not the leader")

// ErrNoLeader is wrapped by the error of Election.Leader when nobody
// leads the election.
var ErrNoLeader = errors.New("redsync: no leader")
