//go:build linux

package faults

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/quorumlock/redsync"
	"github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis"
	goredislib "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"go.uber.org/goleak"
)

// ClientFlag is the flag that turns a program into a client process of
// the suite: Run starts its clients as the same executable with this flag
// first, and the program's main must then call ClientMain.
const ClientFlag = "-client"

// clientConfig configures one client process; Run passes it as flags.
type clientConfig struct {
	id          int
	addrs       []string // one address per server (the proxies)
	fastNames   []string // names held briefly, by fastWorkers goroutines
	slowNames   []string // names held for longer than the expiry, by slowWorkers
	fastWorkers int
	slowWorkers int
	primWorkers int      // goroutines on the other primitives (see workPrims)
	prims       []string // the primitives they use (Kind constants)
	expiries    []time.Duration
	seed        int64
	dir         string  // where the records go
	clockSlow   float64 // FaultClientClockSlow: how slow the holders' clock runs (see clientClock)
}

func (c *clientConfig) args() []string {
	return []string{
		ClientFlag,
		"-id", fmt.Sprint(c.id),
		"-addrs", strings.Join(c.addrs, ","),
		"-fast-names", strings.Join(c.fastNames, ","),
		"-slow-names", strings.Join(c.slowNames, ","),
		"-fast-workers", fmt.Sprint(c.fastWorkers),
		"-slow-workers", fmt.Sprint(c.slowWorkers),
		"-prim-workers", fmt.Sprint(c.primWorkers),
		"-prims", strings.Join(c.prims, ","),
		"-expiries", joinDurations(c.expiries),
		"-seed", fmt.Sprint(c.seed),
		"-dir", c.dir,
		"-clock-slow", strconv.FormatFloat(c.clockSlow, 'g', -1, 64),
	}
}

func holdingsPath(dir string, id int) string {
	return filepath.Join(dir, fmt.Sprintf("holdings-%d.jsonl", id))
}

func summaryPath(dir string, id int) string {
	return filepath.Join(dir, fmt.Sprintf("client-%d.json", id))
}

// readyLine is what a client prints on its standard output once it is
// about to lock.
const readyLine = "faults-client-ready"

