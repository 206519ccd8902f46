// Command redigo is a short tour of redsync with redigo connection pools: it
// locks a mutex on three Redis servers, shows a second mutex failing to take
// the same lock with *redsync.ErrTaken, extends the lock and unlocks it.
//
// With no flags it starts three embedded miniredis servers, so it needs no
// Redis installed:
//
//	go run ./examples/redigo
//
// To use real servers instead, list them (one per independent server):
//
//	go run ./examples/redigo -addrs 127.0.0.1:6379,127.0.0.1:6380,127.0.0.1:6381
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
	"github.com/gomodule/redigo/redis"
	"github.com/quorumlock/redsync"
	redsyncredis "github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/redigo"
)

func main() {
	addrs := flag.String("addrs", "", "comma-separated host:port of the Redis servers (default: three embedded miniredis servers)")
	flag.Parse()

	var list []string
	if *addrs != "" {
		list = strings.Split(*addrs, ",")
	}
	if err := run(list, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "redigo:", err)
		os.Exit(1)
	}
}

// run takes the tour on the servers at addrs, or on three embedded miniredis
// servers when addrs is empty, and writes what happens to out.
func run(addrs []string, out io.Writer) error {
	if len(addrs) == 0 {
		for i := 0; i < 3; i++ {
			server, err := miniredis.Run()
			if err != nil {
				return err
			}
			defer server.Close()
			addrs = append(addrs, server.Addr())
		}
		fmt.Fprintf(out, "started embedded servers %s\n", strings.Join(addrs, ", "))
	}

	var pools []redsyncredis.Pool
	for _, addr := range addrs {
		pool := &redis.Pool{
			MaxIdle:     3,
			IdleTimeout: time.Minute,
			// DialContext rather than Dial: the lock's per-server deadline
			// then bounds connecting too.
			DialContext: func(ctx context.Context) (redis.Conn, error) {
				return redis.DialContext(ctx, "tcp", addr)
			},
		}
		defer pool.Close()
		pools = append(pools, redigo.NewPool(pool))
	}
	rs := redsync.New(pools...)

	// Operations return once a quorum of servers answered; a reply still on
	// its way is handled in the background. Wait for those before the
	// deferred Close calls above run.
	const expiry = 10 * time.Second
	defer rs.Wait()

	mutex := rs.NewMutex("example:redigo", redsync.WithExpiry(expiry))
	if err := mutex.Lock(); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	fmt.Fprintf(out, "locked %q, held for %v\n", mutex.Name(), time.Until(mutex.Until()).Round(time.Millisecond))

	var taken *redsync.ErrTaken
	if err := rs.NewMutex("example:redigo", redsync.WithExpiry(expiry)).TryLock(); !errors.As(err, &taken) {
		return fmt.Errorf("second TryLock: got %v, want *redsync.ErrTaken", err)
	}
	fmt.Fprintf(out, "second mutex: taken on nodes %v\n", taken.Nodes)

	if _, err := mutex.Extend(); err != nil {
		return fmt.Errorf("extend: %w", err)
	}
	fmt.Fprintf(out, "extended, held for %v\n", time.Until(mutex.Until()).Round(time.Millisecond))

	if _, err := mutex.Unlock(); err != nil {
		return fmt.Errorf("unlock: %w", err)
	}
	fmt.Fprintln(out, "unlocked")
	return nil
}
