// Package faults is a fault suite for the redsync lock: it checks that
// the lock keeps mutual exclusion while servers pause, crash and restart and
// while links are slow, cut or partitioned, and shows where Redlock's
// guarantee ends.
//
// A run (Run) starts five real redis-server processes, puts a fault proxy
// (toxiproxy, in-process) in front of each, and starts several client
// processes; every client runs many goroutines that lock a few shared names
// through the proxies with this library. Meanwhile faults are injected at
// random from a seed that the run prints, so that a run can be replayed:
// servers paused (SIGSTOP) for less and for more than the expiry, servers
// killed and restarted empty (at once, or after the longest expiry, the
// Redlock remedy), latency and timeouts on links, a partition that isolates
// two of the five servers, and a client process paused past the validity
// of the locks it holds.
//
// Clock faults (ClockFaults, -faults clock) bend the clocks Redlock
// assumes to run at about one rate: a majority of the servers' clocks
// fast or slow for the whole run (FaultClockRate), their wall clocks
// stepped forward while they hold keys (FaultClockJump), every client's
// clock slow as its holders read Until (FaultClientClockSlow). The
// servers' clocks are bent by a small library of the suite's own,
// preloaded into each redis-server (clockfault_shim.go); a Go client
// cannot be bent that way, since Go reads the clock through the vDSO,
// not libc. The checker is not bent: it judges on the host's
// CLOCK_MONOTONIC, read by the runner and the Go clients, which the
// preloaded library in the servers cannot reach.
//
// Every holder records, on CLOCK_MONOTONIC (comparable across processes on
// one host), when Lock returned, its Until, every extension and when it
// called Unlock (a Holding). After the run the checker (Check) reports
// every pair of holders of one name whose validity windows overlap, the
// lock keys left on the servers once every client stopped and waited for
// its requests (orphans; the fencing counters, meant to outlive the locks
// for a day, are not), the goroutines each client leaked, and whether
// the KeepAlive contexts of holders that lost their lock were cancelled.
// The holders of every name but every other fast one lock with fencing
// (redsync.WithFencing; the others cover what fencing turns off, the
// hand-over of a contended lock by the release) and record their
// token and when they called Lock; the checker requires a larger token of
// every holding whose Lock was called after another holding of the name
// had returned from its Lock. Pairs whose Lock calls overlapped are left
// out: a holding's record only tells that it acquired somewhere between
// its Lock call and Lock's return (a client process stopped in between
// makes the return late), so the records cannot order such a pair.
//
// Beside the Mutex holders, each client runs holders of the other
// primitives (Config.Prims, Config.PrimWorkers), each time one drawn
// from the seed: Semaphore leases of a weight (Acquire, Extend or
// KeepAlive, Release), MultiMutex holders of two or three names, one of
// them at times a name that Mutex holders lock too, RWMutex readers and
// writers, and Election leaders (Campaign, lead, Resign). Their windows
// are what each may rely on, as for the Mutex: from the acquisition's
// return to its Until, moved by the extensions it saw, ended by the
// release or a KeepAlive context's end; a leader's Until is that of its
// term's lock, as the Election's Mutex reports it to the client's
// Observer. The checker verifies, by a sweep over the windows' starts and
// ends, that a Semaphore never held more weight than its permits, that
// no two holders of overlapping name sets held at once (a Mutex holder of
// one of the names included), that no RWMutex writer held with a reader
// or another writer, that an Election had one leader at a time, and that
// each leadership's term is larger than that of every leadership of its
// election that began before (see checkPrims).
//
// The checker also measures what a holder may not expect: Lock returning
// after its own Until, Unlock taking longer than the per-server deadline,
// and KeepAlive contexts ending after Until.
//
// RunScenario runs the one documented way Redlock breaks, deterministically:
// a server restarted empty at once lets a second holder in while the first
// still holds (the checker finds the overlap; the second holder's fencing
// token is still the larger, the servers' clock being its floor), while
// the same restart delayed past the expiry does not. Another scenario measures Lock and
// Unlock while the hand-off listener of a cut-off server cannot connect.
// Recheck runs the checker again on the records of an earlier run.
//
// The suite needs Linux (SIGSTOP of processes, CLOCK_MONOTONIC, a parent
// death signal for the processes it starts) and a redis-server binary (see
// internal/redistest).
package faults
