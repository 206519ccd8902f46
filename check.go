package redsync

import (
	"context"
	"fmt"
	"time"
)

// Check asks every server what the Redlock assumptions need and reports,
// per server, what it found against them: a deployment that breaks them
// lets two holders in at once, or never locks. It is meant for a program's
// start, a health check or a deploy script (see "Checking the deployment"
// in docs/safety.md); it takes a round trip or a few per server, in
// parallel.
//
// options are the Mutex options the program locks with: the drift
// allowance a server's clock is held to (the expiry times the drift
// factor) and the Redis version the scripts need (WithHandoff,
// WithFencing) are theirs. A bad option, no pools or a nil pool is an
// *ArgumentError, and a nil ctx too; the report is then nil. Any other
// trouble, a server that cannot be reached included, is a Finding in the
// report, and the error is nil.
//
// Check sends only commands that read: INFO, TIME, CONFIG GET (where the
// server allows it; INFO serves otherwise) and EVAL and EVALSHA of a
// script that calls TIME, which stays in the server's script cache. A
// Conn that is not a redis.Doer (a Pool of the program's own) is asked
// through Eval, with a script that calls INFO or TIME. A Pool over a
// Redis Cluster or a Ring shows one of its nodes, whichever its client
// sends the commands to.
//
// Check returns when every server has answered, or when ctx ends: a
// server that has not answered by then is reported as FindingUnreachable,
// with ctx's error. Give ctx a deadline. The requests still on their way
// then are counted by Wait. Check may be called concurrently with anything
// else.
func (r *Redsync) Check(ctx context.Context, options ...Option) (*Report, error) {
	if ctx == nil {
		return nil, &ArgumentError{Arg: "ctx", Problem: "nil context; pass context.Background() or a context of your own"}
	}
	m := r.NewMutex("redsync:check", options...)
	if m.invalid != nil {
		return nil, m.invalid
	}
	needs := checkNeeds{drift: m.drift(), version: scriptsVersion(m.cfg.handoff, m.cfg.fencing && len(r.pools) == 1)}

	results := make(chan ServerReport, len(r.pools))
	for i, pool := range r.pools {
		p := &serverProbe{ctx: ctx, pool: pool, needs: needs}
		p.rep.Node = i
		r.inflight.add()
		go func() {
			defer r.inflight.done()
			results <- p.run()
		}()
	}
	report := &Report{Servers: make([]ServerReport, len(r.pools))}
	answered := make([]bool, len(r.pools))
collect:
	for range r.pools {
		select {
		case rep := <-results:
			report.Servers[rep.Node] = rep
			answered[rep.Node] = true
		case <-ctx.Done():
			break collect
		}
	}
	for i, ok := range answered {
		if !ok {
			report.Servers[i] = ServerReport{Node: i}
			report.Servers[i].add(FindingUnreachable, context.Cause(ctx), "the server did not answer before the context ended: %v", context.Cause(ctx))
		}
	}
	report.finish()
	return report, nil
}

// A Report is what Check found, one ServerReport per pool, in the order
// the pools were given to New. Its String is a table, one line per
// finding.
type Report struct {
	Servers []ServerReport
}

// A ServerReport is what Check learnt of one server. A field Check could
// not learn is empty (0 for the durations).
type ServerReport struct {
	// Node is the index of the pool in the order the pools were given to
	// New, as in RedisError.
	Node int
	// RunID is the server's run_id: it changes at every restart, and two
	// pools with one run_id reach one server.
	RunID string
	// Version is the server's redis_version.
	Version string
	// Role is "master" or "slave", as INFO replication says.
	Role string
	// ClockOffset is how far the server's clock (TIME) was ahead of this
	// host's, measured in the middle of the request; it is exact to
	// within half of RTT, the round trip of that request.
	ClockOffset time.Duration
	// RTT is the round trip of the TIME request ClockOffset comes from,
	// the shortest of a few.
	RTT time.Duration
	// Findings are the problems and warnings found, most serious first.
	Findings []Finding
}

// add appends a finding of kind to the report.
func (s *ServerReport) add(kind FindingKind, err error, format string, args ...any) {
	s.Findings = append(s.Findings, Finding{Kind: kind, Node: s.Node, Detail: fmt.Sprintf(format, args...), Err: err})
}

