//go:build linux

package faults

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/quorumlock/redsync/internal/redistest"
)

// ShortDuration is the fault phase of the short profile, sized so that a
// whole run takes about two minutes.
const ShortDuration = 100 * time.Second

// Config configures a Run. The zero value of a field means its default.
type Config struct {
	// Duration is how long faults are injected (default ShortDuration).
	// A quiet period of the longest expiry and a second follows, then the
	// clients stop.
	Duration time.Duration
	// Seed seeds the fault schedule and the clients' choices; 0 draws one
	// from the clock. Report.Seed tells which, to replay a run.
	Seed int64
	// Servers is the number of redis-server processes (default 5).
	Servers int
	// Clients is the number of client processes (default 4).
	Clients int
	// FastWorkers and SlowWorkers are each client's goroutines on the fast
	// names (held for a few milliseconds) and on the slow names (held for
	// one to three expiries); defaults 16 and 4.
	FastWorkers, SlowWorkers int
	// PrimWorkers is each client's goroutines on the other primitives
	// (default 8), Prims the primitives they use (default AllPrims; an
	// empty list after "none" turns them off: see NoPrims).
	PrimWorkers int
	Prims       []string
	// FastNames and SlowNames are how many names of each kind are locked
	// (defaults 4 and 2).
	FastNames, SlowNames int
	// Expiries are the lock expiries the holders use (default 800ms and
	// 2s).
	Expiries []time.Duration
	// Faults are the fault kinds to inject (default SafeFaults).
	Faults []string
	// Clock sets the clock faults among Faults (see ClockFaults).
	Clock ClockConfig
	// Dir receives the records (holdings, client summaries, fault log,
	// client output); default a new temporary directory, kept.
	Dir string
	// ClientCommand starts a client process: the executable and its first
	// arguments, to which the client's flags (ClientFlag first) are
	// appended. The program must call ClientMain when it sees ClientFlag.
	ClientCommand []string
	// Log receives progress lines (default none).
	Log io.Writer
}