// ClientMain runs a client process of the suite with the arguments that
// Run gave it (args[0] is ClientFlag) and returns the exit code. It locks
// until SIGTERM, then releases what it holds, waits for its requests
// (Redsync.Wait), closes its clients, looks for leaked goroutines and
// writes its records and summary. It writes nothing but readyLine to its
// standard output; errors go to standard error.
func ClientMain(args []string) int {
	cfg, err := parseClientArgs(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// Everything running now (the signal watcher, the runtime's own) is
	// not the client's to stop.
	baseline := goleak.IgnoreCurrent()
	if err := runClient(ctx, cfg, baseline); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func parseClientArgs(args []string) (*clientConfig, error) {
	if len(args) == 0 || args[0] != ClientFlag {
		return nil, fmt.Errorf("faults: a client's first argument must be %s", ClientFlag)
	}
	fs := flag.NewFlagSet("faults client", flag.ContinueOnError)
	cfg := &clientConfig{}
	var addrs, fast, slow, expiries, prims string
	fs.IntVar(&cfg.id, "id", 0, "client id")
	fs.StringVar(&addrs, "addrs", "", "server addresses, comma-separated")
	fs.StringVar(&fast, "fast-names", "", "names held briefly")
	fs.StringVar(&slow, "slow-names", "", "names held past the expiry")
	fs.IntVar(&cfg.fastWorkers, "fast-workers", 0, "goroutines on the fast names")
	fs.IntVar(&cfg.slowWorkers, "slow-workers", 0, "goroutines on the slow names")
	fs.IntVar(&cfg.primWorkers, "prim-workers", 0, "goroutines on the other primitives")
	fs.StringVar(&prims, "prims", "", "the other primitives, comma-separated")
	fs.StringVar(&expiries, "expiries", "", "lock expiries, comma-separated")
	fs.Int64Var(&cfg.seed, "seed", 0, "random seed")
	fs.StringVar(&cfg.dir, "dir", "", "directory of the records")
	fs.Float64Var(&cfg.clockSlow, "clock-slow", 0, "how slow the holders' clock runs, a fraction")
	if err := fs.Parse(args[1:]); err != nil {
		return nil, err
	}
	cfg.addrs = splitList(addrs)
	cfg.fastNames = splitList(fast)
	cfg.slowNames = splitList(slow)
	cfg.prims = splitList(prims)
	var err error
	if cfg.expiries, err = parseDurations(expiries); err != nil {
		return nil, err
	}
	switch {
	case len(cfg.addrs) == 0:
		return nil, errors.New("faults client: -addrs is empty")
	case len(cfg.expiries) == 0:
		return nil, errors.New("faults client: -expiries is empty")
	case cfg.dir == "":
		return nil, errors.New("faults client: -dir is empty")
	case cfg.fastWorkers > 0 && len(cfg.fastNames) == 0, cfg.slowWorkers > 0 && len(cfg.slowNames) == 0,
		cfg.primWorkers > 0 && len(cfg.prims) == 0:
		return nil, errors.New("faults client: workers without names")
	}
	return cfg, nil
}

// client is the state of one client process.
type client struct {
	cfg      *clientConfig
	rs       *redsync.Redsync
	holdings *jsonLines
	clock    clientClock // the holders' clock

	sum ClientSummary // counters updated atomically

	mu     sync.Mutex // guards errors
	errors []string
}

// unexpected records an error that no fault explains.
func (c *client) unexpected(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.errors) < 100 {
		c.errors = append(c.errors, fmt.Sprintf(format, args...))
	}
}

func runClient(ctx context.Context, cfg *clientConfig, baseline goleak.Option) error {
	holdings, err := createJSONLines(holdingsPath(cfg.dir, cfg.id))
	if err != nil {
		return err
	}
	rclients := make([]*goredislib.Client, len(cfg.addrs))
	pools := make([]redis.Pool, len(cfg.addrs))
	for i, addr := range cfg.addrs {
		rclients[i] = newRedisClient(addr, 4*(cfg.fastWorkers+cfg.slowWorkers+cfg.primWorkers))
		pools[i] = goredis.NewPool(rclients[i])
	}
	c := &client{cfg: cfg, rs: redsync.New(pools...), holdings: holdings, clock: clientClock{slow: cfg.clockSlow}}
	c.rs.SetObserver(opCounter{handedOver: &c.sum.HandedOver, notSent: &c.sum.NotSent})
	c.sum.Client = cfg.id
	c.sum.Pid = os.Getpid()
	c.sum.Prims = newPrimOps(cfg.prims)

	fmt.Println(readyLine)
	var wg sync.WaitGroup
	for w := 0; w < cfg.fastWorkers+cfg.slowWorkers+cfg.primWorkers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			if w >= cfg.fastWorkers+cfg.slowWorkers {
				c.workPrims(ctx, w)
				return
			}
			c.work(ctx, w, w >= cfg.fastWorkers)
		}(w)
	}
	wg.Wait()

	// Every holder has unlocked; what is still in flight completes within
	// the longest expiry.
	waitStart := time.Now()
	waited := make(chan struct{})
	go func() {
		c.rs.Wait()
		close(waited)
	}()
	select {
	case <-waited:
	case <-time.After(3*slices.Max(cfg.expiries) + 10*time.Second):
		c.sum.WaitStuck = true
	}
	c.sum.WaitSeconds = time.Since(waitStart).Seconds()
	for _, rc := range rclients {
		if err := rc.Close(); err != nil {
			c.unexpected("closing the client of %s: %v", rc.Options().Addr, err)
		}
	}
	if c.sum.WaitStuck {
		c.sum.Leaks = allStacks()
		c.sum.LeakedGoroutines = -1
	} else if err := goleak.Find(baseline); err != nil {
		c.sum.Leaks = err.Error()
		c.sum.LeakedGoroutines = strings.Count(err.Error(), "Goroutine ")
	}
	if err := holdings.close(); err != nil {
		c.unexpected("writing the holdings: %v", err)
	}
	c.mu.Lock()
	c.sum.Errors = c.errors
	c.mu.Unlock()
	return writeJSON(summaryPath(cfg.dir, cfg.id), &c.sum)
}

