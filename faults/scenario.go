//go:build linux

package faults

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/quorumlock/redsync"
	"github.com/quorumlock/redsync/internal/redistest"
	"github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis"
	goredislib "github.com/redis/go-redis/v9"
)

// A ScenarioKind is a restart scenario of RunScenario.
type ScenarioKind string

const (
	// RestartAtOnce restarts the server empty at once: Redlock's
	// documented failure (a).
	RestartAtOnce ScenarioKind = "restart-now"
	// RestartDelayed keeps the server down for the expiry before
	// restarting it empty: the documented remedy (b).
	RestartDelayed ScenarioKind = "restart-delayed"
	// PartitionedListener cuts one server of three off while a Lock waits
	// for a release: it measures how long Lock takes to return once its
	// attempt succeeded, and how long an Unlock of another name takes
	// meanwhile, with go-redis' default timeouts.
	PartitionedListener ScenarioKind = "partitioned-listener"
)

// scenarioExpiry is the expiry of both holders of a scenario: the longest
// expiry, which the delayed restart waits out.
const scenarioExpiry = 2 * time.Second

// scenarioName is the lock both holders of a scenario want.
const scenarioName = "faults:scenario"

// ScenarioResult is what a restart scenario did and what the checker
// found.
type ScenarioResult struct {
	Kind   ScenarioKind  `json:"kind"`
	Expiry time.Duration `json:"expiry"`
	// Holdings are the first holder's and, if it acquired, the second's.
	Holdings []Holding `json:"holdings"`
	// SecondErr is the second holder's Lock error, if it did not acquire.
	SecondErr string `json:"second_err,omitempty"`
	// Keys tells, once the second holder tried and every request of its
	// try had landed, whose value each server held under the name:
	// "first", "second" or "-" (none).
	Keys   []string     `json:"keys"`
	Faults []FaultEvent `json:"faults"`
	Check  CheckResult  `json:"check"`

	// For PartitionedListener: how long the waiter's Lock took to return
	// after its successful attempt began, the validity it had left then
	// (negative: its Until had passed), and how long an Unlock of another
	// name in the same process took meanwhile.
	LockReturn   time.Duration `json:"lock_return,omitempty"`
	ValidityLeft time.Duration `json:"validity_left,omitempty"`
	OtherUnlock  time.Duration `json:"other_unlock,omitempty"`

	// For EvictionLRU and EvictionTTL: what the preflight (Redsync.Check)
	// reported of eviction before the first holder locked, how many
	// filler keys another client wrote and how long that took until the
	// lock key was gone from a quorum, how many keys the servers evicted
	// in all, and (in ValidityLeft) the first holder's validity left when
	// the second acquired.
	Preflight    []string      `json:"preflight,omitempty"`
	FillerWrites int           `json:"filler_writes,omitempty"`
	EvictedAfter time.Duration `json:"evicted_after,omitempty"`
	Evicted      int64         `json:"evicted,omitempty"`
}

