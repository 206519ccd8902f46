package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	quorumlock "github.com/quorumlock/redsync"
)

// workerEnv is the environment variable that makes the lockbench binary
// (or this package's test binary) a worker process of the multi-process
// scenarios: the parent sets it to "1" when it starts its own executable
// again.
const workerEnv = "LOCKBENCH_WORKER"

// RunWorkerIfAsked makes this process a worker of the multi-process
// scenarios and exits when its parent asked for one (the environment
// variable LOCKBENCH_WORKER is "1"); otherwise it returns at once. A
// program that runs Run with the scenarios 7-10 calls it first in main (and
// a test binary in TestMain), since those scenarios start the program's
// own executable again as their workers.
//
// A worker reads a job (one JSON line) on standard input, makes its
// clients and warms them up, writes a line saying it is ready, waits for
// the start time (a second line), runs the job and writes its records (one
// JSON line) on standard output.
func RunWorkerIfAsked() {
	if os.Getenv(workerEnv) != "1" {
		return
	}
	// Standard output carries the records: go-redis must not log there.
	redis.SetLogger(stderrLogger{})
	if err := runWorker(context.Background(), os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "lockbench worker: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

type stderrLogger struct{}

func (stderrLogger) Printf(_ context.Context, format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

// A workerJob is what one worker process does.
type workerJob struct {
	Proc    int      `json:"proc"`    // the process's number in the run, from 0
	Library string   `json:"library"` // libQuorumlock or libRedsync
	Addrs   []string `json:"addrs"`   // one go-redis client each, default options
	Name    string   `json:"name"`    // the lock's name, shared by every process
	// Goroutines each make their own Mutex on Name.
	Goroutines int `json:"goroutines"`
	// Warmup is the number of Lock+Unlock of each goroutine, on a name of
	// its own, before the worker says it is ready.
	Warmup int `json:"warmup"`
	// Hold and Duration shape a contention job: each goroutine locks,
	// holds the lock for Hold, unlocks and locks again at once, until
	// Duration after the start.
	Hold     time.Duration `json:"hold"`
	Duration time.Duration `json:"duration"`
	// StockKey makes it a flash-sale job instead: each goroutine is one
	// buyer that locks once, reads the stock (on the first server),
	// decrements it if positive, writes it back and unlocks.
	StockKey string `json:"stock_key,omitempty"`
	// PingEvery, when not zero, makes the worker PING the first server
	// that often during a contention job, on a client of its own: the
	// round trip under the job's load.
	PingEvery time.Duration `json:"ping_every,omitempty"`
	// Elect makes it a candidate of scenario 10 instead: it campaigns on
	// Name with default options (see electInWorker).
	Elect bool `json:"elect,omitempty"`
	// Expiry, when not zero, is the candidates' WithExpiry.
	Expiry time.Duration `json:"expiry,omitempty"`
}

// workerStart tells the workers when to begin (Unix nanoseconds, wall
// clock: every process of the run is on one machine).
type workerStart struct {
	Start int64 `json:"start"`
}

// workerReady is the worker's first line: ready, or why not.
type workerReady struct {
	Ready bool   `json:"ready"`
	Err   string `json:"err,omitempty"`
}

// workerResult is the worker's last line: one record per Lock call.
type workerResult struct {
	Calls []callRecord `json:"calls"`
	// Pings are the round trips of the PINGs sent during the job
	// (PingEvery), in nanoseconds.
	Pings []int64 `json:"pings,omitempty"`
	// CPU is the processor time (user and system) the worker used from
	// the start to the end of the job, in nanoseconds.
	CPU int64  `json:"cpu"`
	Err string `json:"err,omitempty"`
}

// A callRecord is one Lock call of one goroutine and, when it acquired, its
// Unlock. Times are wall-clock Unix nanoseconds.
type callRecord struct {
	Proc int `json:"p"`
	G    int `json:"g"` // the goroutine, within its process
	// Call is when Lock was called, Return when it returned.
	Call   int64 `json:"c"`
	Return int64 `json:"l"`
	// Unlock is when Unlock was called, Unlocked when it returned; zero
	// when Lock failed.
	Unlock   int64 `json:"u,omitempty"`
	Unlocked int64 `json:"r,omitempty"`
	// Err is Lock's error; GiveUp is set when it came before the end of
	// the run (not the end's cancellation).
	Err    string `json:"e,omitempty"`
	GiveUp bool   `json:"gu,omitempty"`
	// UnlockErr is Unlock's error.
	UnlockErr string `json:"ue,omitempty"`
	// Attempts and Handed are what this library's Observer saw of the
	// call (zero for redsync): attempts made, and whether the attempt
	// that acquired took a hand-over instead of its own SET.
	Attempts int  `json:"a,omitempty"`
	Handed   bool `json:"h,omitempty"`
	// AttemptsAt are when the call's attempts were decided (Unix
	// nanoseconds), the last one the acquiring one when it acquired.
	AttemptsAt []int64 `json:"at,omitempty"`
	// Sold and SaleErr are a buyer's purchase (flash-sale jobs).
	Sold    bool   `json:"s,omitempty"`
	SaleErr string `json:"se,omitempty"`
}

// ok reports whether the call acquired the lock.
func (c *callRecord) ok() bool { return c.Err == "" }

// runWorker is the worker's life, on in (the parent's lines) and out.
func runWorker(ctx context.Context, in io.Reader, out io.Writer) error {
	lines := bufio.NewScanner(in)
	lines.Buffer(make([]byte, 64<<10), 16<<20)
	enc := json.NewEncoder(out)
	var job workerJob
	if err := readLine(lines, &job); err != nil {
		return fmt.Errorf("reading the job: %w", err)
	}
	clients := make([]*redis.Client, len(job.Addrs))
	for i, a := range job.Addrs {
		clients[i] = redis.NewClient(&redis.Options{Addr: a})
	}
	defer closeClients(clients)
	if job.Elect {
		return electInWorker(ctx, lines, enc, clients, job)
	}
	obs := &callObserver{}
	opts := lockOptions{}
	if job.Library == libQuorumlock {
		opts.observer = obs
	}
	l := libraryNamed(job.Library).open(clients, opts)

	if err := warmupWorker(ctx, l, job); err != nil {
		_ = enc.Encode(workerReady{Err: err.Error()})
		return err
	}
	if err := enc.Encode(workerReady{Ready: true}); err != nil {
		return err
	}
	var start workerStart
	if err := readLine(lines, &start); err != nil {
		return fmt.Errorf("reading the start: %w", err)
	}
	time.Sleep(time.Until(time.Unix(0, start.Start)))

	stopProfile, err := startWorkerProfile(job)
	if err != nil {
		return err
	}
	var res workerResult
	cpuBefore := processCPU()
	if job.StockKey != "" {
		res.Calls = buy(ctx, l, clients[0], job)
	} else {
		end := time.Unix(0, start.Start).Add(job.Duration)
		pings := make(chan []int64, 1)
		go func() { pings <- pingUntil(ctx, job, end) }()
		res.Calls = contendInWorker(ctx, l, job, end)
		res.Pings = <-pings
	}
	res.CPU = int64(processCPU() - cpuBefore)
	stopProfile()
	return enc.Encode(res)
}

// profileEnv names a directory where, when set, every worker writes a CPU
// profile of its job (from the start to the end), named after the lock and
// the process: where a library's time goes across processes.
const profileEnv = "LOCKBENCH_CPUPROFILE"

// startWorkerProfile starts the CPU profile profileEnv asks for, if any,
// and returns what stops it.
func startWorkerProfile(job workerJob) (stop func(), err error) {
	dir := os.Getenv(profileEnv)
	if dir == "" {
		return func() {}, nil
	}
	name := strings.NewReplacer(":", "_", "/", "_").Replace(job.Name)
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s.proc%d.pprof", name, job.Proc)))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// pingUntil PINGs the job's first server every job.PingEvery until end,
// on a client of its own, and returns the round trips; none when
// PingEvery is zero.
func pingUntil(ctx context.Context, job workerJob, end time.Time) []int64 {
	if job.PingEvery <= 0 {
		return nil
	}
	c := redis.NewClient(&redis.Options{Addr: job.Addrs[0]})
	defer c.Close()
	_ = c.Ping(ctx).Err() // dials
	var rtts []int64
	tick := time.NewTicker(job.PingEvery)
	defer tick.Stop()
	for now := range tick.C {
		if now.After(end) {
			break
		}
		begin := time.Now()
		if err := c.Ping(ctx).Err(); err == nil {
			rtts = append(rtts, int64(time.Since(begin)))
		}
	}
	return rtts
}

// readLine decodes the next line of lines into v.
func readLine(lines *bufio.Scanner, v any) error {
	if !lines.Scan() {
		if err := lines.Err(); err != nil {
			return err
		}
		return io.ErrUnexpectedEOF
	}
	return json.Unmarshal(lines.Bytes(), v)
}

// warmupWorker makes each goroutine's connections and loads the scripts:
// every goroutine locks and unlocks a name of its own job.Warmup times, at
// once, and PING reaches every server.
func warmupWorker(ctx context.Context, l locker, job workerJob) error {
	errs := make([]error, job.Goroutines)
	var wg sync.WaitGroup
	for g := range job.Goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := l.newMutex(fmt.Sprintf("%s:warmup:%d:%d", job.Name, job.Proc, g))
			errs[g] = warmup(ctx, m, job.Warmup)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// contendInWorker runs the job's goroutines on its name until end: lock,
// hold, unlock, lock again at once.
func contendInWorker(ctx context.Context, l locker, job workerJob, end time.Time) []callRecord {
	runCtx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	perG := make([][]callRecord, job.Goroutines)
	var wg sync.WaitGroup
	for g := range job.Goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := l.newMutex(job.Name)
			var recs []callRecord
			for runCtx.Err() == nil {
				rec := lockObserved(runCtx, m, job.Proc, g)
				if rec.ok() {
					time.Sleep(job.Hold)
					// Not runCtx: the lock is released after the end too.
					unlockTimed(ctx, m, &rec)
				} else {
					rec.GiveUp = runCtx.Err() == nil
				}
				recs = append(recs, rec)
			}
			perG[g] = recs
		}()
	}
	wg.Wait()
	var all []callRecord
	for _, recs := range perG {
		all = append(all, recs...)
	}
	return all
}

// buy is a flash-sale job: each goroutine is one buyer, once.
func buy(ctx context.Context, l locker, stock *redis.Client, job workerJob) []callRecord {
	recs := make([]callRecord, job.Goroutines)
	var wg sync.WaitGroup
	for g := range job.Goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := l.newMutex(job.Name)
			rec := lockObserved(ctx, m, job.Proc, g)
			if rec.ok() {
				left, err := stock.Get(ctx, job.StockKey).Int()
				if err == nil && left > 0 {
					if err = stock.Set(ctx, job.StockKey, left-1, 0).Err(); err == nil {
						rec.Sold = true
					}
				}
				if err != nil {
					rec.SaleErr = err.Error()
				}
				unlockTimed(ctx, m, &rec)
			} else {
				rec.GiveUp = true
			}
			recs[g] = rec
		}()
	}
	wg.Wait()
	return recs
}

// lockObserved calls Lock on m and records the call.
func lockObserved(ctx context.Context, m mutex, proc, g int) callRecord {
	stats := &callStats{}
	cctx := context.WithValue(ctx, callStatsKey{}, stats)
	call := time.Now()
	err := m.lock(cctx)
	rec := callRecord{Proc: proc, G: g, Call: call.UnixNano(), Return: time.Now().UnixNano(),
		Attempts: stats.attempts, Handed: stats.handed, AttemptsAt: stats.at}
	if err != nil {
		rec.Err = err.Error()
	}
	return rec
}

// unlockTimed calls Unlock on m and records it in rec.
func unlockTimed(ctx context.Context, m mutex, rec *callRecord) {
	rec.Unlock = time.Now().UnixNano()
	err := m.unlock(ctx)
	rec.Unlocked = time.Now().UnixNano()
	if err != nil {
		rec.UnlockErr = err.Error()
	}
}

// callStats is what the Observer saw of one Lock call; the context of the
// call carries it. Only the calling goroutine writes it: the Observer's
// Attempt and Done run on the goroutine that called Lock.
type callStats struct {
	attempts int
	handed   bool
	at       []int64
}

type callStatsKey struct{}

// callObserver fills in the callStats of each Lock call.
type callObserver struct{ quorumlock.BaseObserver }

func (callObserver) Attempt(ctx context.Context, e quorumlock.AttemptEvent) {
	if s, ok := ctx.Value(callStatsKey{}).(*callStats); ok {
		s.at = append(s.at, time.Now().UnixNano())
		if e.Acquired {
			s.handed = e.HandedOver
		}
	}
}

func (callObserver) Done(ctx context.Context, e quorumlock.DoneEvent) {
	if s, ok := ctx.Value(callStatsKey{}).(*callStats); ok && e.Op == quorumlock.OpLock {
		s.attempts = e.Attempts
	}
}
