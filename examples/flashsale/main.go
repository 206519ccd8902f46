// Command flashsale shows what a distributed lock is for: 100 buyers race
// for 50 units of stock kept in Redis. Holding the lock "goods:id:1", each
// buyer reads the stock with a plain GET, takes a unit and writes the rest
// back with SET; without the lock two buyers could read the same stock and
// sell the same unit. It prints what was sold and exits with status 1 if
// anything was oversold.
//
// With no flags it runs on three embedded miniredis servers, so no Redis is
// needed; -addrs runs it on real servers instead (the stock lives on the
// first), and -tries and -expiry set WithTries and WithExpiry:
//
//	go run ./examples/flashsale
//	go run ./examples/flashsale -addrs 127.0.0.1:6379,127.0.0.1:6380,127.0.0.1:6381
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
	buyers       = 100
	initialStock = 50
	lockName     = "goods:id:1"
	stockKey     = "goods:id:1:stock"
)

func main() {
	addrs := flag.String("addrs", "", "comma-separated host:port of the Redis servers (default: three embedded miniredis servers)")
	tries := flag.Int("tries", 32, "how many times each buyer tries to take the lock")
	expiry := flag.Duration("expiry", 8*time.Second, "how long the lock lives without Extend")
	flag.Parse()

	var list []string
	if *addrs != "" {
		list = strings.Split(*addrs, ",")
	}
	if err := run(list, *tries, *expiry, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "flashsale:", err)
		os.Exit(1)
	}
}

// run holds the sale on the servers at addrs, or on three embedded miniredis
// servers when addrs is empty, and writes the outcome to out.
func run(addrs []string, tries int, expiry time.Duration, out io.Writer) error {
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
	var stock *redis.Client // the first server's client keeps the stock
	for _, addr := range addrs {
		client := redis.NewClient(&redis.Options{Addr: addr})
		defer client.Close()
		if stock == nil {
			stock = client
		}
		pools = append(pools, goredis.NewPool(client))
	}
	rs := redsync.New(pools...)

	// Operations return once a quorum of servers answered; a reply still on
	// its way is handled in the background. Wait for those before the
	// deferred Close calls above run.
	defer rs.Wait()

	ctx := context.Background()
	if err := stock.Set(ctx, stockKey, initialStock, 0).Err(); err != nil {
		return fmt.Errorf("setting the stock: %w", err)
	}

	var (
		mu                    sync.Mutex // guards the counters and firstErr
		sold, soldOut, failed int
		firstErr              error
		wg                    sync.WaitGroup
	)
	start := time.Now()
	for i := 0; i < buyers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each buyer is a holder of its own, so it has a Mutex of its own.
			// A per-server deadline of half the expiry (the default is a
			// twentieth): the 100 buyers queue at once, and miniredis runs
			// each Lua script in an interpreter of its own, about a
			// millisecond apiece (several under the race detector), one
			// at a time per server.
			m := rs.NewMutex(lockName, redsync.WithTries(tries), redsync.WithExpiry(expiry), redsync.WithTimeoutFactor(0.5))
			bought, err := buy(ctx, m, stock)
			mu.Lock()
			defer mu.Unlock()
			if bought {
				sold++ // even if Unlock failed afterwards: the unit is gone
			}
			switch {
			case err != nil:
				failed++
				if firstErr == nil {
					firstErr = err
				}
			case !bought:
				soldOut++
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	left, err := stock.Get(ctx, stockKey).Int()
	if err != nil {
		return fmt.Errorf("reading the final stock: %w", err)
	}
	// With the lock, every sale took one unit: sold + left == initialStock.
	// More means units sold twice (two buyers read the same stock).
	oversold := max(sold+left-initialStock, 0)

	fmt.Fprintf(out, "buyers:      %d on %d servers, stock %d\n", buyers, len(addrs), initialStock)
	fmt.Fprintf(out, "sold:        %d\n", sold)
	fmt.Fprintf(out, "sold out:    %d\n", soldOut)
	fmt.Fprintf(out, "final stock: %d\n", left)
	fmt.Fprintf(out, "oversold:    %d\n", oversold)
	fmt.Fprintf(out, "failures:    %d (Lock or Unlock failed)\n", failed)
	if firstErr != nil {
		// Errors joined from several servers span lines; keep the report one line each.
		fmt.Fprintf(out, "first error: %s\n", strings.ReplaceAll(firstErr.Error(), "\n", "; "))
	}
	fmt.Fprintf(out, "time:        %v\n", elapsed.Round(time.Millisecond))
	if oversold != 0 {
		return fmt.Errorf("%d units oversold: the lock did not keep buyers apart", oversold)
	}
	return nil
}

// buy takes one unit of stock while holding mutex. It reports false with a
// nil error when the stock is gone, and whether it took a unit also when
// the error is Unlock's.
func buy(ctx context.Context, mutex *redsync.Mutex, stock *redis.Client) (bought bool, err error) {
	if err := mutex.LockContext(ctx); err != nil {
		return false, fmt.Errorf("lock: %w", err)
	}
	defer func() {
		if _, unlockErr := mutex.UnlockContext(ctx); unlockErr != nil && err == nil {
			err = fmt.Errorf("unlock: %w", unlockErr)
		}
	}()

	// Read-modify-write on purpose: only the lock makes it safe.
	n, err := stock.Get(ctx, stockKey).Int()
	if err != nil {
		return false, fmt.Errorf("reading the stock: %w", err)
	}
	if n <= 0 {
		return false, nil
	}
	if err := stock.Set(ctx, stockKey, n-1, 0).Err(); err != nil {
		return false, fmt.Errorf("writing the stock: %w", err)
	}
	return true, nil
}