// RunScenario runs one restart scenario on three servers A, B and C,
// directly connected (no proxy): a first holder acquires while C is down,
// so that it holds on A and B only; C comes back empty; B is killed and
// restarted empty, at once (RestartAtOnce) or after the expiry
// (RestartDelayed); then a second holder tries once. At once, it finds B
// and C free and acquires, while the first still holds: the checker finds
// the overlap. Delayed, the first holder's validity ended before B came
// back, and the checker finds none. EvictionLRU and EvictionTTL evict the
// lock key from a quorum instead (see runEviction), and PartitionedListener
// measures Lock and Unlock with one server cut off. Progress goes to log.
func RunScenario(ctx context.Context, kind ScenarioKind, log io.Writer) (*ScenarioResult, error) {
	switch kind {
	case RestartAtOnce, RestartDelayed:
	case PartitionedListener:
		return runPartitionedListener(ctx, log)
	case EvictionLRU, EvictionTTL:
		return runEviction(ctx, kind, log)
	default:
		return nil, fmt.Errorf("faults: unknown scenario %q", kind)
	}
	servers, stop, err := redistest.StartServers(3)
	if err != nil {
		return nil, err
	}
	defer stop()
	b, c := servers[1], servers[2] // A is servers[0]
	res := &ScenarioResult{Kind: kind, Expiry: scenarioExpiry}
	start := monoNow()
	at := func() string { return fmt.Sprintf("%+6.3fs", time.Duration(monoNow()-start).Seconds()) }
	fault := func(seq int, what string, server int, do func() error) error {
		ev := FaultEvent{Seq: seq, Kind: what, Target: targetOf("server", []int{server}), Servers: []int{server}, Client: -1, Start: monoNow()}
		err := do()
		ev.End = monoNow()
		ev.Healed = ev.End
		res.Faults = append(res.Faults, ev)
		return err
	}

	first, closeFirst := scenarioClient(servers)
	defer closeFirst()
	second, closeSecond := scenarioClient(servers)
	defer closeSecond()

	fmt.Fprintf(log, "\nscenario %s: servers A, B, C; both holders lock %q with expiry %v and one try\n", kind, scenarioName, scenarioExpiry)
	if err := fault(1, "kill", 2, c.KillErr); err != nil {
		return nil, err
	}
	opts := append([]redsync.Option{redsync.WithExpiry(scenarioExpiry), redsync.WithTries(1)}, fencingOptions(scenarioName)...)
	m1 := first.NewMutex(scenarioName, opts...)
	lockStart := monoNow()
	if err := m1.LockContext(ctx); err != nil {
		return nil, fmt.Errorf("faults: the first holder could not lock on A and B: %w", err)
	}
	h1 := Holding{Name: scenarioName, Client: 0, Seq: 1, Mode: ModePlain, Value: m1.Value(), ExpiryMS: scenarioExpiry.Milliseconds(),
		LockStart: lockStart, Acquired: monoNow(), Until: monoOf(m1.Until()), Token: fencingToken(m1)}
	// Lock returned at a quorum of A and B; its request to C may not have
	// been sent yet (on a loaded machine it was, once, only after C was
	// back, which then held the first holder's key). Wait lets it fail
	// against the dead C first.
	first.Wait()
	fmt.Fprintf(log, "  %s  C down; the first holder acquired on A and B, valid for %v\n", at(), time.Duration(h1.Until-h1.Acquired).Round(time.Millisecond))
	if err := fault(2, "restart", 2, c.RestartErr); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "  %s  C restarted empty\n", at())
	if kind == RestartAtOnce {
		if err := fault(3, FaultRestartNow, 1, b.RestartErr); err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "  %s  B killed and restarted empty at once\n", at())
	} else {
		err := fault(3, FaultRestartDelayed, 1, func() error {
			if err := b.KillErr(); err != nil {
				return err
			}
			sleepCtx(ctx, scenarioExpiry+200*time.Millisecond)
			return b.RestartErr()
		})
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "  %s  B killed, and restarted empty %v later\n", at(), scenarioExpiry+200*time.Millisecond)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	m2 := second.NewMutex(scenarioName, opts...)
	lockStart = monoNow()
	err = m2.LockContext(ctx)
	var h2 *Holding
	if err != nil {
		res.SecondErr = err.Error()
		fmt.Fprintf(log, "  %s  the second holder did not acquire: %v\n", at(), err)
	} else {
		h2 = &Holding{Name: scenarioName, Client: 1, Seq: 1, Mode: ModePlain, Value: m2.Value(), ExpiryMS: scenarioExpiry.Milliseconds(),
			LockStart: lockStart, Acquired: monoNow(), Until: monoOf(m2.Until()), Token: fencingToken(m2)}
		fmt.Fprintf(log, "  %s  the second holder acquired (fencing tokens: first %d, second %d)\n", at(), *h1.Token, *h2.Token)
	}
	// Lock returns once a quorum replied; the third server's acquire may
	// still be on its way (B restarted, so the second client dials it
	// afresh). The keys are read once it has landed.
	second.Wait()
	res.Keys = scenarioKeys(ctx, servers, h1.Value, m2.Value())
	fmt.Fprintf(log, "  %s  keys: A=%s B=%s C=%s; the first holder's Until is %+.3fs\n", at(), res.Keys[0], res.Keys[1], res.Keys[2],
		time.Duration(h1.Until-start).Seconds())

	releaseBoth(ctx, res, m1, m2, h1, h2, scenarioExpiry)
	return res, nil
}

// releaseBoth lets both holders work a little longer, then releases them
// (the second first, when there is one), records their holdings in res
// and checks them.
func releaseBoth(ctx context.Context, res *ScenarioResult, m1, m2 *redsync.Mutex, h1 Holding, h2 *Holding, expiry time.Duration) {
	sleepCtx(ctx, 200*time.Millisecond)
	if h2 != nil {
		h2.Released = monoNow()
		if _, err := m2.UnlockContext(ctx); err != nil {
			h2.UnlockErr = err.Error()
		}
	}
	h1.Released = monoNow()
	if _, err := m1.UnlockContext(ctx); err != nil {
		h1.UnlockErr = err.Error()
	}
	res.Holdings = append(res.Holdings, h1)
	if h2 != nil {
		res.Holdings = append(res.Holdings, *h2)
	}
	res.Check = Check(res.Holdings, res.Faults, expiry)
}