func (c *Config) setDefaults() error {
	if c.Duration == 0 {
		c.Duration = ShortDuration
	}
	if c.Seed == 0 {
		c.Seed = time.Now().UnixNano() % 1_000_000_000
	}
	if c.Servers == 0 {
		c.Servers = 5
	}
	if c.Clients == 0 {
		c.Clients = 4
	}
	if c.FastWorkers == 0 && c.SlowWorkers == 0 {
		c.FastWorkers, c.SlowWorkers = 16, 4
	}
	if c.Prims == nil {
		c.Prims = AllPrims
	}
	if c.PrimWorkers == 0 && len(c.Prims) > 0 {
		c.PrimWorkers = 8
	}
	if len(c.Prims) == 0 {
		c.PrimWorkers = 0
	}
	for _, kind := range c.Prims {
		if !contains(AllPrims, kind) {
			return fmt.Errorf("faults: unknown primitive %q (known: %s)", kind, strings.Join(AllPrims, ", "))
		}
	}
	if c.FastNames == 0 {
		c.FastNames = 4
	}
	if c.SlowNames == 0 {
		c.SlowNames = 2
	}
	if len(c.Expiries) == 0 {
		c.Expiries = []time.Duration{800 * time.Millisecond, 2 * time.Second}
	}
	if len(c.Faults) == 0 {
		c.Faults = SafeFaults
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	for _, kind := range c.Faults {
		if !contains(AllFaults, kind) {
			return fmt.Errorf("faults: unknown fault kind %q (known: %s)", kind, strings.Join(AllFaults, ", "))
		}
	}
	switch {
	case c.Duration < 0:
		return fmt.Errorf("faults: negative duration %v", c.Duration)
	case c.Servers < 3:
		return fmt.Errorf("faults: %d servers; a partition of two needs at least 3", c.Servers)
	case c.Clients < 1, c.FastWorkers < 0, c.SlowWorkers < 0, c.PrimWorkers < 0:
		return errors.New("faults: no clients or a negative number of workers")
	case len(c.ClientCommand) == 0:
		return errors.New("faults: Config.ClientCommand is empty: say how to start a client process")
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, item := range list {
		if item == s {
			return true
		}
	}
	return false
}

// Report is the outcome of a Run.
type Report struct {
	Seed        int64           `json:"seed"`
	Duration    time.Duration   `json:"duration"`
	Wall        time.Duration   `json:"wall"`
	Servers     int             `json:"servers"`
	Clients     int             `json:"clients"`
	FastWorkers int             `json:"fast_workers"`
	SlowWorkers int             `json:"slow_workers"`
	PrimWorkers int             `json:"prim_workers,omitempty"`
	Prims       []string        `json:"prims,omitempty"`
	Names       int             `json:"names"`
	Expiries    []time.Duration `json:"expiries"`
	FaultKinds  []string        `json:"fault_kinds"`
	Dir         string          `json:"dir"`
	// Clock sums up the clock faults; nil without any.
	Clock *ClockReport `json:"clock,omitempty"`

	// Ops sums the clients' counters.
	Ops ClientSummary `json:"ops"`
	// Faults counts the faults injected by kind; FaultLog lists them.
	Faults   map[string]int `json:"faults"`
	FaultLog []FaultEvent   `json:"fault_log"`

	Check   CheckResult     `json:"check"`
	Orphans []Orphan        `json:"orphans"`
	Leaks   []ClientSummary `json:"leaks,omitempty"` // the clients that leaked goroutines or hung in Wait
	// Problems are what went wrong with the run itself (a client that
	// crashed, a fault that could not be healed); a run with problems
	// proves nothing.
	Problems []string `json:"problems,omitempty"`
}

// LeakedGoroutines sums the goroutines the clients leaked.
func (r *Report) LeakedGoroutines() int {
	n := 0
	for _, c := range r.Leaks {
		if c.LeakedGoroutines < 0 {
			n++ // hung in Wait: count the client
		} else {
			n += c.LeakedGoroutines
		}
	}
	return n
}

// Run runs the suite: servers, proxies, clients, faults for cfg.Duration,
// a quiet period, then the clients stop and the checker runs. It returns
// an error only when the run could not take place; what the checker found
// is in the Report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	began := time.Now()
	if cfg.Dir == "" {
		dir, err := os.MkdirTemp("", "faultsuite-")
		if err != nil {
			return nil, err
		}
		cfg.Dir = dir
	} else if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	rep := &Report{
		Seed: cfg.Seed, Duration: cfg.Duration, Servers: cfg.Servers, Clients: cfg.Clients,
		FastWorkers: cfg.FastWorkers, SlowWorkers: cfg.SlowWorkers, Names: cfg.FastNames + cfg.SlowNames,
		PrimWorkers: cfg.PrimWorkers, Prims: cfg.Prims,
		Expiries: cfg.Expiries, FaultKinds: cfg.Faults, Dir: cfg.Dir, Faults: map[string]int{},
	}
	fmt.Fprintf(cfg.Log, "faultsuite: seed %d (replay with -seed %d); records in %s\n", cfg.Seed, cfg.Seed, cfg.Dir)

	clock, err := newClockFaults(&cfg)
	if err != nil {
		return nil, err
	}
	defer clock.close()
	servers, stopServers, err := clock.startServers(cfg.Servers)
	if err != nil {
		return nil, err
	}
	defer stopServers()
	proxies, err := startProxies(redistest.Addrs(servers))
	if err != nil {
		return nil, err
	}
	defer proxies.close()

	rng := rand.New(rand.NewSource(cfg.Seed))
	var fastNames, slowNames []string
	for i := 0; i < cfg.FastNames; i++ {
		fastNames = append(fastNames, fmt.Sprintf("faults:fast:%d", i))
	}
	for i := 0; i < cfg.SlowNames; i++ {
		slowNames = append(slowNames, fmt.Sprintf("faults:slow:%d", i))
	}
	procs := make([]*clientProcess, 0, cfg.Clients)
	defer func() {
		for _, p := range procs {
			p.kill()
		}
	}()
	for id := 0; id < cfg.Clients; id++ {
		cc := &clientConfig{
			id: id, addrs: proxies.addrs(), fastNames: fastNames, slowNames: slowNames,
			fastWorkers: cfg.FastWorkers, slowWorkers: cfg.SlowWorkers,
			primWorkers: cfg.PrimWorkers, prims: cfg.Prims,
			expiries: cfg.Expiries, seed: rng.Int63(), dir: cfg.Dir,
		}
		if clock.has(FaultClientClockSlow) {
			cc.clockSlow = clock.cfg.ClientSlow
		}
		p, err := startClient(cfg.ClientCommand, cc)
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
	}
	for _, p := range procs {
		if err := p.waitReady(30 * time.Second); err != nil {
			return nil, err
		}
	}
	pids := make([]int, len(procs))
	for i, p := range procs {
		pids[i] = p.cmd.Process.Pid
	}
	var kinds []string // those that come one at a time
	for _, kind := range cfg.Faults {
		if !backgroundFault(kind) {
			kinds = append(kinds, kind)
		}
	}
	in := &injector{
		rng: rng, kinds: kinds, servers: servers, proxies: proxies, clients: pids, clock: clock,
		names:  append(append([]string(nil), slowNames...), fastNames...),
		minTTL: slices.Min(cfg.Expiries), maxTTL: slices.Max(cfg.Expiries),
	}
	fmt.Fprintf(cfg.Log, "faultsuite: %d servers behind proxies, %d clients × (%d fast + %d slow) goroutines, faults for %v\n",
		cfg.Servers, cfg.Clients, cfg.FastWorkers, cfg.SlowWorkers, cfg.Duration)

	// The fault phase: one fault at a time, a short calm between them.
	phaseStart := time.Now()
	faultLog, err := createJSONLines(filepath.Join(cfg.Dir, "faults.jsonl"))
	if err != nil {
		return nil, err
	}
	sleepCtx(ctx, time.Second) // the clients get going first
	for seq := 1; ctx.Err() == nil && time.Since(phaseStart) < cfg.Duration; seq++ {
		if len(in.kinds) == 0 { // background faults only
			sleepCtx(ctx, cfg.Duration-time.Since(phaseStart))
			break
		}
		ev := in.inject(ctx, seq, in.next())
		faultLog.write(ev)
		rep.Faults[ev.Kind]++
		status := ""
		if ev.Err != "" {
			status = " ERROR: " + ev.Err
			rep.Problems = append(rep.Problems, fmt.Sprintf("fault #%d %s %s: %s", ev.Seq, ev.Kind, ev.Target, ev.Err))
		}
		fmt.Fprintf(cfg.Log, "  %6.1fs  #%-3d %-16s %-12s %s%s\n", time.Since(phaseStart).Seconds(), ev.Seq, ev.Kind, ev.Target, ev.Detail, status)
		sleepCtx(ctx, in.between(200*time.Millisecond, time.Second))
	}
	if err := faultLog.close(); err != nil {
		rep.Problems = append(rep.Problems, err.Error())
	}
	rep.FaultLog = in.events
	if err := in.healAll(); err != nil {
		rep.Problems = append(rep.Problems, err.Error())
	}
	// Quiet: whatever a fault left behind (a request executed late by a
	// resumed server, with nobody left to release it) expires.
	quiet := in.maxTTL + time.Second
	fmt.Fprintf(cfg.Log, "faultsuite: faults healed; %v quiet, then the clients stop\n", quiet)
	sleepCtx(ctx, quiet)

	for _, p := range procs {
		p.stop()
	}
	for _, p := range procs {
		if err := p.wait(3*in.maxTTL + 45*time.Second); err != nil {
			rep.Problems = append(rep.Problems, err.Error())
		}
	}
	// Every client has unlocked and waited for its requests; a hand-off
	// placeholder lives 50 ms.
	time.Sleep(2 * placeholderLife)
	background, err := clock.finish(cfg.Dir)
	if err != nil {
		rep.Problems = append(rep.Problems, err.Error())
	}
	for _, ev := range background {
		rep.Faults[ev.Kind]++
	}
	rep.FaultLog = append(rep.FaultLog, background...)

	var holdings []Holding
	byValue := map[string]*Holding{}
	for id := range procs {
		if err := readJSONLines(holdingsPath(cfg.Dir, id), func(h Holding) { holdings = append(holdings, h) }); err != nil {
			rep.Problems = append(rep.Problems, err.Error())
		}
		var sum ClientSummary
		if err := readJSON(summaryPath(cfg.Dir, id), &sum); err != nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("client %d wrote no summary: %v", id, err))
			continue
		}
		rep.Ops.add(&sum)
		if sum.LeakedGoroutines != 0 || sum.WaitStuck {
			rep.Leaks = append(rep.Leaks, sum)
		}
		for _, e := range sum.Errors {
			rep.Problems = append(rep.Problems, fmt.Sprintf("client %d: %s", id, e))
		}
	}
	for i := range holdings {
		byValue[holdings[i].Value] = &holdings[i]
	}
	orphanCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	rep.Orphans, err = findOrphans(orphanCtx, servers, byValue)
	cancel()
	if err != nil {
		rep.Problems = append(rep.Problems, err.Error())
	}
	rep.Check = Check(holdings, rep.FaultLog, in.maxTTL)
	rep.Clock = clockReport(clock.kinds, clock.cfg, clock.rated, in.minTTL, rep.Check.Overlaps)
	rep.Wall = time.Since(began)
	if err := writeJSON(filepath.Join(cfg.Dir, "report.json"), rep); err != nil {
		rep.Problems = append(rep.Problems, err.Error())
	}
	return rep, ctx.Err()
}