// A Finding is one way a server breaks, or may break, an assumption of
// the lock. It is an error, so that Report.Err can join findings and
// errors.As can find them; its Error is a sentence a person can act on.
type Finding struct {
	Kind FindingKind
	// Node is the index of the pool (see ServerReport.Node).
	Node int
	// Detail says what was found and what to do about it.
	Detail string
	// Err is the error behind a FindingUnreachable or FindingRefused (the
	// client's or the server's), or nil.
	Err error
}

// Error returns "node #i: " then the kind, "(warning)" for a warning,
// and the detail.
func (f Finding) Error() string {
	if f.Kind.Warning() {
		return fmt.Sprintf("node #%d: %s (warning): %s", f.Node, f.Kind, f.Detail)
	}
	return fmt.Sprintf("node #%d: %s: %s", f.Node, f.Kind, f.Detail)
}

// Unwrap returns Err.
func (f Finding) Unwrap() error {
	return f.Err
}

// FindingKind tells what a Finding is about.
type FindingKind uint8

const (
	// FindingUnreachable: the pool gave no connection, or the server did
	// not answer (a network error or timeout, or ctx ended first).
	FindingUnreachable FindingKind = iota + 1
	// FindingRefused: the server answered but refused what the lock
	// needs: NOAUTH or WRONGPASS (a password is missing or wrong), NOPERM
	// for EVAL or EVALSHA (an ACL), or scripts that do not run (a Sentinel
	// rather than a data server, say).
	FindingRefused
	// FindingSameServer: the pool reaches the same server (same run_id)
	// as an earlier pool, so one server counts as two votes of the
	// quorum.
	FindingSameServer
	// FindingReplica: the server is a replica, which refuses writes (or
	// takes them without passing them on).
	FindingReplica
	// FindingFailover (a warning): the server is a Redis Cluster node or
	// a primary with replicas (as under Sentinel). The pool counts as one
	// server, and a failover to a replica that had not yet received a
	// lock's key loses the lock.
	FindingFailover
	// FindingEviction: maxmemory is set with a policy that evicts keys
	// with an expiry (every policy but noeviction): when memory runs out
	// the server deletes lock keys while they are held.
	FindingEviction
	// FindingNoPersistence (a warning): appendonly is off, so a server
	// that restarts forgets the locks it held (all of them without RDB
	// snapshots, those set since the last snapshot with them). It is safe
	// when a restarted server is kept out for the longest expiry (the
	// restart rule); acknowledge it with Report.Err then.
	FindingNoPersistence
	// FindingClockSkew: the server's clock differs from this host's by
	// more than the drift allowance (see ServerReport.ClockOffset): the
	// clocks are not kept in sync, so they may also run at different
	// rates or jump, which the lock's validity and fencing tokens
	// assume they do not.
	FindingClockSkew
	// FindingOldVersion: the server is older than the scripts need:
	// Redis 2.6.12 for every lock (SET with NX and PX, scripts), 3.2 for
	// the hand-over of WithHandoff (on by default) and for WithFencing on
	// a single server (scripts that write after a command whose result
	// varies, PUBSUB NUMSUB or TIME).
	FindingOldVersion
	// FindingUnverified (a warning): the server refused, or left out of
	// its replies, what a check needs (INFO or TIME refused by an ACL, a
	// server that is not Redis), so that check was not made.
	FindingUnverified
)

// kindNames are the FindingKinds' names, as String returns them.
var kindNames = [...]string{
	FindingUnreachable:   "unreachable",
	FindingRefused:       "refused",
	FindingSameServer:    "same-server",
	FindingReplica:       "replica",
	FindingFailover:      "failover",
	FindingEviction:      "eviction",
	FindingNoPersistence: "no-persistence",
	FindingClockSkew:     "clock-skew",
	FindingOldVersion:    "old-version",
	FindingUnverified:    "unverified",
}

// String returns the kind's name: "unreachable", "same-server", ...
func (k FindingKind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("FindingKind(%d)", uint8(k))
}

// Warning reports whether findings of kind k are warnings: the lock is
// safe despite them when the program follows a rule Check cannot see
// (servers restarted late, a failover accepted as one server's failure,
// a check the server does not allow). The other kinds are problems: the
// lock is unsafe or does not work.
func (k FindingKind) Warning() bool {
	switch k {
	case FindingFailover, FindingNoPersistence, FindingUnverified:
		return true
	}
	return false
}