// scenarioClient returns a Redsync of its own over the servers, as a
// separate client process would have, and a function that waits for its
// requests and closes its clients.
func scenarioClient(servers []*redistest.Server) (*redsync.Redsync, func()) {
	clients := make([]*goredislib.Client, len(servers))
	pools := make([]redis.Pool, len(servers))
	for i, s := range servers {
		clients[i] = newRedisClient(s.Addr(), 10)
		pools[i] = goredis.NewPool(clients[i])
	}
	rs := redsync.New(pools...)
	return rs, func() {
		rs.Wait()
		for _, c := range clients {
			_ = c.Close()
		}
	}
}

// scenarioKeys tells whose value each server holds under the scenario's
// name.
func scenarioKeys(ctx context.Context, servers []*redistest.Server, first, second string) []string {
	out := make([]string, len(servers))
	for i, s := range servers {
		rc := s.NewClient()
		v, err := rc.Get(ctx, scenarioName).Result()
		_ = rc.Close()
		switch {
		case err == goredislib.Nil:
			out[i] = "-"
		case err != nil:
			out[i] = "error: " + err.Error()
		case v == first:
			out[i] = "first"
		case v == second:
			out[i] = "second"
		default:
			out[i] = fmt.Sprintf("%q", v)
		}
	}
	return out
}

