// Package bench measures this library (quorumlock) side by side with
// redsync v4, bsm/redislock and the raw go-redis client (the floor) on
// redis-server processes it starts itself on loopback ports.
//
// Run is the whole measurement behind `go run ./cmd/lockbench`: for each
// scenario it runs every library in turn, several rounds with the order
// rotated between rounds, and reports the median of the rounds (with the
// range over rounds), so that the libraries share the machine's state.
// BenchmarkLockUnlock is the uncontended scenario as a standard Go
// benchmark, for benchstat.
//
// Scenarios 7-10 measure across processes: they start the running program
// again as worker processes, which must call RunWorkerIfAsked first in
// main (cmd/lockbench does, and this package's TestMain).
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A Scenario is one of the measurements Run can make.
type Scenario int

// The scenarios, numbered as in the report.
const (
	Uncontended    Scenario = iota + 1 // one goroutine, Lock+Unlock latency and allocations
	Throughput                         // goroutines on their own keys, ops/s
	Contention                         // goroutines on one key, hand-off and fairness
	FlashSale                          // 100 buyers, one key, stock in Redis
	Stalled                            // one of 5 servers stopped (SIGSTOP)
	Robustness                         // cancelled Lock with stalled servers; fail-fast orphans
	Fleet                              // processes on one name: hand-off across processes; a mixed fleet
	FleetSlow                          // Fleet behind proxies that delay every byte
	FleetFlashSale                     // 100 buyers over processes, one name, stock in Redis
	Failover                           // leader election across processes: a killed leader's successor
)

// AllScenarios lists every scenario in report order.
var AllScenarios = []Scenario{Uncontended, Throughput, Contention, FlashSale, Stalled, Robustness, Fleet, FleetSlow, FleetFlashSale, Failover}

var scenarioNames = map[Scenario]string{
	Uncontended:    "uncontended",
	Throughput:     "throughput",
	Contention:     "contention",
	FlashSale:      "flashsale",
	Stalled:        "stalled",
	Robustness:     "robustness",
	Fleet:          "fleet",
	FleetSlow:      "fleet-slow",
	FleetFlashSale: "fleet-flashsale",
	Failover:       "failover",
}

func (s Scenario) String() string {
	if name, ok := scenarioNames[s]; ok {
		return name
	}
	return "scenario(" + strconv.Itoa(int(s)) + ")"
}

// ParseScenarios parses a comma-separated list of scenario numbers (1-10)
// or names (uncontended, throughput, contention, flashsale, stalled,
// robustness, fleet, fleet-slow, fleet-flashsale, failover); "all" or "" selects
// every scenario.
func ParseScenarios(list string) ([]Scenario, error) {
	if list == "" || list == "all" {
		return AllScenarios, nil
	}
	var out []Scenario
	seen := map[Scenario]bool{}
	for _, field := range strings.Split(list, ",") {
		field = strings.TrimSpace(strings.ToLower(field))
		var found Scenario
		for _, s := range AllScenarios {
			if field == s.String() || field == strconv.Itoa(int(s)) {
				found = s
			}
		}
		if found == 0 {
			return nil, fmt.Errorf("unknown scenario %q: want numbers 1-%d or names %s", field, len(AllScenarios), scenarioList())
		}
		if !seen[found] {
			seen[found] = true
			out = append(out, found)
		}
	}
	return out, nil
}

func scenarioList() string {
	names := make([]string, len(AllScenarios))
	for i, s := range AllScenarios {
		names[i] = s.String()
	}
	return strings.Join(names, ", ")
}

