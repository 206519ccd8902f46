// Command flashsale shows what a distributed lock is for: 100 buyers race
// for 50 units of stock kept in Redis, and each buyer, holding the lock on
// "goods:id:1", reads the stock with a plain GET, takes one unit and writes
// the stock back with SET. Without the lock, buyers that read the same
// stock would both sell and write back the same number: more sales than
// units. The program reports what happened and exits with status 1 if
// anything was oversold.
//
// With no flags it starts three embedded miniredis servers, so it needs no
// Redis installed:
//
//	go run ./examples/flashsale
//
// To use real servers instead, list them (one per independent server; the
// stock lives on the first):
//
//	go run ./examples/flashsale -addrs 127.0.0.1:6379,127.0.0.1:6380,127.0.0.1:6381
//
// -tries and -expiry set the Mutex options of the same names.
package main

import (
	"context"
	"errors"
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

// errOversold is returned by run when the lock failed to keep buyers apart.
var errOversold = errors.New("oversold: the lock did not keep buyers apart")

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
	var clients []*redis.Client
	var pools []redsyncredis.Pool
	for _, addr := range addrs {
		client := redis.NewClient(&redis.Options{Addr: addr})
		defer client.Close()
		clients = append(clients, client)
		pools = append(pools, goredis.NewPool(client))
	}
	rs := redsync.New(pools...)
	stock := clients[0]

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
			// Each buyer is its own holder, so it has its own Mutex.
			mutex := rs.NewMutex(lockName, redsync.WithTries(tries), redsync.WithExpiry(expiry))
			bought, err := buy(ctx, mutex, stock)
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
	// Units sold beyond the stock there was: sales plus what is left should
	// be exactly the initial stock, and the stock never below zero.
	oversold := sold + left - initialStock
	if left < 0 && -left > oversold {
		oversold = -left
	}
	if oversold < 0 {
		oversold = 0
	}

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
		return errOversold
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