// newRedisClient returns a go-redis client for one server: commands
// bounded by their context's deadline (the library's per-request
// deadlines), no retries, and no other traffic of go-redis' own.
func newRedisClient(addr string, poolSize int) *goredislib.Client {
	return goredislib.NewClient(&goredislib.Options{
		Addr:                  addr,
		DialTimeout:           time.Second,
		ReadTimeout:           3 * time.Second,
		WriteTimeout:          3 * time.Second,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		PoolSize:              poolSize,
		PoolTimeout:           time.Second,
		DisableIdentity:       true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	})
}

// work locks and releases until ctx ends. A fast worker holds one of the
// fast names for at most a few milliseconds, in any mode; a slow worker
// holds one of the slow names for one to three expiries, extending it by
// hand or with KeepAlive.
func (c *client) work(ctx context.Context, worker int, slow bool) {
	rng := rand.New(rand.NewSource(c.cfg.seed*1_000_003 + int64(c.cfg.id)*1009 + int64(worker)))
	for seq := 1; ctx.Err() == nil; {
		expiry := c.cfg.expiries[rng.Intn(len(c.cfg.expiries))]
		p := plan{expiry: expiry}
		if slow {
			p.name = c.cfg.slowNames[rng.Intn(len(c.cfg.slowNames))]
			p.mode = []string{ModeExtend, ModeKeepAlive}[rng.Intn(2)]
			p.hold = expiry + time.Duration(rng.Int63n(int64(2*expiry)))
			p.lockTimeout = 2*slices.Max(c.cfg.expiries) + 2*time.Second
			p.step = 5 * time.Millisecond
			p.extendEvery = expiry / 3
		} else {
			p.name = c.cfg.fastNames[rng.Intn(len(c.cfg.fastNames))]
			if rng.Intn(5) == 0 {
				// A name only this client's fast workers lock: nobody
				// else listens for it, so its Unlocks hand it over.
				p.name = ownName(c.cfg.id)
			}
			p.mode = []string{ModePlain, ModePlain, ModeExtend, ModeKeepAlive}[rng.Intn(4)]
			p.hold = time.Duration(rng.Int63n(int64(3 * time.Millisecond)))
			p.lockTimeout = 2 * time.Second
			p.step = time.Millisecond
			p.extendEvery = time.Millisecond
		}
		if c.holdOnce(ctx, worker, seq, p) {
			seq++
		}
	}
}

// plan is what a worker does with one lock.
type plan struct {
	name        string
	mode        string
	expiry      time.Duration
	hold        time.Duration // how long the holder works under the lock
	lockTimeout time.Duration
	step        time.Duration // how often the holder checks its lock while it works
	extendEvery time.Duration // in ModeExtend, the pause between extensions
}