// Config says what Run measures and for how long. DefaultConfig and
// QuickConfig return complete ones.
type Config struct {
	Scenarios []Scenario
	// Rounds is how many times each library is measured per scenario; the
	// report gives the median (and the range) of the rounds.
	Rounds int
	// Servers are the numbers of servers to lock on (1, 3, 5); the stalled
	// and robustness scenarios always use 5.
	Servers []int

	// Warmup is the number of Lock+Unlock each library does on its
	// clients before it is measured (dialing, loading scripts).
	Warmup int

	// UncontendedRounds and UncontendedTime are the number and length of
	// the rounds of scenario 1: more and shorter rounds than the other
	// scenarios', since its figures are small and its ratios paired by
	// round.
	UncontendedRounds int
	UncontendedTime   time.Duration

	// ThroughputTime is the length of one round of scenario 2;
	// ThroughputWorkers the number of goroutines, each on its own key.
	ThroughputTime    time.Duration
	ThroughputWorkers int

	// ContentionTime is the length of one round of scenario 3,
	// ContentionWorkers the goroutines sharing one key, ContentionHold how
	// long each holds it.
	ContentionTime    time.Duration
	ContentionWorkers int
	ContentionHold    time.Duration

	// SaleBuyers and SaleStock shape scenario 4.
	SaleBuyers int
	SaleStock  int

	// StalledSamples is the number of Lock+Unlock per round of scenario 5
	// for the libraries that answer quickly; StalledSlowSamples the number
	// (over all rounds) for redsync, each of which is abandoned after
	// StalledCap and reported as at least that.
	StalledSamples     int
	StalledSlowSamples int
	StalledCap         time.Duration
	// StalledLoadTime is the length of one round of scenario 5's load
	// (ThroughputWorkers goroutines, each on its own key).
	StalledLoadTime time.Duration

	// CancelAfter is when the LockContext of scenario 6a is cancelled,
	// ResumeWait how long after resuming the stalled servers the keys are
	// counted again.
	CancelAfter time.Duration
	ResumeWait  time.Duration
	// FailFastOps is the number of Lock+Unlock of scenario 6b.
	FailFastOps int

	// FleetProcs worker processes of FleetGoroutines goroutines each
	// contend in scenarios 7 and 8 for FleetTime per round, each holding
	// the lock FleetHold; each process first warms up (FleetWarmup
	// Lock+Unlock per goroutine). FleetPings PINGs measure the round trip
	// before each round. Scenario 7 runs on Servers, its mixed fleet (one
	// process on redsync v4) on FleetMixedServers.
	FleetProcs        int
	FleetGoroutines   int
	FleetTime         time.Duration
	FleetHold         time.Duration
	FleetWarmup       int
	FleetPings        int
	FleetMixedServers int
	// FleetSlowServers and FleetSlowDelay shape scenario 8: the servers,
	// and the delay its proxies add each way.
	FleetSlowServers int
	FleetSlowDelay   time.Duration
	// FleetSaleBuyers spread over FleetProcs processes buy from a stock of
	// FleetSaleStock on FleetSaleServers servers (scenario 9).
	FleetSaleBuyers  int
	FleetSaleStock   int
	FleetSaleServers []int
	// FailoverExpiry is the candidates' WithExpiry in scenario 10; zero
	// keeps the default options (8 s), which the full run measures.
	FailoverExpiry time.Duration

	// Progress, when not nil, receives a line per step.
	Progress io.Writer
}

// DefaultConfig is the full measurement: about 10 minutes on 2 cores
// (scenarios 7-9 about 3 of them).
func DefaultConfig() Config {
	return Config{
		Scenarios:          AllScenarios,
		Rounds:             3,
		Servers:            []int{1, 3, 5},
		Warmup:             200,
		UncontendedRounds:  9,
		UncontendedTime:    500 * time.Millisecond,
		ThroughputTime:     1500 * time.Millisecond,
		ThroughputWorkers:  16,
		ContentionTime:     3 * time.Second,
		ContentionWorkers:  8,
		ContentionHold:     time.Millisecond,
		SaleBuyers:         100,
		SaleStock:          50,
		StalledSamples:     200,
		StalledSlowSamples: 2,
		StalledCap:         30 * time.Second,
		StalledLoadTime:    2 * time.Second,
		CancelAfter:        20 * time.Millisecond,
		ResumeWait:         time.Second,
		FailFastOps:        200,
		FleetProcs:         4,
		FleetGoroutines:    4,
		FleetTime:          3 * time.Second,
		FleetHold:          time.Millisecond,
		FleetWarmup:        20,
		FleetPings:         200,
		FleetMixedServers:  3,
		FleetSlowServers:   3,
		FleetSlowDelay:     2 * time.Millisecond,
		FleetSaleBuyers:    100,
		FleetSaleStock:     50,
		FleetSaleServers:   []int{1, 3},
	}
}

