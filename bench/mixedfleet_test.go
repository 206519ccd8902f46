package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	redsyncv4 "github.com/go-redsync/redsync/v4"
	redsyncv4redis "github.com/go-redsync/redsync/v4/redis"
	redsyncv4goredis "github.com/go-redsync/redsync/v4/redis/goredis/v9"
	"github.com/redis/go-redis/v9"

	quorumlock "github.com/quorumlock/redsync"
	quorumlockredis "github.com/quorumlock/redsync/redis"
	quorumlockgoredis "github.com/quorumlock/redsync/redis/goredis"
)

// During a migration, services on redsync v4 and on this library lock the
// same names on the same servers. These tests check on 3 real servers that
// the two exclude each other and that the key/value contract is the same.

// mixedFleet is the two libraries over the same 3 servers, each with
// go-redis clients of its own.
type mixedFleet struct {
	fleet *fleet
	q     *quorumlock.Redsync
	r     *redsyncv4.Redsync
}

func newMixedFleet(t *testing.T) *mixedFleet {
	t.Helper()
	f := testFleet(t, 3)
	qClients, rClients := f.clients(3), f.clients(3)
	t.Cleanup(func() {
		closeClients(qClients)
		closeClients(rClients)
	})
	qPools := make([]quorumlockredis.Pool, len(qClients))
	rPools := make([]redsyncv4redis.Pool, len(rClients))
	for i := range qClients {
		qPools[i] = quorumlockgoredis.NewPool(qClients[i])
		rPools[i] = redsyncv4goredis.NewPool(rClients[i])
	}
	return &mixedFleet{fleet: f, q: quorumlock.New(qPools...), r: redsyncv4.New(rPools...)}
}

// A side is one of the two libraries seen through what the tests need.
type side struct {
	name string
	// newMutex returns a Mutex on name; value, when not empty, is given
	// with WithValue. Options make a waiter retry every millisecond.
	newMutex func(mf *mixedFleet, name, value string) sideMutex
}

// sideMutex is the part of both libraries' Mutex the tests use.
type sideMutex interface {
	LockContext(ctx context.Context) error
	TryLock() error
	Unlock() (bool, error)
	Value() string
}

var (
	quorumlockSide = side{name: "quorumlock", newMutex: func(mf *mixedFleet, name, value string) sideMutex {
		opts := []quorumlock.Option{quorumlock.WithTries(1 << 20), quorumlock.WithRetryDelay(time.Millisecond)}
		if value != "" {
			opts = append(opts, quorumlock.WithValue(value))
		}
		return mf.q.NewMutex(name, opts...)
	}}
	redsyncSide = side{name: "redsync", newMutex: func(mf *mixedFleet, name, value string) sideMutex {
		opts := []redsyncv4.Option{redsyncv4.WithTries(1 << 20), redsyncv4.WithRetryDelay(time.Millisecond)}
		if value != "" {
			opts = append(opts, redsyncv4.WithValue(value))
		}
		return mf.r.NewMutex(name, opts...)
	}}
	sides = []side{quorumlockSide, redsyncSide}
)

// isTaken reports whether err is either library's ErrTaken.
func isTaken(err error) bool {
	var q *quorumlock.ErrTaken
	var r *redsyncv4.ErrTaken
	return errors.As(err, &q) || errors.As(err, &r)
}

// values returns what each server stores under name ("" for no key).
func (mf *mixedFleet) values(t *testing.T, name string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), inspectTimeout)
	defer cancel()
	out := make([]string, len(mf.fleet.inspect))
	for i, c := range mf.fleet.inspect {
		v, err := c.Get(ctx, name).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			t.Fatalf("GET %s on server %d: %v", name, i, err)
		}
		out[i] = v
	}
	return out
}

// requireValues fails t unless every server stores want under name.
func (mf *mixedFleet) requireValues(t *testing.T, name, want string) {
	t.Helper()
	// quorumlock's operations return once a quorum answered; wait for the
	// last server before reading them all.
	mf.q.Wait()
	for i, v := range mf.values(t, name) {
		if v != want {
			t.Fatalf("server %d holds %q under %s, want %q", i, v, name, want)
		}
	}
}