// add sums the counters of s into c.
func (c *ClientSummary) add(s *ClientSummary) {
	c.LockCalls += s.LockCalls
	c.Acquired += s.Acquired
	c.LockFailed += s.LockFailed
	c.ExtendCalls += s.ExtendCalls
	c.ExtendFailed += s.ExtendFailed
	c.Unlocks += s.Unlocks
	c.UnlockFailed += s.UnlockFailed
	c.KeepAlives += s.KeepAlives
	c.HandedOver += s.HandedOver
	c.NotSent += s.NotSent
	c.addPrims(s)
	if s.WaitSeconds > c.WaitSeconds {
		c.WaitSeconds = s.WaitSeconds
	}
	c.LeakedGoroutines += s.LeakedGoroutines
}

// clientProcess is a running client process.
type clientProcess struct {
	id     int
	cmd    *exec.Cmd
	ready  chan error
	done   chan struct{} // closed when the process was reaped
	err    error         // cmd.Wait's, once done is closed
	stderr string        // the file with its standard error
}

func startClient(command []string, cc *clientConfig) (*clientProcess, error) {
	args := append(append([]string(nil), command[1:]...), cc.args()...)
	cmd := exec.Command(command[0], args...)
	p := &clientProcess{id: cc.id, cmd: cmd, ready: make(chan error, 1), done: make(chan struct{}),
		stderr: filepath.Join(cc.dir, fmt.Sprintf("client-%d.stderr", cc.id))}
	errFile, err := os.Create(p.stderr)
	if err != nil {
		return nil, err
	}
	defer errFile.Close() // the child has its own descriptor
	cmd.Stderr = errFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	// Its own process group, so that a Ctrl-C reaches the runner only; and
	// killed if the runner dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("faults: starting client %d: %w", cc.id, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		readySent := false
		for sc.Scan() {
			if !readySent && sc.Text() == readyLine {
				p.ready <- nil
				readySent = true
			}
		}
		if !readySent {
			p.ready <- fmt.Errorf("faults: client %d exited before it was ready; see %s", cc.id, p.stderr)
		}
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *clientProcess) waitReady(timeout time.Duration) error {
	select {
	case err := <-p.ready:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("faults: client %d not ready after %v", p.id, timeout)
	}
}

