package bench

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/bsm/redislock"
	redsyncv4 "github.com/go-redsync/redsync/v4"
	redsyncv4redis "github.com/go-redsync/redsync/v4/redis"
	redsyncv4goredis "github.com/go-redsync/redsync/v4/redis/goredis/v9"
	"github.com/redis/go-redis/v9"

	quorumlock "github.com/quorumlock/redsync"
	quorumlockredis "github.com/quorumlock/redsync/redis"
	quorumlockgoredis "github.com/quorumlock/redsync/redis/goredis"
)

// lockExpiry is the lock's time to live everywhere: the default of redsync
// and of this library, also given to redislock and the floor.
const lockExpiry = 8 * time.Second

// The library names, as they appear in the tables.
const (
	libQuorumlock = "quorumlock"
	libRedsync    = "redsync"
	libRedislock  = "redislock"
	libFloor      = "floor"
)

// A library is one way of locking that the benchmarks compare.
type library struct {
	name string
	// singleServer is set for libraries that lock on one server only.
	singleServer bool
	// open returns a locker over clients, one go-redis client per server.
	open func(clients []*redis.Client, opts lockOptions) locker
}

// lockOptions are the few non-default settings some scenarios need. The
// zero value means each library's defaults.
type lockOptions struct {
	// failFast is WithFailFast(true) (quorumlock and redsync only).
	failFast bool
	// retry makes redislock retry with exponential backoff between 16 ms
	// and 256 ms (its own default is not to retry at all).
	retry bool
	// floorAtQuorum makes the floor return as soon as a quorum of servers
	// answered ok instead of waiting for every server.
	floorAtQuorum bool
	// fencing is WithFencing(true) (quorumlock only).
	fencing bool
	// observer, when not nil, observes every Mutex (quorumlock only).
	observer quorumlock.Observer
}

// A locker makes mutexes of one library over one set of servers.
type locker interface {
	newMutex(name string) mutex
}

// A mutex is one holder's handle on a lock name, used by one goroutine.
type mutex interface {
	lock(ctx context.Context) error
	unlock(ctx context.Context) error
}

// errNotHeld is returned by unlock when the library reports, without an
// error of its own, that the lock was not released on a quorum.
var errNotHeld = errors.New("unlock: lock not released on a quorum")

// errNotAcquired is the floor's error when a quorum did not answer ok.
var errNotAcquired = errors.New("floor: lock not acquired on a quorum")

// allLibraries lists the libraries in the order of the tables.
var allLibraries = []library{
	{name: libQuorumlock, open: openQuorumlock},
	{name: libRedsync, open: openRedsync},
	{name: libRedislock, singleServer: true, open: openRedislock},
	{name: libFloor, open: openFloor},
}

// librariesFor returns the libraries that apply to n servers, without those
// named in skip.
func librariesFor(n int, skip ...string) []library {
	var libs []library
next:
	for _, lib := range allLibraries {
		if lib.singleServer && n != 1 {
			continue
		}
		for _, s := range skip {
			if lib.name == s {
				continue next
			}
		}
		libs = append(libs, lib)
	}
	return libs
}

// libraryNamed returns the library called name; it panics on an unknown
// name, which is a bug in this package.
func libraryNamed(name string) library {
	for _, lib := range allLibraries {
		if lib.name == name {
			return lib
		}
	}
	panic(fmt.Sprintf("bench: unknown library %q", name))
}

// ---- quorumlock: this module's root package ----

type quorumlockLocker struct {
	rs   *quorumlock.Redsync
	opts []quorumlock.Option
}

func openQuorumlock(clients []*redis.Client, o lockOptions) locker {
	pools := make([]quorumlockredis.Pool, len(clients))
	for i, c := range clients {
		pools[i] = quorumlockgoredis.NewPool(c)
	}
	var opts []quorumlock.Option
	if o.failFast {
		opts = append(opts, quorumlock.WithFailFast(true))
	}
	if o.fencing {
		opts = append(opts, quorumlock.WithFencing(true))
	}
	rs := quorumlock.New(pools...)
	if o.observer != nil {
		rs.SetObserver(o.observer)
	}
	return &quorumlockLocker{rs: rs, opts: opts}
}

func (l *quorumlockLocker) newMutex(name string) mutex {
	return quorumlockMutex{l.rs.NewMutex(name, l.opts...)}
}

type quorumlockMutex struct{ m *quorumlock.Mutex }

func (m quorumlockMutex) lock(ctx context.Context) error { return m.m.LockContext(ctx) }

func (m quorumlockMutex) unlock(ctx context.Context) error {
	return unlockResult(m.m.UnlockContext(ctx))
}

// ---- redsync v4 ----

type redsyncLocker struct {
	rs   *redsyncv4.Redsync
	opts []redsyncv4.Option
}

func openRedsync(clients []*redis.Client, o lockOptions) locker {
	pools := make([]redsyncv4redis.Pool, len(clients))
	for i, c := range clients {
		pools[i] = redsyncv4goredis.NewPool(c)
	}
	var opts []redsyncv4.Option
	if o.failFast {
		opts = append(opts, redsyncv4.WithFailFast(true))
	}
	return &redsyncLocker{rs: redsyncv4.New(pools...), opts: opts}
}