func TestMixedFleetNeverOverlaps(t *testing.T) {
	mf := newMixedFleet(t)
	const (
		names          = 3
		workersPerSide = 2
		hold           = time.Millisecond
		// pause is the most a worker waits after its Unlock before it
		// locks again. Workers that lock again at once would keep the
		// key busy for good: quorumlock hands the lock from one of its
		// holders to its next waiter, and redsync's polling Locks, which
		// nothing reserves a turn for, would hardly ever find it free.
		pause = 3 * hold
	)
	duration := 3 * time.Second
	if testing.Short() {
		duration = time.Second
	}

	// One record per name; mu guards last and the counters, which change
	// only while the name's lock is held (and are read after all stopped).
	type record struct {
		inside    atomic.Int32
		mu        sync.Mutex
		lastSide  int
		lastFree  time.Time // when the last holder called Unlock
		acquired  [2]int    // by side
		overlaps  int
		waited    [2]int // acquisitions by a side that had to wait for the other
		unlockErr []error
	}
	records := make([]*record, names)
	for i := range records {
		records[i] = &record{lastSide: -1}
	}

	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var wg sync.WaitGroup
	for n := 0; n < names; n++ {
		name := fmt.Sprintf("mixed:never-overlaps:%d", n)
		rec := records[n]
		for s, sd := range sides {
			for w := 0; w < workersPerSide; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for ctx.Err() == nil {
						m := sd.newMutex(mf, name, "")
						called := time.Now()
						if err := m.LockContext(ctx); err != nil {
							if ctx.Err() == nil {
								t.Errorf("%s Lock(%s): %v", sd.name, name, err)
							}
							return
						}
						if rec.inside.Add(1) != 1 {
							rec.mu.Lock()
							rec.overlaps++
							rec.mu.Unlock()
						}
						rec.mu.Lock()
						rec.acquired[s]++
						// The call began before the other side's holder let
						// go: this Lock waited on a lock of the other library.
						if rec.lastSide >= 0 && rec.lastSide != s && called.Before(rec.lastFree) {
							rec.waited[s]++
						}
						rec.mu.Unlock()
						time.Sleep(hold)
						rec.mu.Lock()
						rec.lastSide, rec.lastFree = s, time.Now()
						rec.mu.Unlock()
						rec.inside.Add(-1)
						if ok, err := m.Unlock(); !ok || err != nil {
							rec.mu.Lock()
							rec.unlockErr = append(rec.unlockErr, fmt.Errorf("%s Unlock: ok=%v err=%v", sd.name, ok, err))
							rec.mu.Unlock()
						}
						time.Sleep(rand.N(pause))
					}
				}()
			}
		}
	}
	wg.Wait()

	for n, rec := range records {
		t.Logf("name %d: acquired quorumlock=%d redsync=%d, waited for the other side quorumlock=%d redsync=%d",
			n, rec.acquired[0], rec.acquired[1], rec.waited[0], rec.waited[1])
		if rec.overlaps != 0 {
			t.Errorf("name %d: %d acquisitions found another holder inside", n, rec.overlaps)
		}
		if len(rec.unlockErr) != 0 {
			t.Errorf("name %d: %d Unlocks failed, first: %v", n, len(rec.unlockErr), rec.unlockErr[0])
		}
		for s, sd := range sides {
			if rec.acquired[s] == 0 {
				t.Errorf("name %d: %s never acquired the lock", n, sd.name)
			}
			if rec.waited[s] == 0 {
				t.Errorf("name %d: %s never waited for a lock held by the other library", n, sd.name)
			}
		}
	}
}

func TestMixedFleetUnlockFollowsTheValue(t *testing.T) {
	mf := newMixedFleet(t)
	for _, pair := range [][2]side{{quorumlockSide, redsyncSide}, {redsyncSide, quorumlockSide}} {
		holder, other := pair[0], pair[1]
		prefix := fmt.Sprintf("%s holds, %s", holder.name, other.name)

		t.Run(prefix+" unlocks with the holder's value", func(t *testing.T) {
			name := "mixed:value:" + holder.name
			h := holder.newMutex(mf, name, "")
			if err := h.TryLock(); err != nil {
				t.Fatalf("holder TryLock: %v", err)
			}
			mf.requireValues(t, name, h.Value())
			if ok, err := other.newMutex(mf, name, h.Value()).Unlock(); !ok || err != nil {
				t.Fatalf("%s Unlock WithValue(holder's value) = %v, %v; want true, nil", other.name, ok, err)
			}
			mf.requireValues(t, name, "")
			if ok, err := h.Unlock(); ok || err == nil {
				t.Fatalf("holder's Unlock after the key was released = %v, %v; want false and an error", ok, err)
			}
		})

		t.Run(prefix+" with its own value cannot unlock", func(t *testing.T) {
			name := "mixed:own-value:" + holder.name
			h := holder.newMutex(mf, name, "")
			if err := h.TryLock(); err != nil {
				t.Fatalf("holder TryLock: %v", err)
			}
			if ok, err := other.newMutex(mf, name, "someone-else").Unlock(); ok || err == nil {
				t.Fatalf("%s Unlock WithValue(another value) = %v, %v; want false and an error", other.name, ok, err)
			}
			mf.requireValues(t, name, h.Value())
			if ok, err := h.Unlock(); !ok || err != nil {
				t.Fatalf("holder's Unlock = %v, %v; want true, nil", ok, err)
			}
			mf.requireValues(t, name, "")
		})

		t.Run(prefix+" cannot take it and its Unlock frees nothing", func(t *testing.T) {
			name := "mixed:taken:" + holder.name
			h := holder.newMutex(mf, name, "")
			if err := h.TryLock(); err != nil {
				t.Fatalf("holder TryLock: %v", err)
			}
			o := other.newMutex(mf, name, "")
			if err := o.TryLock(); !isTaken(err) {
				t.Fatalf("%s TryLock on a held name: %v, want ErrTaken", other.name, err)
			}
			if ok, _ := o.Unlock(); ok {
				t.Fatalf("%s Unlock after a failed TryLock reported success", other.name)
			}
			mf.requireValues(t, name, h.Value())
			if ok, err := h.Unlock(); !ok || err != nil {
				t.Fatalf("holder's Unlock = %v, %v; want true, nil", ok, err)
			}
			mf.requireValues(t, name, "")
		})
	}
}
