// Command goredis is a short tour of redsync with go-redis v9 clients: it
// locks a mutex on three Redis servers, shows a second mutex failing to take
// the same lock with *redsync.ErrTaken, extends the lock and unlocks it.
//
// With no flags it starts three embedded miniredis servers, so it needs no
// Redis installed:
//
//	go run ./examples/goredis
//
// To use real servers instead, list them (one per independent server):
//
//	go run ./examples/goredis -addrs 127.0.0.1:6379,127.0.0.1:6380,127.0.0.1:6381
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/quorumlock/redsync"
	redsyncredis "github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis"
	"github.com/redis/go-redis/v9"
)

func main() {
	addrs := flag.String("addrs", "", "comma-separated host:port of the Redis servers (default: three embedded miniredis servers)")
	flag.Parse()

	var list []string
	if *addrs != "" {
		list = strings.Split(*addrs, ",")
	}
	if err := run(list, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "goredis:", err)
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

	// One pool per independent server: the lock is held when a majority of
	// them (2 of 3 here) agree.
	var pools []redsyncredis.Pool
	for _, addr := range addrs {
		client := redis.NewClient(&redis.Options{Addr: addr})
		defer client.Close()
		pools = append(pools, goredis.NewPool(client))
	}
	rs := redsync.New(pools...)

	// Operations return once a quorum of servers answered; a reply still on
	// its way is handled in the background. Wait for those before the
	// deferred Close calls above run.
	const expiry = 10 * time.Second
	defer rs.Wait()

	mutex := rs.NewMutex("example:goredis", redsync.WithExpiry(expiry), redsync.WithTries(8))
	if err := mutex.Lock(); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	fmt.Fprintf(out, "locked %q, held for %v\n", mutex.Name(), left(mutex.Until()))

	// While the first mutex holds the lock, a second one on the same name
	// cannot take it: a quorum of servers holds somebody else's value.
	other := rs.NewMutex("example:goredis", redsync.WithExpiry(expiry))
	err := other.TryLock()
	var taken *redsync.ErrTaken
	if !errors.As(err, &taken) {
		return fmt.Errorf("second TryLock: got %v, want *redsync.ErrTaken", err)
	}
	fmt.Fprintf(out, "second mutex: %v\n", err)

	// Work that may take longer than the expiry extends the lock as it goes.
	time.Sleep(50 * time.Millisecond)
	if _, err := mutex.Extend(); err != nil {
		return fmt.Errorf("extend: %w", err)
	}
	fmt.Fprintf(out, "extended, held for %v\n", left(mutex.Until()))

	if _, err := mutex.Unlock(); err != nil {
		return fmt.Errorf("unlock: %w", err)
	}
	fmt.Fprintln(out, "unlocked")

	// Now the second mutex gets it.
	if err := other.TryLock(); err != nil {
		return fmt.Errorf("second TryLock after unlock: %w", err)
	}
	if _, err := other.Unlock(); err != nil {
		return fmt.Errorf("second unlock: %w", err)
	}
	fmt.Fprintln(out, "second mutex locked and unlocked after the first let go")
	return nil
}

// left is how long a lock valid until t still has, rounded for printing.
func left(t time.Time) time.Duration {
	return time.Until(t).Round(time.Millisecond)
}
