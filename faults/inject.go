//go:build linux

package faults

import (
	"context"
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/quorumlock/redsync/internal/redistest"
)

// Fault kinds.
const (
	// FaultPauseShort stops a server (SIGSTOP) for less than the shortest
	// expiry.
	FaultPauseShort = "pause-short"
	// FaultPauseLong stops a server for longer than the longest expiry.
	FaultPauseLong = "pause-long"
	// FaultRestartNow kills a server and restarts it empty at once: the
	// one fault Redlock does not survive (a). Not injected unless asked.
	FaultRestartNow = "restart-now"
	// FaultRestartDelayed kills a server and restarts it empty after the
	// longest expiry, the Redlock remedy (b).
	FaultRestartDelayed = "restart-delayed"
	// FaultLatency delays the traffic of one or two links, for some time
	// less and for some more than the per-server deadline.
	FaultLatency = "latency"
	// FaultTimeout stops the traffic of one link in one direction and
	// closes its connections after a timeout.
	FaultTimeout = "timeout"
	// FaultPartition drops all traffic to and from two of the five
	// servers, connections staying open.
	FaultPartition = "partition"
	// FaultClientPause stops a client process (SIGSTOP) for longer than the
	// longest expiry: the locks it holds expire while it cannot tell.
	FaultClientPause = "client-pause"
	// FaultEviction gives a majority of the servers a maxmemory a little
	// above what they use and an evicting policy (one of
	// EvictionPolicies), and writes other keys to them meanwhile, so that
	// they evict lock keys while they are held: like FaultRestartNow, a
	// way Redlock breaks (Redsync.Check reports such servers). Not
	// injected unless asked.
	FaultEviction = "eviction"
)

// AllFaults lists every fault kind.
var AllFaults = []string{
	FaultPauseShort, FaultPauseLong, FaultRestartNow, FaultRestartDelayed,
	FaultLatency, FaultTimeout, FaultPartition, FaultClientPause, FaultEviction,
	FaultClockRate, FaultClockJump, FaultClientClockSlow, // clockfault.go
}

// SafeFaults are the fault kinds under which Redlock promises mutual
// exclusion: all but FaultRestartNow and FaultEviction. Run injects them
// by default.
var SafeFaults = []string{
	FaultPauseShort, FaultPauseLong, FaultRestartDelayed,
	FaultLatency, FaultTimeout, FaultPartition, FaultClientPause,
}

// A FaultEvent is one injected fault. Times are CLOCK_MONOTONIC
// nanoseconds.
type FaultEvent struct {
	Seq    int    `json:"seq"`
	Kind   string `json:"kind"`
	Target string `json:"target"` // "server 2", "servers 0,3", "client 1"
	Detail string `json:"detail,omitempty"`
	// Start is when the fault began (before it was applied), End when
	// healing it began (a stopped process runs again after End), Healed
	// when it was healed.
	Start  int64 `json:"start"`
	End    int64 `json:"end"`
	Healed int64 `json:"healed"`
	// Servers and Client say what it hit (Client is -1 for a server
	// fault).
	Servers []int  `json:"servers,omitempty"`
	Client  int    `json:"client"`
	Err     string `json:"err,omitempty"`
}

// injector injects one fault at a time, drawn from a seeded random source.
type injector struct {
	rng     *rand.Rand
	kinds   []string
	deck    []string // the kinds left to draw in this pass
	servers []*redistest.Server
	proxies *faultProxies
	clients []int    // the client processes' pids
	names   []string // the lock names, slow ones first
	minTTL  time.Duration
	maxTTL  time.Duration
	clock   *clockFaults

	mu     sync.Mutex // guards events
	events []FaultEvent
}

// next draws the next kind: each kind once per pass, in a shuffled order,
// so that even a short run sees every kind.
func (in *injector) next() string {
	if len(in.deck) == 0 {
		in.deck = append([]string(nil), in.kinds...)
		in.rng.Shuffle(len(in.deck), func(i, j int) { in.deck[i], in.deck[j] = in.deck[j], in.deck[i] })
	}
	kind := in.deck[0]
	in.deck = in.deck[1:]
	return kind
}

// between returns a random duration in [lo, hi).
func (in *injector) between(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(in.rng.Int63n(int64(hi-lo)))
}

