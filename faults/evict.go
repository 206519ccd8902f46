//go:build linux

package faults

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	goredislib "github.com/redis/go-redis/v9"

	"github.com/quorumlock/redsync/internal/redistest"
)

// Eviction: a server with a memory limit and a policy that evicts keys
// deletes lock keys while they are held, when other writes fill its
// memory, as a restart without persistence forgets them. The fault gives
// servers a limit a little above what they use and a filler writes keys
// of 1 KB to them, as an application caching on the same servers would.

const (
	// evictionMargin is how far above its use a server's maxmemory is set.
	evictionMargin = 512 << 10
	// fillerValue is the size of each filler key's value, fillerBatch how
	// many keys one round trip writes and fillerPace the pause between
	// round trips: about 3 MB/s per server, so that the margin turns over
	// every 160 ms or so, faster than most holders touch their keys.
	fillerValue = 1 << 10
	fillerBatch = 32
	fillerPace  = 10 * time.Millisecond
	// fillerTTL is the filler keys' expiry: far longer than a lock's, so
	// that volatile-ttl evicts the lock keys first.
	fillerTTL = time.Hour
)

// EvictionPolicies are the maxmemory policies the eviction fault and
// scenario use: one that evicts any key, least recently used first, and
// one that evicts keys with an expiry, the shortest-lived first (every
// lock key has an expiry, most other keys a longer one).
var EvictionPolicies = []string{"allkeys-lru", "volatile-ttl"}

// filler writes keys to servers until stopped, and deletes them after.
type filler struct {
	prefix  string
	clients []*goredislib.Client

	cancel context.CancelFunc
	wg     sync.WaitGroup
	// written[i] is how many keys went to clients[i]; the writer of i
	// guards it until wg is done.
	written []int
}

// newFiller returns a filler of servers whose keys start with prefix.
func newFiller(servers []*redistest.Server, prefix string) *filler {
	f := &filler{prefix: prefix, written: make([]int, len(servers))}
	for _, s := range servers {
		f.clients = append(f.clients, s.NewClient())
	}
	return f
}

// start writes to every server until stop.
func (f *filler) start() {
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	value := strings.Repeat("x", fillerValue)
	for i, c := range f.clients {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for ctx.Err() == nil {
				pipe := c.Pipeline()
				for j := 0; j < fillerBatch; j++ {
					pipe.Set(ctx, f.key(f.written[i]), value, fillerTTL)
					f.written[i]++
				}
				_, _ = pipe.Exec(ctx) // OOM or a stopped server: write on
				sleepCtx(ctx, fillerPace)
			}
		}()
	}
}

func (f *filler) key(n int) string {
	return f.prefix + strconv.Itoa(n)
}

// stop stops the writers.
func (f *filler) stop() {
	if f.cancel != nil {
		f.cancel()
	}
	f.wg.Wait()
}

// writtenTotal is how many keys the writers sent; call it after stop.
func (f *filler) writtenTotal() int {
	n := 0
	for _, w := range f.written {
		n += w
	}
	return n
}

// clean deletes the keys the filler wrote (those not evicted) and closes
// its clients; call it after stop.
func (f *filler) clean(ctx context.Context) error {
	var first error
	for i, c := range f.clients {
		for from := 0; from < f.written[i]; from += 512 {
			keys := make([]string, 0, 512)
			for n := from; n < f.written[i] && n < from+512; n++ {
				keys = append(keys, f.key(n))
			}
			if err := c.Unlink(ctx, keys...).Err(); err != nil && first == nil {
				first = fmt.Errorf("faults: deleting the filler keys: %w", err)
			}
		}
		_ = c.Close()
	}
	return first
}

// evictionFault is a FaultEviction on some servers: apply sets the limit
// and policy and starts the filler, heal stops it, lifts the limit and
// deletes the filler's keys.
type evictionFault struct {
	servers []*redistest.Server
	policy  string
	fill    *filler
}

func (e *evictionFault) apply() error {
	for _, s := range e.servers {
		if err := limitMemory(s, e.policy); err != nil {
			_ = e.heal()
			return err
		}
	}
	e.fill.start()
	return nil
}

func (e *evictionFault) heal() error {
	e.fill.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var first error
	for _, s := range e.servers {
		rc := s.NewClient()
		// The limit first: with noeviction and a limit, writes fail.
		err := rc.ConfigSet(ctx, "maxmemory", "0").Err()
		if err == nil {
			err = rc.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err()
		}
		_ = rc.Close()
		if err != nil && first == nil {
			first = fmt.Errorf("faults: lifting the memory limit of %s: %w", s.Addr(), err)
		}
	}
	if err := e.fill.clean(ctx); err != nil && first == nil {
		first = err
	}
	return first
}

// limitMemory gives s the policy and a maxmemory evictionMargin above
// what it uses.
func limitMemory(s *redistest.Server, policy string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rc := s.NewClient()
	defer rc.Close()
	info, err := rc.Info(ctx, "memory").Result()
	if err != nil {
		return fmt.Errorf("faults: INFO memory of %s: %w", s.Addr(), err)
	}
	used, err := strconv.ParseInt(infoValue(info, "used_memory"), 10, 64)
	if err != nil {
		return fmt.Errorf("faults: used_memory of %s: %w", s.Addr(), err)
	}
	if err := rc.ConfigSet(ctx, "maxmemory-policy", policy).Err(); err != nil {
		return fmt.Errorf("faults: maxmemory-policy of %s: %w", s.Addr(), err)
	}
	if err := rc.ConfigSet(ctx, "maxmemory", strconv.FormatInt(used+evictionMargin, 10)).Err(); err != nil {
		return fmt.Errorf("faults: maxmemory of %s: %w", s.Addr(), err)
	}
	return nil
}

// evictedKeys returns the evicted_keys counter of INFO stats.
func evictedKeys(ctx context.Context, s *redistest.Server) int64 {
	rc := s.NewClient()
	defer rc.Close()
	info, err := rc.Info(ctx, "stats").Result()
	if err != nil {
		return -1
	}
	n, err := strconv.ParseInt(infoValue(info, "evicted_keys"), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// infoValue returns a field of an INFO reply, "" when it is missing.
func infoValue(info, field string) string {
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return v
		}
	}
	return ""
}