// holdOnce locks p.name, works under the lock as p says while watching
// it, unlocks, and records the holding. It reports whether it acquired.
func (c *client) holdOnce(ctx context.Context, worker, seq int, p plan) bool {
	// Values that tell who holds the lock and how, so that the runner can
	// pause a client that holds one.
	values := redsync.WithGenValueFunc(func() (string, error) { return newValue(c.cfg.id, p.mode) })
	m := c.rs.NewMutex(p.name, append([]redsync.Option{redsync.WithExpiry(p.expiry), values}, fencingOptions(p.name)...)...)
	lockCtx, cancel := context.WithTimeout(ctx, p.lockTimeout)
	handed := new(atomic.Bool) // set by opCounter on a hand-over
	lockCtx = context.WithValue(lockCtx, handedKey{}, handed)
	atomic.AddInt64(&c.sum.LockCalls, 1)
	// Read last before the call and first after it: a pause of the
	// process between the reads and the call only widens the interval,
	// which the fencing check needs to contain the real acquisition.
	lockStart := monoNow()
	err := m.LockContext(lockCtx)
	acquired := monoNow()
	cancel()
	if err != nil {
		atomic.AddInt64(&c.sum.LockFailed, 1)
		if errors.Is(err, redsync.ErrInvalidArgument) {
			c.unexpected("Lock %s: %v", p.name, err)
		}
		return false
	}
	atomic.AddInt64(&c.sum.Acquired, 1)
	until := m.Until()
	h := &Holding{
		Name: p.name, Client: c.cfg.id, Worker: worker, Seq: seq, Value: m.Value(), Mode: p.mode,
		ExpiryMS: p.expiry.Milliseconds(), LockStart: lockStart, Acquired: acquired,
		Until: monoOf(c.clock.believed(until, p.expiry)), HandedOver: handed.Load(),
	}
	if c.clock.slow != 0 {
		h.HostUntil = monoOf(until)
	}
	if fencedName(p.name) {
		h.Token = fencingToken(m)
	}

	var held context.Context // the KeepAlive context, in ModeKeepAlive
	if p.mode == ModeKeepAlive {
		atomic.AddInt64(&c.sum.KeepAlives, 1)
		held = c.keepAlive(h, m.KeepAlive)
	}
	ok, _ := c.hold(ctx, h, m, held, until, p, m.UnlockContext)
	atomic.AddInt64(&c.sum.Unlocks, 1)
	if !ok {
		atomic.AddInt64(&c.sum.UnlockFailed, 1)
	}
	return true
}

// keepAlive starts keepAlive for the holder h, whose lock was just
// acquired, and returns its context; nil, with h.Lost set, when it
// refused because the validity had ended already.
func (c *client) keepAlive(h *Holding, keepAlive func(context.Context) (context.Context, error)) context.Context {
	held, err := keepAlive(context.Background())
	switch {
	case errors.Is(err, redsync.ErrLockLost):
		// Lock returned after its validity ended (the process was
		// stopped in between): nothing to keep alive.
		h.Lost = &Loss{At: monoNow(), Reason: LossExpired, Cause: err.Error(), CauseLockLost: true}
	case err != nil:
		c.unexpected("KeepAlive %s: %v", h.Name, err)
	}
	return held
}

// hold is what every holder does once it acquired: it works under the
// lock as p says while watching it (held is the KeepAlive context, nil
// without), releases it with release, and records the holding h. It
// returns what release returned.
func (c *client) hold(ctx context.Context, h *Holding, lock heldLock, held context.Context, until time.Time, p plan,
	release func(context.Context) (bool, error)) (bool, error) {
	// doneAt is when the KeepAlive context ended, as soon as a goroutine
	// of its own could tell: the holder, busy or not scheduled, may see it
	// later, and only the earlier of the two says whether the library was
	// late.
	var doneAt int64
	if held != nil && h.Lost == nil {
		stop := context.AfterFunc(held, func() { atomic.StoreInt64(&doneAt, monoNow()) })
		defer stop()
	}
	if h.Lost == nil {
		c.watch(ctx, lock, h, held, until, p)
		if h.Lost != nil && h.Lost.CtxDone != 0 {
			if at := awaitDoneAt(&doneAt); at != 0 && at < h.Lost.CtxDone {
				h.Lost.CtxDone = at
			}
		}
	}

	h.Released = monoNow()
	unlockCtx, cancel := context.WithTimeout(context.Background(), 2*p.expiry+time.Second)
	ok, err := release(unlockCtx)
	h.UnlockDone = monoNow()
	cancel()
	if err != nil {
		h.UnlockErr = err.Error()
		if errors.Is(err, redsync.ErrInvalidArgument) || errors.Is(err, redsync.ErrNotHeld) {
			c.unexpected("Unlock %s: %v", p.name, err)
		}
	}
	if held != nil && held.Err() == nil {
		c.unexpected("Unlock %s returned with the KeepAlive context still live", p.name)
	}
	c.holdings.write(h)
	return ok, err
}

