// Command semaphore shows a fleet-wide limit on concurrent work: 20 jobs
// spread over 4 "processes" (4 Redsync instances, each with clients of its
// own, as separate services would have) share a Semaphore of 3 permits, so
// that at most 3 jobs run at once across all of them. Each job counts
// itself in and out of a counter in Redis while it runs; the program prints
// the highest count seen and exits with status 1 if it ever exceeded the
// permits.
//
// With no flags it runs on three embedded miniredis servers, so no Redis is
// needed; -addrs runs it on real servers instead (the counter lives on the
// first):
//
//	go run ./examples/semaphore
//	go run ./examples/semaphore -addrs 127.0.0.1:6379,127.0.0.1:6380,127.0.0.1:6381
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/quorumlock/redsync"
	redsyncredis "github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis"
	"github.com/redis/go-redis/v9"
)

const (
	processes  = 4
	jobs       = 20
	permits    = 3
	semName    = "report-workers"
	runningKey = "report-workers:running"
)

func main() {
	addrs := flag.String("addrs", "", "comma-separated host:port of the Redis servers (default: three embedded miniredis servers)")
	work := flag.Duration("work", 20*time.Millisecond, "how long each job works")
	flag.Parse()

	var list []string
	if *addrs != "" {
		list = strings.Split(*addrs, ",")
	}
	if err := run(list, *work, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "semaphore:", err)
		os.Exit(1)
	}
}

// run runs the jobs on the servers at addrs, or on three embedded
// miniredis servers when addrs is empty, and writes the outcome to out.
func run(addrs []string, work time.Duration, out io.Writer) error {
	if len(addrs) == 0 {
		for i := 0; i < 3; i++ {
			server, err := miniredis.Run()
			if err != nil {
				return err
			}
			defer server.Close()
			addrs = append(addrs, server.Addr())
		}
	}
	ctx := context.Background()
	var (
		mu       sync.Mutex // guards highest, done and firstErr
		highest  int64
		done     int
		firstErr error
		wg       sync.WaitGroup
	)
	start := time.Now()
	for p := 0; p < processes; p++ {
		// A process of its own: its own clients and its own Redsync.
		var pools []redsyncredis.Pool
		var counter *redis.Client
		for _, addr := range addrs {
			client := redis.NewClient(&redis.Options{Addr: addr})
			defer client.Close()
			if counter == nil {
				counter = client
			}
			pools = append(pools, goredis.NewPool(client))
		}
		rs := redsync.New(pools...)
		// Wait for the replies still on their way before the clients close.
		defer rs.Wait()
		sem := rs.NewSemaphore(semName, permits, redsync.WithRetryDelay(50*time.Millisecond))
		for j := 0; j < jobs/processes; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := sem.RunAcquired(ctx, 1, func(ctx context.Context) error {
					running, err := counter.Incr(ctx, runningKey).Result()
					if err != nil {
						return err
					}
					mu.Lock()
					highest = max(highest, running)
					mu.Unlock()
					time.Sleep(work)
					return counter.Decr(ctx, runningKey).Err()
				})
				mu.Lock()
				defer mu.Unlock()
				done++
				if err != nil && firstErr == nil {
					firstErr = err
				}
			}()
		}
	}
	wg.Wait()
	fmt.Fprintf(out, "jobs:        %d in %d processes on %d servers, %d permits\n", jobs, processes, len(addrs), permits)
	fmt.Fprintf(out, "done:        %d\n", done)
	fmt.Fprintf(out, "highest concurrency seen: %d\n", highest)
	fmt.Fprintf(out, "time:        %v\n", time.Since(start).Round(time.Millisecond))
	if firstErr != nil {
		return fmt.Errorf("a job failed: %w", firstErr)
	}
	if highest > permits {
		return fmt.Errorf("%d jobs ran at once, more than the %d permits", highest, permits)
	}
	return nil
}
