package redsync

import (
	"errors"
	"time"
)

// An Op is an operation that an Observer sees.
type Op uint8

const (
	// OpLock is Lock, LockContext, TryLock or TryLockContext.
	OpLock Op = iota + 1
	// OpUnlock is Unlock or UnlockContext.
	OpUnlock
	// OpExtend is Extend or ExtendContext.
	OpExtend
	// OpKeepAlive is one extension made by KeepAlive in the background.
	OpKeepAlive
	// OpAcquire is Semaphore.Acquire or TryAcquire; its Name is the
	// semaphore's.
	OpAcquire
	// OpRelease is Lease.Release.
	OpRelease
	// OpMultiLock is a MultiMutex's Lock, LockContext, TryLock or
	// TryLockContext; its Name is the names, joined by commas.
	OpMultiLock
	// OpMultiUnlock is a MultiMutex's Unlock or UnlockContext.
	OpMultiUnlock
	// OpRLock is an RWMutex's RLock, RLockContext, TryRLock or
	// TryRLockContext; OpRUnlock its RUnlock or RUnlockContext; OpRExtend
	// its RExtend or RExtendContext. Their Start, Attempt, Node and Done
	// events are those of OpLock, OpUnlock and OpExtend; an extension of
	// either lock by KeepAlive is OpKeepAlive.
	OpRLock
	OpRUnlock
	OpRExtend
	// OpRWLock, OpRWUnlock and OpRWExtend are the write lock's Lock (and
	// its variants), Unlock and Extend of an RWMutex.
	OpRWLock
	OpRWUnlock
	OpRWExtend
	// OpCampaign is Election.Campaign: Start, then the events of the
	// operations it runs (the Lock of the leadership's Mutex, OpLock, and
	// the first OpProclaim's Node events), then Done, whose Token is the
	// term won. The leadership's extensions are OpKeepAlive, and its loss
	// is a Lost event, of the election's name.
	OpCampaign
	// OpResign is Election.Resign: Start, the Unlock of the leadership's
	// Mutex (OpUnlock), Done.
	OpResign
	// OpProclaim is Election.Proclaim, with the Node events of the
	// servers that stored the value.
	OpProclaim
)

// String returns "lock", "unlock", "extend", "keepalive", "acquire",
// "release", "multilock", "multiunlock", "rlock", "runlock", "rextend",
// "rwlock", "rwunlock", "rwextend", "campaign", "resign" or "proclaim",
// for labels. (A Lease's or a MultiMutex's Extend and background
// extensions are OpExtend and OpKeepAlive.)
func (op Op) String() string {
	switch op {
	case OpLock:
		return "lock"
	case OpUnlock:
		return "unlock"
	case OpExtend:
		return "extend"
	case OpKeepAlive:
		return "keepalive"
	case OpAcquire:
		return "acquire"
	case OpRelease:
		return "release"
	case OpMultiLock:
		return "multilock"
	case OpMultiUnlock:
		return "multiunlock"
	case OpRLock:
		return "rlock"
	case OpRUnlock:
		return "runlock"
	case OpRExtend:
		return "rextend"
	case OpRWLock:
		return "rwlock"
	case OpRWUnlock:
		return "rwunlock"
	case OpRWExtend:
		return "rwextend"
	case OpCampaign:
		return "campaign"
	case OpResign:
		return "resign"
	case OpProclaim:
		return "proclaim"
	}
	return "unknown"
}

// A NodeOutcome is what one server did with one request.
type NodeOutcome uint8

const (
	// NodeOK: the server did what was asked (set, released or extended
	// the key).
	NodeOK NodeOutcome = iota + 1
	// NodeRefused: the key holds another value (or, for an extension, is
	// missing).
	NodeRefused
	// NodeExpired: an Unlock found the key gone, expired
	// (ErrLockAlreadyExpired).
	NodeExpired
	// NodeError: the server could not be reached, or failed.
	NodeError
	// NodeTimeout: no reply within the per-server deadline. The request
	// stays in flight: its reply, if it comes, is reported again as Late.
	NodeTimeout
	// NodeNotSent: the request was not sent, because the server is
	// backlogged (ErrBacklogged); the event's Latency is zero.
	NodeNotSent
)

// String returns "ok", "refused", "expired", "error", "timeout" or
// "not_sent", for labels.
func (o NodeOutcome) String() string {
	switch o {
	case NodeOK:
		return "ok"
	case NodeRefused:
		return "refused"
	case NodeExpired:
		return "expired"
	case NodeError:
		return "error"
	case NodeTimeout:
		return "timeout"
	case NodeNotSent:
		return "not_sent"
	}
	return "unknown"
}

// StartEvent begins an operation.
type StartEvent struct {
	Op   Op
	Name string // the Mutex's name
	// Tries is, for OpLock, the most tries the call may use (1 for
	// TryLock); 0 for the other operations.
	Tries int
}

