// Command transfer shows the MultiMutex: 40 transfers move money between
// two accounts, "account:17" and "account:42", in both directions at once.
// Each transfer locks both accounts together, listing them in its own
// order (from, to), reads both balances with GET, and writes both back
// with SET. Holding both names at once makes the two writes one step for
// every other transfer; and since a MultiMutex takes all of its names or
// none per attempt, transfers that list the accounts in opposite orders
// cannot deadlock. It prints the balances and exits with status 1 if money
// was created or lost.
//
// With no flags it runs on three embedded miniredis servers, so no Redis is
// needed; -addrs runs it on real servers instead (the balances live on the
// first):
//
//	go run ./examples/transfer
//	go run ./examples/transfer -addrs 127.0.0.1:6379,127.0.0.1:6380,127.0.0.1:6381
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
	transfers = 40
	opening   = 1000 // each account's opening balance
	amount    = 10
)

var accounts = [2]string{"account:17", "account:42"}

func main() {
	addrs := flag.String("addrs", "", "comma-separated host:port of the Redis servers (default: three embedded miniredis servers)")
	flag.Parse()
	var list []string
	if *addrs != "" {
		list = strings.Split(*addrs, ",")
	}
	if err := run(list, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "transfer:", err)
		os.Exit(1)
	}
}

// balanceKey is where the balance of account lives (beside its lock key).
func balanceKey(account string) string { return account + ":balance" }

// run makes the transfers on the servers at addrs, or on three embedded
// miniredis servers when addrs is empty, and writes the outcome to out.
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
	}
	var pools []redsyncredis.Pool
	var bank *redis.Client // the first server's client keeps the balances
	for _, addr := range addrs {
		client := redis.NewClient(&redis.Options{Addr: addr})
		defer client.Close()
		if bank == nil {
			bank = client
		}
		pools = append(pools, goredis.NewPool(client))
	}
	rs := redsync.New(pools...)
	defer rs.Wait()

	ctx := context.Background()
	for _, a := range accounts {
		if err := bank.Set(ctx, balanceKey(a), opening, 0).Err(); err != nil {
			return err
		}
	}
	var (
		mu       sync.Mutex // guards firstErr and done
		firstErr error
		done     int
		wg       sync.WaitGroup
	)
	start := time.Now()
	for i := 0; i < transfers; i++ {
		from, to := accounts[i%2], accounts[1-i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The names in this transfer's own order: half the transfers
			// list them the other way round.
			mm := rs.NewMultiMutex([]string{from, to}, redsync.WithRetryDelay(5*time.Millisecond), redsync.WithTries(1000))
			err := mm.RunLocked(ctx, func(ctx context.Context) error { return move(ctx, bank, from, to) })
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				done++
			} else if firstErr == nil {
				firstErr = err
			}
		}()
	}
	wg.Wait()
	var total int
	for _, a := range accounts {
		n, err := bank.Get(ctx, balanceKey(a)).Int()
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s: %d\n", a, n)
		total += n
	}
	fmt.Fprintf(out, "transfers:  %d of %d done on %d servers\n", done, transfers, len(addrs))
	fmt.Fprintf(out, "total:      %d (opened with %d)\n", total, 2*opening)
	fmt.Fprintf(out, "time:       %v\n", time.Since(start).Round(time.Millisecond))
	if firstErr != nil {
		return fmt.Errorf("a transfer failed: %w", firstErr)
	}
	if total != 2*opening {
		return fmt.Errorf("the balances add up to %d, not %d: two transfers overlapped", total, 2*opening)
	}
	return nil
}

// move moves amount from one account to the other: a read-modify-write
// of both balances that only the lock on both makes safe.
func move(ctx context.Context, bank *redis.Client, from, to string) error {
	a, err := bank.Get(ctx, balanceKey(from)).Int()
	if err != nil {
		return err
	}
	b, err := bank.Get(ctx, balanceKey(to)).Int()
	if err != nil {
		return err
	}
	time.Sleep(time.Millisecond) // the moment an unlocked transfer would slip in
	if err := bank.Set(ctx, balanceKey(from), a-amount, 0).Err(); err != nil {
		return err
	}
	return bank.Set(ctx, balanceKey(to), b+amount, 0).Err()
}