// QuickConfig is a smoke run of every scenario that takes seconds: the
// figures only show that each measurement works.
func QuickConfig() Config {
	c := DefaultConfig()
	c.Rounds = 1
	c.Warmup = 5
	c.UncontendedRounds = 1
	c.UncontendedTime = 100 * time.Millisecond
	c.ThroughputTime = 100 * time.Millisecond
	c.ThroughputWorkers = 4
	c.ContentionTime = 300 * time.Millisecond
	c.ContentionWorkers = 3
	c.SaleBuyers = 10
	c.SaleStock = 5
	c.StalledSamples = 5
	c.StalledSlowSamples = 1
	c.StalledCap = 500 * time.Millisecond
	c.StalledLoadTime = 200 * time.Millisecond
	c.ResumeWait = 200 * time.Millisecond
	c.FailFastOps = 20
	c.FleetTime = 300 * time.Millisecond
	c.FleetGoroutines = 2
	c.FleetWarmup = 3
	c.FleetPings = 20
	c.FleetSaleBuyers = 20
	c.FleetSaleStock = 10
	c.FailoverExpiry = 500 * time.Millisecond
	return c
}

// check reports the first setting that makes no sense.
func (c *Config) check() error {
	switch {
	case len(c.Scenarios) == 0:
		return errors.New("no scenarios selected")
	case c.Rounds < 1:
		return fmt.Errorf("rounds must be at least 1, got %d", c.Rounds)
	case c.UncontendedRounds < 1:
		return fmt.Errorf("uncontended rounds must be at least 1, got %d", c.UncontendedRounds)
	case len(c.Servers) == 0:
		return errors.New("no server counts selected")
	case c.FleetProcs < 2 && c.runs(Fleet, FleetSlow, FleetFlashSale):
		return fmt.Errorf("fleet scenarios need at least 2 processes, got %d", c.FleetProcs)
	case c.FleetGoroutines < 1 && c.runs(Fleet, FleetSlow):
		return fmt.Errorf("fleet goroutines must be at least 1, got %d", c.FleetGoroutines)
	}
	for _, n := range append(append(slices.Clone(c.Servers), c.FleetMixedServers, c.FleetSlowServers), c.FleetSaleServers...) {
		if n < 1 || n > maxServers {
			return fmt.Errorf("server count %d out of range 1-%d", n, maxServers)
		}
	}
	return nil
}

// runs reports whether any of scenarios is selected.
func (c *Config) runs(scenarios ...Scenario) bool {
	for _, s := range scenarios {
		if slices.Contains(c.Scenarios, s) {
			return true
		}
	}
	return false
}

// maxServers is the size of the fleet: the largest N, and the N of the
// stalled and robustness scenarios.
const maxServers = 5

// env is what every scenario gets: the settings and the servers.
type env struct {
	cfg   Config
	fleet *fleet
	load  string // the load averages when the run started
}

// progress prints one line of progress.
func (e *env) progress(format string, args ...any) {
	if e.cfg.Progress != nil {
		fmt.Fprintf(e.cfg.Progress, "lockbench: "+format+"\n", args...)
	}
}

// rotate returns the order in which round r visits n items: every round
// starts one item later, so no library is always measured first.
func rotate(n, r int) []int {
	order := make([]int, n)
	for i := range order {
		order[i] = (i + r) % n
	}
	return order
}

// Run starts the servers, runs the selected scenarios and writes the
// report, in markdown, to out. It returns early with ctx's error when ctx
// ends; the servers it started are stopped whatever happens.
func Run(ctx context.Context, cfg Config, out io.Writer) error {
	if err := cfg.check(); err != nil {
		return err
	}
	started := time.Now()
	f, err := startFleet(maxServers)
	if err != nil {
		return err
	}
	defer f.close()
	e := &env{cfg: cfg, fleet: f, load: loadAverage()}

	var sections []section
	for _, s := range cfg.Scenarios {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := f.flush(ctx); err != nil {
			return err
		}
		e.progress("scenario %d: %s", s, s)
		begin := time.Now()
		secs, err := runScenario(ctx, e, s)
		if err != nil {
			return fmt.Errorf("scenario %d (%s): %w", s, s, err)
		}
		e.progress("scenario %d done in %v", s, time.Since(begin).Round(100*time.Millisecond))
		sections = append(sections, secs...)
	}

	writeHeader(out, e, started)
	for i := range sections {
		sections[i].write(out)
	}
	fmt.Fprintf(out, "Total run time: %v.\n", time.Since(started).Round(time.Second))
	return nil
}

