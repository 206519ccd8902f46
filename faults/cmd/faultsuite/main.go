//go:build linux

// Command faultsuite runs the fault suite of the redsync lock (package
// faults): five redis-servers behind fault proxies, several client
// processes locking a few names, faults injected at random from a printed
// seed, and a checker of the holders' validity windows, the order of
// their fencing tokens, the keys left behind and the goroutines leaked. It prints a summary table and exits 1
// when the checker found something.
//
//	faultsuite                       # the short profile: faults for 100s, about 2 minutes
//	faultsuite -duration 10m         # the long profile
//	faultsuite -seed 42              # replay the fault schedule of seed 42
//	faultsuite -prims none           # Mutex holders only (no Semaphore, MultiMutex, RWMutex, Election)
//	faultsuite -faults all           # also restart servers empty at once and evict keys (expect overlaps)
//	faultsuite -faults eviction      # only evicting servers (expect overlaps)
//	faultsuite -faults safe,clock-rate -clock-rate +2%   # a majority of servers' clocks 2 % fast
//	faultsuite -faults clock-jump -clock-jump 3s         # servers' wall clocks jump forward
//	faultsuite -scenario both        # the deterministic restart scenarios, at once and delayed
//	faultsuite -scenario partitioned-listener  # how long Lock and Unlock take with one server cut off
//	faultsuite -scenario eviction    # the deterministic eviction scenarios, allkeys-lru and volatile-ttl
//	faultsuite -json report.json     # also write the report as JSON
//	faultsuite -recheck DIR          # run the checker again on the records of a run
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/quorumlock/redsync/faults"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == faults.ClientFlag {
		os.Exit(faults.ClientMain(os.Args[1:]))
	}
	os.Exit(run())
}

func run() int {
	var (
		cfg      faults.Config
		kinds    string
		expiries string
		jsonPath string
		scenario string
		recheck  string
		prims    string
		rate     string
		slow     string
	)
	flag.DurationVar(&cfg.Duration, "duration", faults.ShortDuration, "how long faults are injected (the short profile is 100s; 10m is the long one)")
	flag.Int64Var(&cfg.Seed, "seed", 0, "seed of the fault schedule and of the clients (0: from the clock; printed)")
	flag.IntVar(&cfg.Clients, "clients", 4, "client processes")
	flag.IntVar(&cfg.FastWorkers, "fast-workers", 16, "goroutines per client on the names held briefly")
	flag.IntVar(&cfg.SlowWorkers, "slow-workers", 4, "goroutines per client on the names held past the expiry")
	flag.IntVar(&cfg.PrimWorkers, "prim-workers", 8, "goroutines per client on the other primitives (see -prims)")
	flag.StringVar(&prims, "prims", "all", "the other primitives that hold beside the Mutex, comma-separated; \"all\": "+strings.Join(faults.AllPrims, ",")+"; \"none\": Mutex holders only")
	flag.StringVar(&kinds, "faults", "safe", "fault kinds and groups, comma-separated; \"safe\": all but restart-now, eviction and the clock faults; \"clock\": "+strings.Join(faults.ClockFaults, ",")+"; \"all\": "+strings.Join(faults.AllFaults, ","))
	flag.StringVar(&rate, "clock-rate", "+2%", "clock-rate: how much faster a majority of the servers' clocks run (-0.5% runs them slow)")
	flag.DurationVar(&cfg.Clock.Jump, "clock-jump", faults.DefaultClockJump, "clock-jump: the step by which a majority of the servers' wall clocks jump forward")
	flag.StringVar(&slow, "client-clock-slow", "2%", "client-clock-slow: how much slower the clients' clocks run, as their holders read Until")
	flag.StringVar(&expiries, "expiries", "800ms,2s", "lock expiries the holders use, comma-separated")
	flag.StringVar(&cfg.Dir, "dir", "", "directory for the records (default: a new temporary directory)")
	flag.StringVar(&jsonPath, "json", "", "also write the report as JSON to this file")
	flag.StringVar(&scenario, "scenario", "", "run a scenario instead: restart-now, restart-delayed, both (the two restarts), partitioned-listener, eviction-lru, eviction-ttl or eviction (the two evictions)")
	flag.StringVar(&recheck, "recheck", "", "run the checker again on the records of an earlier run in this directory")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if scenario != "" {
		return runScenarios(ctx, scenario)
	}
	if recheck != "" {
		rep, err := faults.Recheck(recheck)
		if err != nil {
			fmt.Fprintln(os.Stderr, "faultsuite:", err)
			return 2
		}
		rep.WriteTable(os.Stdout)
		if len(rep.Failures()) > 0 {
			return 1
		}
		return 0
	}

	cfg.Faults = faults.ExpandFaultKinds(kinds)
	switch prims {
	case "all":
		cfg.Prims = faults.AllPrims
	case "none":
		cfg.Prims = faults.NoPrims
	default:
		cfg.Prims = strings.Split(prims, ",")
	}
	var err error
	if cfg.Clock.Rate, err = faults.ParsePercent(rate); err != nil {
		fmt.Fprintln(os.Stderr, "faultsuite: -clock-rate:", err)
		return 2
	}
	if cfg.Clock.ClientSlow, err = faults.ParsePercent(slow); err != nil {
		fmt.Fprintln(os.Stderr, "faultsuite: -client-clock-slow:", err)
		return 2
	}
	if cfg.Expiries, err = parseDurations(expiries); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	cfg.ClientCommand = []string{exe}
	cfg.Log = os.Stdout
	rep, err := faults.Run(ctx, cfg)
	if rep != nil {
		rep.WriteTable(os.Stdout)
		if jsonPath != "" {
			if err := writeReport(jsonPath, rep); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 2
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "faultsuite:", err)
		return 2
	}
	if len(rep.Failures()) > 0 {
		return 1
	}
	return 0
}

func runScenarios(ctx context.Context, which string) int {
	var kinds []faults.ScenarioKind
	switch which {
	case "both":
		kinds = []faults.ScenarioKind{faults.RestartAtOnce, faults.RestartDelayed}
	case string(faults.RestartAtOnce):
		kinds = []faults.ScenarioKind{faults.RestartAtOnce}
	case string(faults.RestartDelayed):
		kinds = []faults.ScenarioKind{faults.RestartDelayed}
	case string(faults.PartitionedListener):
		kinds = []faults.ScenarioKind{faults.PartitionedListener}
	case "eviction":
		kinds = []faults.ScenarioKind{faults.EvictionLRU, faults.EvictionTTL}
	case string(faults.EvictionLRU), string(faults.EvictionTTL):
		kinds = []faults.ScenarioKind{faults.ScenarioKind(which)}
	default:
		fmt.Fprintf(os.Stderr, "faultsuite: unknown scenario %q (restart-now, restart-delayed, both, partitioned-listener, eviction-lru, eviction-ttl or eviction)\n", which)
		return 2
	}
	for _, kind := range kinds {
		res, err := faults.RunScenario(ctx, kind, os.Stdout)
		if err != nil {
			fmt.Fprintln(os.Stderr, "faultsuite:", err)
			return 2
		}
		res.WriteSummary(os.Stdout)
	}
	return 0
}

func parseDurations(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, item := range strings.Split(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(item))
		if err != nil {
			return nil, fmt.Errorf("faultsuite: -expiries: %w", err)
		}
		out = append(out, d)
	}
	return out, nil
}

func writeReport(path string, rep *faults.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := rep.WriteJSON(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