// heldLock is what watch needs of a held lock: *redsync.Mutex and
// *redsync.MultiMutex have it, and adapters give it to the others.
type heldLock interface {
	Until() time.Time
	ExtendContext(ctx context.Context) (bool, error)
}

// watch is the holder's work: it runs for p.hold (or until ctx ends),
// checking every p.step that the lock is still valid (Until not passed,
// the KeepAlive context live), extending it in ModeExtend, and noting every
// new Until.
func (c *client) watch(ctx context.Context, m heldLock, h *Holding, held context.Context, until time.Time, p plan) {
	var heldDone <-chan struct{}
	if held != nil {
		heldDone = held.Done()
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	start := time.Now()
	end := start.Add(p.hold)
	nextExtend := start.Add(p.extendEvery)
	for {
		wait := min(time.Until(end), p.step)
		if wait < 0 {
			wait = 0
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-heldDone:
			h.Lost = lossOf(held, LossContext)
			return
		case <-timer.C:
		}
		if u := m.Until(); !u.Equal(until) {
			until = u
			h.Extensions = append(h.Extensions, Extension{At: monoNow(), Until: monoOf(c.clock.believed(u, p.expiry))})
		}
		if !time.Now().Before(c.clock.believed(until, p.expiry)) {
			// Past Until (the process was stopped, or an extension came
			// too late): the KeepAlive context must end at once, if it
			// did not before.
			h.Lost = noticeExpiry(held)
			return
		}
		if p.mode == ModeExtend && !time.Now().Before(nextExtend) {
			atomic.AddInt64(&c.sum.ExtendCalls, 1)
			extendCtx, cancel := context.WithTimeout(ctx, p.expiry)
			ok, err := m.ExtendContext(extendCtx)
			cancel()
			if ok {
				until = m.Until()
				h.Extensions = append(h.Extensions, Extension{At: monoNow(), Until: monoOf(c.clock.believed(until, p.expiry))})
			} else {
				atomic.AddInt64(&c.sum.ExtendFailed, 1)
				if errors.Is(err, redsync.ErrInvalidArgument) || errors.Is(err, redsync.ErrNotHeld) {
					c.unexpected("Extend %s: %v", p.name, err)
				}
			}
			nextExtend = time.Now().Add(p.extendEvery)
		}
		if !time.Now().Before(end) {
			// The work is done; whether it ended in time tells how it
			// went (an Extend that returned after a stop may have let
			// Until pass).
			if !time.Now().Before(c.clock.believed(m.Until(), p.expiry)) {
				h.Lost = noticeExpiry(held)
			}
			return
		}
	}
}

// awaitDoneAt returns *doneAt once the AfterFunc that sets it ran, waiting
// a little for it (it runs on a goroutine of its own); 0 if it did not run.
func awaitDoneAt(doneAt *int64) int64 {
	for i := 0; i < 100; i++ {
		if at := atomic.LoadInt64(doneAt); at != 0 {
			return at
		}
		time.Sleep(time.Millisecond)
	}
	return 0
}

// lossOf describes a loss noticed now, with the KeepAlive context's
// state (held is nil without KeepAlive).
func lossOf(held context.Context, reason string) *Loss {
	l := &Loss{At: monoNow(), Reason: reason}
	if held == nil || held.Err() == nil {
		return l
	}
	l.CtxDone = l.At
	if cause := context.Cause(held); cause != nil {
		l.Cause = cause.Error()
		l.CauseLockLost = errors.Is(cause, redsync.ErrLockLost)
	}
	return l
}

// noticeExpiry describes the loss of a holder that saw Until pass. With
// KeepAlive, it waits up to two seconds for the context to end (it should
// have ended already) and notes when it saw it end.
func noticeExpiry(held context.Context) *Loss {
	noticed := monoNow()
	if held != nil {
		select {
		case <-held.Done():
		case <-time.After(2 * time.Second):
		}
	}
	l := lossOf(held, LossExpired)
	l.At = noticed
	return l
}

// opCounter counts the acquisitions that took a hand-over and the
// requests not sent to a backlogged server. A hand-over is also marked on
// the Lock call's own flag (the *atomic.Bool under handedKey in its
// context), for the holding's record.
type opCounter struct {
	redsync.BaseObserver
	handedOver, notSent *int64
}

// handedKey is the context key of a Lock call's hand-over flag.
type handedKey struct{}

func (o opCounter) Attempt(ctx context.Context, e redsync.AttemptEvent) {
	if e.Acquired && e.HandedOver {
		atomic.AddInt64(o.handedOver, 1)
		if flag, ok := ctx.Value(handedKey{}).(*atomic.Bool); ok {
			flag.Store(true)
		}
	}
}

func (o opCounter) Node(_ context.Context, e redsync.NodeEvent) {
	if errors.Is(e.Err, redsync.ErrBacklogged) {
		atomic.AddInt64(o.notSent, 1)
	}
}

// fencingOptions are the options that switch fencing on for the holders
// of name in a run and in the restart scenarios, so that every acquisition
// of a fenced name (see fencedName) has a token for the checker to order.
func fencingOptions(name string) []redsync.Option {
	if !fencedName(name) {
		return nil
	}
	return []redsync.Option{redsync.WithFencing(true)}
}

// fencedName reports whether the holders of name lock with fencing: all
// but every other fast name ("faults:fast:1", "faults:fast:3" and so on)
// and the clients' own names (see ownName), whose holders go without, so
// that the runs cover hand-overs with and without a token, and names where
// only some holders fence.
func fencedName(name string) bool {
	const fast = "faults:fast:"
	if strings.HasPrefix(name, ownNamePrefix) {
		return false
	}
	if !strings.HasPrefix(name, fast) {
		return true
	}
	i, err := strconv.Atoi(name[len(fast):])
	return err != nil || i%2 == 0
}

// ownName is the name that only client id's fast workers lock, a fifth of
// the time: with no other process listening for it, nearly every release
// of it hands it over to a waiter.
func ownName(id int) string {
	return ownNamePrefix + strconv.Itoa(id)
}

const ownNamePrefix = "faults:own:"

// fencingToken returns the token of m's last acquisition, for the
// record. A successful Lock with fencing must not leave the token 0; a 0
// is recorded as it is, and the order check flags it after any earlier
// holding of the name.
func fencingToken(m *redsync.Mutex) *uint64 {
	token := m.Token()
	return &token
}

// newValue makes a lock value as the library does (16 random bytes,
// base64), prefixed with the client's id and the holder's mode:
// "c<id>/<mode>/...".
func newValue(client int, mode string) (string, error) {
	var b [16]byte
	if _, err := cryptorand.Read(b[:]); err != nil {
		return "", err
	}
	return fmt.Sprintf("c%d/%s/%s", client, mode, base64.StdEncoding.EncodeToString(b[:])), nil
}

// parseValue returns the client and mode that made a lock value; client
// is -1 for a value newValue did not make.
func parseValue(value string) (client int, mode string) {
	parts := strings.SplitN(value, "/", 3)
	if len(parts) != 3 || !strings.HasPrefix(parts[0], "c") {
		return -1, ""
	}
	id, err := strconv.Atoi(parts[0][1:])
	if err != nil {
		return -1, ""
	}
	return id, parts[1]
}

// allStacks returns the stacks of every goroutine.
func allStacks() string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}