// runPartitionedListener: three servers behind proxies, server C cut off
// (its traffic dropped, connections left open). In one process, a holder
// locks "x" (on A and B) and a waiter's Lock of "x" waits for the release,
// which starts the hand-off listeners, one per server; the listener of C
// cannot connect. The holder unlocks; the waiter acquires on A and B. The
// scenario measures when the waiter's Lock returns, and how long an Unlock
// of another name takes meanwhile.
func runPartitionedListener(ctx context.Context, log io.Writer) (*ScenarioResult, error) {
	servers, stop, err := redistest.StartServers(3)
	if err != nil {
		return nil, err
	}
	defer stop()
	proxies, err := startProxies(redistest.Addrs(servers))
	if err != nil {
		return nil, err
	}
	defer proxies.close()
	res := &ScenarioResult{Kind: PartitionedListener, Expiry: scenarioExpiry}
	clients := make([]*goredislib.Client, len(servers))
	pools := make([]redis.Pool, len(servers))
	for i, addr := range proxies.addrs() {
		clients[i] = goredislib.NewClient(&goredislib.Options{Addr: addr}) // go-redis' defaults
		pools[i] = goredis.NewPool(clients[i])
	}
	rs := redsync.New(pools...)
	defer func() {
		proxies.reset() // so that Wait's requests complete
		rs.Wait()
		for _, c := range clients {
			_ = c.Close()
		}
	}()

	start := monoNow()
	at := func() string { return fmt.Sprintf("%+6.3fs", time.Duration(monoNow()-start).Seconds()) }
	fmt.Fprintf(log, "\nscenario %s: servers A, B, C behind proxies, go-redis default options, one process\n", PartitionedListener)
	cut := FaultEvent{Seq: 1, Kind: FaultPartition, Target: targetOf("server", []int{2}), Servers: []int{2}, Client: -1, Start: monoNow()}
	for _, stream := range []string{"upstream", "downstream"} {
		if err := proxies.add(2, toxic{Name: "cut-" + stream, Type: "timeout", Stream: stream, Attrs: map[string]any{"timeout": 0}}); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(log, "  %s  C cut off: its traffic is dropped, connections stay open\n", at())
	holder := rs.NewMutex("x", redsync.WithExpiry(8*time.Second))
	if err := holder.LockContext(ctx); err != nil {
		return nil, fmt.Errorf("faults: the holder could not lock on A and B: %w", err)
	}
	other := rs.NewMutex("y", redsync.WithExpiry(8*time.Second))
	if err := other.LockContext(ctx); err != nil {
		return nil, fmt.Errorf("faults: could not lock the other name on A and B: %w", err)
	}
	fmt.Fprintf(log, "  %s  the holder locked %q, and another Mutex %q\n", at(), "x", "y")
	waiter := rs.NewMutex("x", redsync.WithExpiry(scenarioExpiry))
	type lockReturn struct {
		at  int64
		err error
	}
	returned := make(chan lockReturn, 1)
	go func() {
		err := waiter.LockContext(ctx)
		returned <- lockReturn{monoNow(), err}
	}()
	sleepCtx(ctx, 100*time.Millisecond)
	fmt.Fprintf(log, "  %s  a waiter's Lock of %q (expiry %v) waits for the release\n", at(), "x", scenarioExpiry)
	h1 := Holding{Name: "x", Client: 0, Seq: 1, Mode: ModePlain, Value: holder.Value(), ExpiryMS: 8000, Acquired: start, Until: monoOf(holder.Until()), Released: monoNow()}
	if _, err := holder.UnlockContext(ctx); err != nil {
		h1.UnlockErr = err.Error()
	}
	h1.UnlockDone = monoNow()
	fmt.Fprintf(log, "  %s  the holder unlocked (%v)\n", at(), time.Duration(h1.UnlockDone-h1.Released).Round(time.Microsecond))
	sleepCtx(ctx, 50*time.Millisecond)
	otherStart := monoNow()
	_, _ = other.UnlockContext(ctx)
	res.OtherUnlock = time.Duration(monoNow() - otherStart)
	fmt.Fprintf(log, "  %s  Unlock of %q returned after %v\n", at(), "y", res.OtherUnlock.Round(time.Millisecond))
	r := <-returned
	if r.err != nil {
		return nil, fmt.Errorf("faults: the waiter did not acquire: %w", r.err)
	}
	until := monoOf(waiter.Until())
	attemptStart := until - int64(float64(scenarioExpiry)*(1-driftFactor))
	res.LockReturn = time.Duration(r.at - attemptStart)
	res.ValidityLeft = time.Duration(until - r.at)
	fmt.Fprintf(log, "  %s  the waiter's Lock returned, %v after its successful attempt began; Until %+.3fs\n", at(), res.LockReturn.Round(time.Millisecond),
		time.Duration(until-start).Seconds())
	h2 := Holding{Name: "x", Client: 0, Seq: 2, Mode: ModePlain, Value: waiter.Value(), ExpiryMS: scenarioExpiry.Milliseconds(), Acquired: r.at, Until: until, Released: monoNow()}
	_, _ = waiter.UnlockContext(ctx)
	h2.UnlockDone = monoNow()
	cut.End, cut.Healed = monoNow(), monoNow()
	res.Faults = []FaultEvent{cut}
	res.Holdings = []Holding{h1, h2}
	res.Check = Check(res.Holdings, res.Faults, 8*time.Second)
	return res, nil
}

// WriteSummary writes what the scenario showed.
func (r *ScenarioResult) WriteSummary(w io.Writer) {
	fmt.Fprintf(w, "scenario %s: ", r.Kind)
	if r.Kind == PartitionedListener {
		fmt.Fprintf(w, "Lock returned %v after its successful attempt began, with %v of its %v validity left; an Unlock of another name took %v; overlaps: %d\n",
			r.LockReturn.Round(time.Millisecond), r.ValidityLeft.Round(time.Millisecond), r.Expiry, r.OtherUnlock.Round(time.Millisecond), len(r.Check.Overlaps))
		return
	}
	if r.Kind == EvictionLRU || r.Kind == EvictionTTL {
		fmt.Fprintf(w, "the preflight reported eviction on %d of 3 servers; %d writes of 1 KB evicted the lock key from a quorum in %v (%d keys evicted); ",
			len(r.Preflight), r.FillerWrites, r.EvictedAfter.Round(time.Millisecond), r.Evicted)
		if r.SecondErr == "" {
			fmt.Fprintf(w, "the second holder acquired with %v of the first's validity left; ", r.ValidityLeft.Round(time.Millisecond))
		}
	}
	switch {
	case len(r.Check.Overlaps) > 0:
		var ds []string
		for _, o := range r.Check.Overlaps {
			d := o.Duration().Round(time.Millisecond).String()
			if o.Fencing != "" {
				d += ", fencing tokens " + o.Fencing
			}
			ds = append(ds, d)
		}
		fmt.Fprintf(w, "the checker found %d overlap(s) (%s): two holders at once\n", len(r.Check.Overlaps), strings.Join(ds, "; "))
	case r.SecondErr != "":
		fmt.Fprintf(w, "no overlap; the second holder did not acquire\n")
	default:
		fmt.Fprintf(w, "no overlap: the second holder acquired after the first's validity ended\n")
	}
	fmt.Fprintf(w, "  fencing: %s\n", r.Check.Fencing)
}