// stop asks the client to finish: release, wait, report.
func (p *clientProcess) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
}

// wait waits for the client to exit; past timeout it makes it dump its
// goroutines (SIGQUIT) to its standard error file and reports that.
func (p *clientProcess) wait(timeout time.Duration) error {
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("faults: client %d: %v; see %s", p.id, p.err, p.stderr)
		}
		return nil
	case <-time.After(timeout):
		_ = p.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			p.kill()
		}
		return fmt.Errorf("faults: client %d did not stop within %v; its goroutines are in %s", p.id, timeout, p.stderr)
	}
}

// kill kills the client if it still runs and reaps it.
func (p *clientProcess) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Recheck runs the checker again on the records a Run left in dir (its
// report.json, holdings and fault log), for instance after the checker
// changed; what cannot be found again (orphans, leaks, the clients'
// counters) is taken from report.json.
func Recheck(dir string) (*Report, error) {
	rep := &Report{}
	if err := readJSON(filepath.Join(dir, "report.json"), rep); err != nil {
		return nil, err
	}
	var faults []FaultEvent
	if err := readJSONLines(filepath.Join(dir, "faults.jsonl"), func(f FaultEvent) { faults = append(faults, f) }); err != nil {
		return nil, err
	}
	var holdings []Holding
	for id := 0; id < rep.Clients; id++ {
		if err := readJSONLines(holdingsPath(dir, id), func(h Holding) { holdings = append(holdings, h) }); err != nil {
			return nil, err
		}
	}
	rep.Dir = dir
	rep.FaultLog = faults
	rep.Check = Check(holdings, faults, slices.Max(rep.Expiries))
	if rep.Clock != nil {
		rep.Clock = clockReport(rep.Clock.Kinds, rep.Clock.Config, rep.Clock.RatedServer, slices.Min(rep.Expiries), rep.Check.Overlaps)
	}
	return rep, nil
}
