//go:build linux

package faults

import (
	"context"
	"fmt"
	"io"
	"time"

	goredislib "github.com/redis/go-redis/v9"

	"github.com/quorumlock/redsync"
	"github.com/quorumlock/redsync/internal/redistest"
)

const (
	// EvictionLRU runs the eviction scenario with maxmemory-policy
	// allkeys-lru, EvictionTTL with volatile-ttl.
	EvictionLRU ScenarioKind = "eviction-lru"
	EvictionTTL ScenarioKind = "eviction-ttl"
)

const (
	// evictionExpiry is the expiry of both holders of an eviction
	// scenario: long, so that the second holder gets in with most of the
	// first's validity left.
	evictionExpiry = 30 * time.Second
	// evictionMaxmemory is the servers' memory limit in the scenario; an
	// empty redis-server 7 uses about 0.9 MB.
	evictionMaxmemory = "2mb"
	// evictionWait bounds the wait for the lock key to be evicted.
	evictionWait = 20 * time.Second
)

// runEviction: three servers A, B and C with a 2 MB maxmemory and the
// scenario's policy. The preflight (Redsync.Check) runs first and reports
// them. A first holder locks on all three with a 30 s expiry; another
// client then writes keys of 1 KB until the lock key is gone from two of
// the servers (a quorum); a second holder tries once, and acquires while
// the first still has most of its validity: the checker finds the
// overlap.
func runEviction(ctx context.Context, kind ScenarioKind, log io.Writer) (*ScenarioResult, error) {
	policy := EvictionPolicies[0]
	if kind == EvictionTTL {
		policy = EvictionPolicies[1]
	}
	servers, stop, err := redistest.StartServersWithArgs(3, "--maxmemory", evictionMaxmemory, "--maxmemory-policy", policy)
	if err != nil {
		return nil, err
	}
	defer stop()
	res := &ScenarioResult{Kind: kind, Expiry: evictionExpiry}
	start := monoNow()
	at := func() string { return fmt.Sprintf("%+6.3fs", time.Duration(monoNow()-start).Seconds()) }

	first, closeFirst := scenarioClient(servers)
	defer closeFirst()
	second, closeSecond := scenarioClient(servers)
	defer closeSecond()
	fmt.Fprintf(log, "\nscenario %s: servers A, B, C with maxmemory %s and maxmemory-policy %s; both holders lock %q with expiry %v and one try\n",
		kind, evictionMaxmemory, policy, scenarioName, evictionExpiry)

	checkCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	report, err := first.Check(checkCtx, redsync.WithExpiry(evictionExpiry))
	cancel()
	if err != nil {
		return nil, err
	}
	for _, f := range report.Findings() {
		if f.Kind == redsync.FindingEviction {
			res.Preflight = append(res.Preflight, f.Error())
		}
	}
	fmt.Fprintf(log, "  %s  the preflight (Redsync.Check) reports eviction on %d of 3 servers\n", at(), len(res.Preflight))

	opts := append([]redsync.Option{redsync.WithExpiry(evictionExpiry), redsync.WithTries(1)}, fencingOptions(scenarioName)...)
	m1 := first.NewMutex(scenarioName, opts...)
	lockStart := monoNow()
	if err := m1.LockContext(ctx); err != nil {
		return nil, fmt.Errorf("faults: the first holder could not lock: %w", err)
	}
	h1 := Holding{Name: scenarioName, Client: 0, Seq: 1, Mode: ModePlain, Value: m1.Value(), ExpiryMS: evictionExpiry.Milliseconds(),
		LockStart: lockStart, Acquired: monoNow(), Until: monoOf(m1.Until()), Token: fencingToken(m1)}
	fmt.Fprintf(log, "  %s  the first holder acquired, valid for %v\n", at(), time.Duration(h1.Until-h1.Acquired).Round(time.Millisecond))

	fill := newFiller(servers, "faults:filler:")
	fault := FaultEvent{Seq: 1, Kind: FaultEviction, Target: targetOf("server", []int{0, 1, 2}), Servers: []int{0, 1, 2}, Client: -1,
		Detail: fmt.Sprintf("maxmemory %s, %s, other writes until the lock key is evicted from a quorum", evictionMaxmemory, policy), Start: monoNow()}
	fill.start()
	gone := waitEvicted(ctx, servers, 2)
	fill.stop()
	fault.End, fault.Healed = monoNow(), monoNow()
	res.Faults = []FaultEvent{fault}
	res.FillerWrites = fill.writtenTotal()
	for _, s := range servers {
		res.Evicted += evictedKeys(ctx, s)
	}
	res.EvictedAfter = time.Duration(fault.End - fault.Start)
	if err := fill.clean(ctx); err != nil {
		return nil, err
	}
	if !gone {
		return nil, fmt.Errorf("faults: the lock key was still on a quorum after %v of other writes (%d keys)", evictionWait, res.FillerWrites)
	}
	fmt.Fprintf(log, "  %s  another client wrote %d keys of 1 KB; after %v the lock key was gone from a quorum (%d keys evicted in all)\n",
		at(), res.FillerWrites, res.EvictedAfter.Round(time.Millisecond), res.Evicted)

	m2 := second.NewMutex(scenarioName, opts...)
	lockStart = monoNow()
	var h2 *Holding
	if err := m2.LockContext(ctx); err != nil {
		res.SecondErr = err.Error()
		fmt.Fprintf(log, "  %s  the second holder did not acquire: %v\n", at(), err)
	} else {
		h2 = &Holding{Name: scenarioName, Client: 1, Seq: 1, Mode: ModePlain, Value: m2.Value(), ExpiryMS: evictionExpiry.Milliseconds(),
			LockStart: lockStart, Acquired: monoNow(), Until: monoOf(m2.Until()), Token: fencingToken(m2)}
		res.ValidityLeft = time.Duration(h1.Until - h2.Acquired)
		fmt.Fprintf(log, "  %s  the second holder acquired, with %v of the first holder's validity left (fencing tokens: first %d, second %d)\n",
			at(), res.ValidityLeft.Round(time.Millisecond), *h1.Token, *h2.Token)
	}
	second.Wait()
	res.Keys = scenarioKeys(ctx, servers, h1.Value, m2.Value())
	fmt.Fprintf(log, "  %s  keys: A=%s B=%s C=%s\n", at(), res.Keys[0], res.Keys[1], res.Keys[2])

	releaseBoth(ctx, res, m1, m2, h1, h2, evictionExpiry)
	return res, nil
}

// waitEvicted waits until scenarioName is missing from at least quorum of
// servers, for at most evictionWait, and reports whether it is.
func waitEvicted(ctx context.Context, servers []*redistest.Server, quorum int) bool {
	var clients []*goredislib.Client
	for _, s := range servers {
		clients = append(clients, s.NewClient())
	}
	defer func() {
		for _, c := range clients {
			_ = c.Close()
		}
	}()
	deadline := time.Now().Add(evictionWait)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		missing := 0
		for _, c := range clients {
			if n, err := c.Exists(ctx, scenarioName).Result(); err == nil && n == 0 {
				missing++
			}
		}
		if missing >= quorum {
			return true
		}
		sleepCtx(ctx, 20*time.Millisecond)
	}
	return false
}
