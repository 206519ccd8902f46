package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumlock/redsync/internal/fencing"
	"github.com/quorumlock/redsync/internal/handoff"
)

// queryTimeout bounds the reads of status and of the waiting line.
const queryTimeout = 2 * time.Second

// A serverState is what one server holds of a lock: what status shows.
type serverState struct {
	err       error         // the server did not answer
	value     string        // the key's value, "" when the key is missing
	ttl       time.Duration // the key's time to live
	fence     string        // the fencing counter, "" when there is none
	listening int64         // subscribers of the release channel
	queued    int64         // values in the fleet queue
}

// lockState reads name's state on every server, at once; it only reads.
func (s *servers) lockState(ctx context.Context, name string) []serverState {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	states := make([]serverState, len(s.clients))
	var wg sync.WaitGroup
	for i, c := range s.clients {
		wg.Go(func() { states[i] = readState(ctx, c, name) })
	}
	wg.Wait()
	return states
}

// readState reads name's state on one server, in one round trip.
func readState(ctx context.Context, c *redis.Client, name string) serverState {
	channel := handoff.ReleaseChannel(name)
	queue, _, hasQueue := handoff.QueueKeys(name)
	var get, fence *redis.StringCmd
	var pttl *redis.DurationCmd
	var numsub *redis.MapStringIntCmd
	var zcard *redis.IntCmd
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		get = p.Get(ctx, name)
		pttl = p.PTTL(ctx, name)
		fence = p.Get(ctx, fencing.Key(name))
		numsub = p.PubSubNumSub(ctx, channel)
		if hasQueue {
			zcard = p.ZCard(ctx, queue)
		}
		return nil
	})
	if err != nil && err != redis.Nil {
		if get.Err() != nil && get.Err() != redis.Nil {
			return serverState{err: get.Err()}
		}
		// A key of another type (WRONGTYPE) is shown by what worked.
	}
	st := serverState{value: get.Val(), fence: fence.Val(), listening: numsub.Val()[channel]}
	if st.value != "" {
		st.ttl = pttl.Val()
	}
	if zcard != nil {
		st.queued = zcard.Val()
	}
	return st
}

// A holding is a value and the servers that hold it.
type holding struct {
	value string
	nodes []int
	ttl   time.Duration // the shortest time to live among them
}

// holdings groups the servers by the value they hold, most servers first.
func holdings(states []serverState) []holding {
	byValue := map[string]*holding{}
	var all []*holding
	for i, st := range states {
		if st.err != nil || st.value == "" {
			continue
		}
		h := byValue[st.value]
		if h == nil {
			h = &holding{value: st.value, ttl: st.ttl}
			byValue[st.value] = h
			all = append(all, h)
		}
		h.nodes = append(h.nodes, i)
		h.ttl = min(h.ttl, st.ttl)
	}
	sort.SliceStable(all, func(a, b int) bool { return len(all[a].nodes) > len(all[b].nodes) })
	out := make([]holding, len(all))
	for i, h := range all {
		out[i] = *h
	}
	return out
}

// describeHolder says who holds the lock by value v and since when.
func describeHolder(v string, now time.Time) string {
	if v == handoff.Marker {
		return "a hand-over placeholder"
	}
	holder, since, ok := parseValue(v)
	if !ok {
		return strconv.Quote(v)
	}
	return fmt.Sprintf("%s since %s (%v)", holder, since.Format(time.TimeOnly), now.Sub(since).Round(time.Second))
}

// holderLine is one line saying who holds name, for the waiting line and
// a lock not acquired, and the value held by the most servers ("" for
// none).
func (s *servers) holderLine(ctx context.Context, name string) (line, value string) {
	states := s.lockState(ctx, name)
	hs := holdings(states)
	failed := 0
	for _, st := range states {
		if st.err != nil {
			failed++
		}
	}
	var unanswered string
	if failed > 0 {
		unanswered = fmt.Sprintf("; %d of %d servers did not answer", failed, len(s.addrs))
	}
	if len(hs) == 0 {
		return fmt.Sprintf("%s is free on every server that answered%s", name, unanswered), ""
	}
	h := hs[0]
	var others []string
	for _, o := range hs[1:] {
		others = append(others, fmt.Sprintf("%d by %s", len(o.nodes), describeHolder(o.value, time.Now())))
	}
	line = fmt.Sprintf("%s is held by %s on %d of %d servers, for %v more unless extended",
		name, describeHolder(h.value, time.Now()), len(h.nodes), len(s.addrs), h.ttl.Round(time.Millisecond))
	if len(others) > 0 {
		line += " (" + strings.Join(others, ", ") + ")"
	}
	return line + unanswered, h.value
}