func runScenario(ctx context.Context, e *env, s Scenario) ([]section, error) {
	switch s {
	case Uncontended:
		return runUncontended(ctx, e)
	case Throughput:
		return runThroughput(ctx, e)
	case Contention:
		return runContention(ctx, e)
	case FlashSale:
		return runFlashSale(ctx, e)
	case Stalled:
		return runStalled(ctx, e)
	case Robustness:
		return runRobustness(ctx, e)
	case Fleet:
		return runFleet(ctx, e)
	case FleetSlow:
		return runFleetSlow(ctx, e)
	case FleetFlashSale:
		return runFleetSale(ctx, e)
	case Failover:
		return runFailover(ctx, e)
	}
	return nil, fmt.Errorf("unknown scenario %d", s)
}

// writeHeader prints the report's title and the machine it ran on.
func writeHeader(w io.Writer, e *env, started time.Time) {
	host, _ := os.Hostname()
	fmt.Fprintf(w, "# lockbench: quorumlock vs redsync v4 vs redislock vs the raw client\n\n")
	fmt.Fprintf(w, "| | |\n|---|---|\n")
	fmt.Fprintf(w, "| date | %s |\n", started.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "| Go | %s %s/%s |\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(w, "| CPUs | %d (GOMAXPROCS %d), host %s |\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), host)
	fmt.Fprintf(w, "| redis-server | %s, %d processes on 127.0.0.1, no persistence |\n", e.fleet.redisVersion(context.Background()), len(e.fleet.servers))
	fmt.Fprintf(w, "| modules | %s |\n", moduleVersions())
	shorter := ""
	if e.cfg.runs(Uncontended) {
		shorter = fmt.Sprintf(" (scenario 1: %d shorter ones)", e.cfg.UncontendedRounds)
	}
	fmt.Fprintf(w, "| rounds | %d per scenario%s, libraries interleaved, order rotated each round; figures are medians over rounds (range in parentheses) |\n", e.cfg.Rounds, shorter)
	if e.cfg.runs(Fleet, FleetSlow, FleetFlashSale) {
		fmt.Fprintf(w, "| load | %s at the start (/proc/loadavg: 1, 5, 15 minutes) |\n", e.load)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Every library uses go-redis v9 clients with default options (one client per server) and its own default options unless a table says otherwise. The floor is the raw go-redis client sending `SET key value NX PX 8000` and the compare-and-delete script (EVALSHA) to every server (one goroutine per server when N > 1), with no library around it.\n\n")
}

// loadAverage returns the machine's load averages, or "unknown" where
// /proc/loadavg cannot be read: what else ran shapes the multi-process
// figures.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	fields := strings.Fields(string(data))
	if len(fields) < 3 {
		return "unknown"
	}
	return strings.Join(fields[:3], ", ")
}

// moduleVersions names the versions of the measured modules.
func moduleVersions() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	want := map[string]string{
		"github.com/quorumlock/redsync":    "quorumlock",
		"github.com/go-redsync/redsync/v4": "redsync",
		"github.com/bsm/redislock":         "redislock",
		"github.com/redis/go-redis/v9":     "go-redis",
	}
	var parts []string
	for _, dep := range info.Deps {
		name, ok := want[dep.Path]
		if !ok {
			continue
		}
		version := dep.Version
		if dep.Replace != nil {
			version = "working tree (" + dep.Replace.Path + ")"
		}
		parts = append(parts, name+" "+version)
	}
	if len(parts) == 0 {
		return "unknown (no module information in this binary)"
	}
	return strings.Join(parts, ", ")
}
