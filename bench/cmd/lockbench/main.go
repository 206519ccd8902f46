// Command lockbench measures quorumlock, redsync v4, bsm/redislock and the
// raw go-redis client side by side on redis-server processes it starts on
// loopback ports, and prints the figures as markdown.
//
//	cd bench && go run ./cmd/lockbench            # full run, a few minutes
//	go run ./cmd/lockbench -quick                  # smoke run, seconds
//	go run ./cmd/lockbench -scenarios 1,3 -rounds 5
//
// Progress goes to standard error, the report to standard output.
// Scenarios 7-10 start this program again as their worker processes
// (LOCKBENCH_WORKER=1 in their environment).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"

	"github.com/quorumlock/redsync/bench"
)

func main() {
	// Scenarios 7-10 start this program again as their worker processes.
	bench.RunWorkerIfAsked()
	quick := flag.Bool("quick", false, "smoke run: every scenario, briefly (seconds); the figures only show that the measurements work")
	scenarios := flag.String("scenarios", "all", "comma-separated scenarios by number (1-10) or name: uncontended, throughput, contention, flashsale, stalled, robustness, fleet, fleet-slow, fleet-flashsale, failover")
	rounds := flag.Int("rounds", 0, "rounds per scenario (default 3, or 1 with -quick); scenario 1 runs three times as many, half as long")
	quiet := flag.Bool("q", false, "no progress on standard error")
	servers := flag.String("servers", "", "comma-separated numbers of servers to lock on (default 1,3,5); the stalled, robustness and fleet-slow scenarios keep their own")
	procs := flag.Int("fleet-procs", 0, "worker processes of the fleet scenarios (default 4)")
	goroutines := flag.Int("fleet-goroutines", 0, "goroutines per worker process of the fleet scenarios (default 4)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "lockbench: unexpected arguments %q\n", flag.Args())
		flag.Usage()
		os.Exit(2)
	}

	cfg := bench.DefaultConfig()
	if *quick {
		cfg = bench.QuickConfig()
	}
	var err error
	if cfg.Scenarios, err = bench.ParseScenarios(*scenarios); err != nil {
		fmt.Fprintf(os.Stderr, "lockbench: -scenarios: %v\n", err)
		os.Exit(2)
	}
	if *rounds != 0 {
		cfg.Rounds = *rounds
		cfg.UncontendedRounds = 3 * *rounds
	}
	if *servers != "" {
		cfg.Servers = nil
		for _, f := range strings.Split(*servers, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				fmt.Fprintf(os.Stderr, "lockbench: -servers: %v\n", err)
				os.Exit(2)
			}
			cfg.Servers = append(cfg.Servers, n)
		}
	}
	if *procs != 0 {
		cfg.FleetProcs = *procs
	}
	if *goroutines != 0 {
		cfg.FleetGoroutines = *goroutines
	}
	if !*quiet {
		cfg.Progress = os.Stderr
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := bench.Run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "lockbench: %v\n", err)
		stop()
		os.Exit(1)
	}
}