// AttemptEvent is one decided attempt of a Lock to acquire the lock: one
// SET on every server, in parallel.
type AttemptEvent struct {
	Name string
	// Attempt counts the attempts of this Lock call, from 1, including
	// those made when woken up within a retry delay (see WithHandoff).
	Attempt int
	// Try is the try the attempt belongs to, as WithTries counts them:
	// the retry delays waited so far, plus one.
	Try int
	// Duration is the time from the attempt's start to its decision.
	Duration time.Duration
	// Agreed is the number of servers that had set the key when the
	// attempt was decided; Quorum the number needed.
	Agreed, Quorum int
	// Acquired reports that the attempt acquired the lock.
	Acquired bool
	// Canceled reports that the caller's context ended first.
	Canceled bool
	// HandedOver reports an attempt that took a hand-over: an Unlock in
	// this process released the lock straight to this Lock call (see
	// WithHandoff). Its requests were the Unlock's: their replies are
	// reported as the Unlock's NodeEvents, none as this attempt's, and
	// Agreed counts the servers that handed the lock over.
	HandedOver bool
	// Err says why the attempt did not acquire the lock: the servers'
	// errors as Lock reports them (*ErrTaken, *RedisError, ... joined),
	// the context's error when Canceled, or ErrFailed when a quorum agreed
	// too late to leave any validity. It is nil when Acquired.
	Err error
}

// Outcome classifies the attempt for a label: "ok" (acquired), "taken",
// "canceled" or "failed". See DoneEvent.Outcome.
func (e AttemptEvent) Outcome() string {
	return outcome(e.Err, e.Canceled)
}

// NodeEvent is one server's reply to one request of an operation, or its
// missing the per-server deadline (NodeTimeout).
type NodeEvent struct {
	Op   Op
	Name string
	// Attempt is, for OpLock, the attempt the request belongs to (see
	// AttemptEvent); 0 for the other operations.
	Attempt int
	// Node is the server's index in the pools given to New (in the
	// shuffled order with WithShufflePools, as in errors).
	Node    int
	Outcome NodeOutcome
	// Err is the error the reply counted as: ErrLockAlreadyExpired for
	// NodeExpired, the client's error for NodeError, an error matching
	// context.DeadlineExceeded for NodeTimeout, ErrBacklogged for
	// NodeNotSent; nil otherwise.
	Err error
	// Latency is the time from the start of the request (the round) to
	// the reply; for NodeTimeout, the deadline.
	Latency time.Duration
	// Late reports a reply that came after the outcome of its attempt (or
	// operation) was decided, which it did not count in: for example the
	// slowest server of a lock acquired on a quorum, or a server that
	// missed the deadline. What a late reply did is undone if unwanted
	// (a late acquire is released).
	Late bool
}

// DoneEvent ends an operation with what it returned.
type DoneEvent struct {
	Op   Op
	Name string
	// Duration is the time the operation took: for OpLock, the wait for
	// the lock.
	Duration time.Duration
	// Err is the error the operation returned: nil when it acquired,
	// released or extended the lock.
	Err error
	// Canceled reports that the caller's context ended before the
	// outcome was decided (Err then matches the context's error).
	Canceled bool
	// Tries and Attempts are, for OpLock, the tries used (as WithTries
	// counts them) and the attempts made (see AttemptEvent).
	Tries, Attempts int
	// Validity is, for a successful OpLock, OpExtend or OpKeepAlive, how
	// long the lock is held for sure from now (Until minus the time of the
	// event).
	Validity time.Duration
	// Held is, for OpUnlock, how long the lock had been held when Unlock
	// was called, from the start of the attempt that acquired it; 0 when
	// unknown (a value given with WithValue).
	Held time.Duration
	// Token is, for a successful OpLock, OpAcquire or OpMultiLock with
	// fencing, the acquisition's fencing token (see WithFencing); 0
	// otherwise.
	Token uint64
}

// Outcome classifies the operation's result for a label:
//
//   - "ok": acquired, released or extended;
//   - "canceled": the caller's context ended first;
//   - "taken": a quorum of servers holds another value (*ErrTaken);
//   - "expired": Unlock found the key expired (ErrLockAlreadyExpired);
//   - "not_held": the Mutex had no value (ErrNotHeld);
//   - "failed": anything else (servers failed or missed the deadline, no
//     quorum either way, no validity left).
func (e DoneEvent) Outcome() string {
	return outcome(e.Err, e.Canceled)
}

// LostEvent reports a lock kept alive by KeepAlive that can no longer be
// proven held.
type LostEvent struct {
	Name string
	// Cause is the cause the holder's context is cancelled with; it wraps
	// ErrLockLost and says why.
	Cause error
	// Held is how long the lock had been held, from the start of the
	// attempt that acquired it; 0 when unknown (WithValue).
	Held time.Duration
}

func outcome(err error, canceled bool) string {
	if err == nil {
		return "ok"
	}
	if canceled {
		return "canceled"
	}
	var taken *ErrTaken
	switch {
	case errors.As(err, &taken):
		return "taken"
	case errors.Is(err, ErrLockAlreadyExpired):
		return "expired"
	case errors.Is(err, ErrNotHeld):
		return "not_held"
	}
	return "failed"
}