// serversPicked returns n distinct random server indexes, sorted.
func (in *injector) serversPicked(n int) []int {
	picked := in.rng.Perm(len(in.servers))[:n]
	sort.Ints(picked)
	return picked
}

// inject injects one fault of kind, waits its duration and heals it; it
// heals at once when ctx ends. The random draws happen before any waiting,
// so that a seed replays the same faults.
func (in *injector) inject(ctx context.Context, seq int, kind string) FaultEvent {
	ev := FaultEvent{Seq: seq, Kind: kind, Client: -1}
	var (
		apply, heal func() error
		hold        time.Duration
	)
	server := func(n int) {
		ev.Servers = in.serversPicked(n)
		ev.Target = targetOf("server", ev.Servers)
	}
	switch kind {
	case FaultPauseShort, FaultPauseLong:
		server(1)
		s := in.servers[ev.Servers[0]]
		if kind == FaultPauseShort {
			hold = in.between(in.minTTL/10, in.minTTL*8/10)
		} else {
			hold = in.maxTTL + in.between(500*time.Millisecond, 1500*time.Millisecond)
		}
		ev.Detail = fmt.Sprintf("SIGSTOP for %v", hold.Round(time.Millisecond))
		apply, heal = s.PauseErr, s.ResumeErr
	case FaultRestartNow:
		server(1)
		s := in.servers[ev.Servers[0]]
		ev.Detail = "SIGKILL, restarted empty at once"
		apply, heal = s.RestartErr, func() error { return nil }
	case FaultRestartDelayed:
		server(1)
		s := in.servers[ev.Servers[0]]
		hold = in.maxTTL + in.between(200*time.Millisecond, 800*time.Millisecond)
		ev.Detail = fmt.Sprintf("SIGKILL, restarted empty after %v", hold.Round(time.Millisecond))
		apply, heal = s.KillErr, s.RestartErr
	case FaultLatency:
		server(1 + in.rng.Intn(2))
		var latency time.Duration
		if in.rng.Intn(2) == 0 {
			latency = in.between(2*time.Millisecond, 30*time.Millisecond)
		} else {
			latency = in.between(100*time.Millisecond, 400*time.Millisecond)
		}
		streams := [][]string{{"upstream"}, {"downstream"}, {"upstream", "downstream"}}[in.rng.Intn(3)]
		hold = in.between(time.Second, 3*time.Second)
		ev.Detail = fmt.Sprintf("%v ± %v %s for %v", latency, latency/2, strings.Join(streams, "+"), hold.Round(time.Millisecond))
		apply, heal = in.toxics(seq, ev.Servers, streams, "latency", map[string]any{
			"latency": latency.Milliseconds(), "jitter": (latency / 2).Milliseconds(),
		})
	case FaultTimeout:
		server(1)
		timeout := in.between(50*time.Millisecond, 500*time.Millisecond)
		streams := [][]string{{"upstream"}, {"downstream"}}[in.rng.Intn(2)]
		hold = in.between(time.Second, 3*time.Second)
		ev.Detail = fmt.Sprintf("%s dropped, connections closed after %v, for %v", streams[0], timeout, hold.Round(time.Millisecond))
		apply, heal = in.toxics(seq, ev.Servers, streams, "timeout", map[string]any{"timeout": timeout.Milliseconds()})
	case FaultPartition:
		server(2)
		hold = in.between(time.Second, 4*time.Second)
		ev.Detail = fmt.Sprintf("all traffic dropped for %v", hold.Round(time.Millisecond))
		apply, heal = in.toxics(seq, ev.Servers, []string{"upstream", "downstream"}, "timeout", map[string]any{"timeout": 0})
	case FaultEviction:
		server(len(in.servers)/2 + 1)
		policy := EvictionPolicies[in.rng.Intn(len(EvictionPolicies))]
		hold = in.between(time.Second, 3*time.Second)
		ev.Detail = fmt.Sprintf("maxmemory %d KB above use, %s, other writes for %v", evictionMargin>>10, policy, hold.Round(time.Millisecond))
		e := &evictionFault{policy: policy}
		for _, i := range ev.Servers {
			e.servers = append(e.servers, in.servers[i])
		}
		e.fill = newFiller(e.servers, fmt.Sprintf("faults:filler:%d:", seq))
		apply, heal = e.apply, e.heal
	case FaultClockJump:
		apply, heal = in.clock.jump(in, &ev), func() error { return nil }
	case FaultClientPause:
		// The client that holds a lock, so that the pause outlasts a
		// validity; a random one when nobody holds any.
		ev.Client = in.rng.Intn(len(in.clients))
		hold = in.maxTTL + in.between(500*time.Millisecond, 1500*time.Millisecond)
		held := ""
		if name, client := in.holder(ctx); client < len(in.clients) && client >= 0 {
			ev.Client, held = client, ", holding "+name
		}
		ev.Target = fmt.Sprintf("client %d", ev.Client)
		pid := in.clients[ev.Client]
		ev.Detail = fmt.Sprintf("SIGSTOP for %v%s", hold.Round(time.Millisecond), held)
		apply = func() error { return syscall.Kill(pid, syscall.SIGSTOP) }
		heal = func() error { return syscall.Kill(pid, syscall.SIGCONT) }
	default:
		ev.Err = "unknown fault kind"
		return ev
	}
	ev.Start = monoNow()
	err := apply()
	if err == nil {
		sleepCtx(ctx, hold)
		ev.End = monoNow()
		err = heal()
	} else {
		ev.End = monoNow()
	}
	ev.Healed = monoNow()
	if err != nil {
		ev.Err = err.Error()
	}
	in.mu.Lock()
	in.events = append(in.events, ev)
	in.mu.Unlock()
	return ev
}