func (l *redsyncLocker) newMutex(name string) mutex {
	return redsyncMutex{l.rs.NewMutex(name, l.opts...)}
}

type redsyncMutex struct{ m *redsyncv4.Mutex }

func (m redsyncMutex) lock(ctx context.Context) error { return m.m.LockContext(ctx) }

func (m redsyncMutex) unlock(ctx context.Context) error {
	return unlockResult(m.m.UnlockContext(ctx))
}

// unlockResult turns an Unlock's (ok, err) into one error.
func unlockResult(ok bool, err error) error {
	if err != nil {
		return err
	}
	if !ok {
		return errNotHeld
	}
	return nil
}

// ---- bsm/redislock (one server) ----

type redislockLocker struct {
	client *redislock.Client
	retry  bool
}

func openRedislock(clients []*redis.Client, o lockOptions) locker {
	if len(clients) != 1 {
		panic(fmt.Sprintf("bench: redislock locks on one server, got %d", len(clients)))
	}
	return &redislockLocker{client: redislock.New(clients[0]), retry: o.retry}
}

func (l *redislockLocker) newMutex(name string) mutex {
	return &redislockMutex{locker: l, name: name}
}

type redislockMutex struct {
	locker *redislockLocker
	name   string
	held   *redislock.Lock
}

func (m *redislockMutex) lock(ctx context.Context) error {
	var opts *redislock.Options
	if m.locker.retry {
		// A strategy counts its own tries, so each Obtain needs a new one.
		opts = &redislock.Options{RetryStrategy: redislock.ExponentialBackoff(16*time.Millisecond, 256*time.Millisecond)}
	}
	l, err := m.locker.client.Obtain(ctx, m.name, lockExpiry, opts)
	if err != nil {
		return err
	}
	m.held = l
	return nil
}

func (m *redislockMutex) unlock(ctx context.Context) error {
	l := m.held
	m.held = nil
	return l.Release(ctx)
}

// ---- floor: the raw client, no library ----

// floorRelease is the compare-and-delete script of redsync and of this
// library (same text as redsync's, so the same SHA-1 on the server).
var floorRelease = redis.NewScript(`
	local val = redis.call("GET", KEYS[1])
	if val == ARGV[1] then
		return redis.call("DEL", KEYS[1])
	elseif val == false then
		return -1
	else
		return 0
	end
`)

// floorLocker sends the commands a Redlock library sends, with nothing
// around them: SET NX PX and the release script on every server, one
// goroutine per server when there are several, no retries.
type floorLocker struct {
	clients  []*redis.Client
	quorum   int
	atQuorum bool
}

func openFloor(clients []*redis.Client, o lockOptions) locker {
	return &floorLocker{clients: clients, quorum: len(clients)/2 + 1, atQuorum: o.floorAtQuorum}
}

func (l *floorLocker) newMutex(name string) mutex {
	return &floorMutex{locker: l, name: name}
}

type floorMutex struct {
	locker *floorLocker
	name   string
	value  string
}

func (m *floorMutex) lock(ctx context.Context) error {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	m.value = base64.StdEncoding.EncodeToString(b[:])
	// The requests get copies: with atQuorum, stragglers may still run
	// when the next Lock sets a new value.
	name, value := m.name, m.value
	n := m.locker.onEveryServer(ctx, func(ctx context.Context, c *redis.Client) bool {
		cmd := redis.NewStatusCmd(ctx, "set", name, value, "nx", "px", lockExpiry.Milliseconds())
		_ = c.Process(ctx, cmd)
		return cmd.Err() == nil
	})
	if n < m.locker.quorum {
		_ = m.unlock(ctx)
		return errNotAcquired
	}
	return nil
}

func (m *floorMutex) unlock(ctx context.Context) error {
	name, value := m.name, m.value
	n := m.locker.onEveryServer(ctx, func(ctx context.Context, c *redis.Client) bool {
		status, err := floorRelease.Run(ctx, c, []string{name}, value).Int64()
		return err == nil && status == 1
	})
	if n < m.locker.quorum {
		return errNotHeld
	}
	return nil
}

// onEveryServer runs op on every server and returns how many answered ok:
// inline for one server, otherwise one goroutine per server, waiting for
// all of them or, with atQuorum, only until a quorum answered ok (the other
// goroutines then end on their own, when their server answers or the
// client's read timeout passes).
func (l *floorLocker) onEveryServer(ctx context.Context, op func(context.Context, *redis.Client) bool) int {
	if len(l.clients) == 1 {
		if op(ctx, l.clients[0]) {
			return 1
		}
		return 0
	}
	replies := make(chan bool, len(l.clients))
	for _, c := range l.clients {
		go func(c *redis.Client) { replies <- op(ctx, c) }(c)
	}
	n := 0
	for range l.clients {
		if <-replies {
			n++
			if l.atQuorum && n >= l.quorum {
				break
			}
		}
	}
	return n
}
