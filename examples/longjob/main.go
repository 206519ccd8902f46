// Command longjob runs a job that takes many lock expiries under one lock,
// kept alive in the background by RunLocked (Mutex.KeepAlive underneath),
// and stops at once if the lock is lost.
//
// A cron job that must run once per fleet looks like this: every instance
// calls RunLocked at the same time; one runs the job, the others fail to get
// the lock (here with WithTries(1)) and skip it.
//
// With no flags it starts three embedded miniredis servers:
//
//	go run ./examples/longjob
//
// On real servers, the job also shows the keys' time to live being renewed:
//
//	go run ./examples/longjob -addrs 127.0.0.1:6379,127.0.0.1:6380,127.0.0.1:6381
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/quorumlock/redsync"
	redsyncredis "github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis"
)

func main() {
	addrs := flag.String("addrs", "", "comma-separated host:port of the Redis servers (default: three embedded miniredis servers)")
	expiry := flag.Duration("expiry", 500*time.Millisecond, "the lock's expiry; the job runs for several of them")
	steps := flag.Int("steps", 12, "steps of the job, 100 ms each")
	flag.Parse()

	var list []string
	if *addrs != "" {
		list = strings.Split(*addrs, ",")
	}
	if err := run(list, *expiry, *steps, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "longjob:", err)
		os.Exit(1)
	}
}

// run runs the job under the lock on the servers at addrs (three embedded
// miniredis servers when addrs is empty), while a second instance tries to
// run it too, and writes what happens to out.
func run(addrs []string, expiry time.Duration, steps int, out io.Writer) error {
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
	var pools []redsyncredis.Pool
	for _, addr := range addrs {
		client := redis.NewClient(&redis.Options{Addr: addr})
		defer client.Close()
		pools = append(pools, goredis.NewPool(client))
	}
	rs := redsync.New(pools...)
	defer rs.Wait() // before the clients close

	ctx := context.Background()
	start := time.Now()
	err := rs.RunLocked(ctx, "example:longjob", func(ctx context.Context) error {
		fmt.Fprintf(out, "job started, lock expiry %v, %d steps of 100ms\n", expiry, steps)

		// Another instance of the job, meanwhile: it skips.
		other := rs.RunLocked(ctx, "example:longjob", func(context.Context) error {
			return errors.New("ran twice")
		}, redsync.WithTries(1))
		var taken *redsync.ErrTaken
		if !errors.As(other, &taken) {
			return fmt.Errorf("second instance: got %v, want *redsync.ErrTaken", other)
		}
		fmt.Fprintln(out, "second instance skipped: the lock is taken")

		for step := 1; step <= steps; step++ {
			select {
			case <-ctx.Done():
				// The lock can no longer be proven held: stop writing.
				return fmt.Errorf("stopped at step %d: %w", step, context.Cause(ctx))
			case <-time.After(100 * time.Millisecond):
			}
		}
		fmt.Fprintf(out, "job done after %v (%.0f expiries)\n", time.Since(start).Round(10*time.Millisecond),
			float64(time.Since(start))/float64(expiry))
		return nil
	}, redsync.WithExpiry(expiry))
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "lock released")
	return nil
}