// holder finds a client that holds one of the names, by the value on a
// majority of the servers, trying the names in order and preferring a
// holder that uses KeepAlive; it returns -1 when it finds none.
func (in *injector) holder(ctx context.Context) (name string, client int) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	name, client = "", -1
	for _, n := range in.names {
		votes := map[string]int{}
		for _, s := range in.servers {
			rc := s.NewClient()
			v, err := rc.Get(ctx, n).Result()
			_ = rc.Close()
			if err == nil {
				votes[v]++
			}
		}
		for v, count := range votes {
			c, mode := parseValue(v)
			if c < 0 || count <= len(in.servers)/2 {
				continue
			}
			if mode == ModeKeepAlive {
				return n, c
			}
			if client < 0 {
				name, client = n, c
			}
		}
	}
	return name, client
}

// toxics returns functions that add a toxic of type typ on the given
// streams of the given servers' proxies, and remove them.
func (in *injector) toxics(seq int, servers []int, streams []string, typ string, attrs map[string]any) (apply, heal func() error) {
	var added [][2]any // (server, name) of each toxic added
	apply = func() error {
		for _, i := range servers {
			for _, stream := range streams {
				name := fmt.Sprintf("%s-%d-%s", typ, seq, stream)
				if err := in.proxies.add(i, toxic{Name: name, Type: typ, Stream: stream, Attrs: attrs}); err != nil {
					return err
				}
				added = append(added, [2]any{i, name})
			}
		}
		return nil
	}
	heal = func() error {
		var first error
		for _, a := range added {
			if err := in.proxies.remove(a[0].(int), a[1].(string)); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	return apply, heal
}

// healAll undoes whatever a fault may have left: toxics, paused or dead
// servers, stopped clients.
func (in *injector) healAll() error {
	var errs []string
	in.proxies.reset()
	for i, s := range in.servers {
		if !s.Running() {
			if err := s.RestartErr(); err != nil {
				errs = append(errs, fmt.Sprintf("server %d: %v", i, err))
			}
		} else if err := s.ResumeErr(); err != nil {
			errs = append(errs, fmt.Sprintf("server %d: %v", i, err))
		}
	}
	for _, pid := range in.clients {
		_ = syscall.Kill(pid, syscall.SIGCONT)
	}
	if len(errs) > 0 {
		return fmt.Errorf("faults: healing: %s", strings.Join(errs, "; "))
	}
	return nil
}

func targetOf(what string, indexes []int) string {
	items := make([]string, len(indexes))
	for i, x := range indexes {
		items[i] = fmt.Sprint(x)
	}
	if len(indexes) > 1 {
		what += "s"
	}
	return what + " " + strings.Join(items, ",")
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
