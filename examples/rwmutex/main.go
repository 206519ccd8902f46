// Command rwmutex shows a read-write lock guarding a catalog kept in
// Redis as two keys that must agree: its version and its list of items. A
// writer changes them in two steps; readers read both. Readers share the
// lock "catalog", the writer excludes them, so no reader ever sees a
// half-written catalog. It prints how many reads and writes were made and
// exits with status 1 if a reader saw the two keys disagree.
//
// With no flags it runs on three embedded miniredis servers (the catalog
// lives on the first); -addrs runs it on real servers instead:
//
//	go run ./examples/rwmutex
//	go run ./examples/rwmutex -addrs 127.0.0.1:6379,127.0.0.1:6380,127.0.0.1:6381
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/quorumlock/redsync"
	redsyncredis "github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis"
)

const (
	lockName   = "catalog"
	versionKey = "catalog:version"
	itemsKey   = "catalog:items"
	readers    = 4
	reads      = 10 // per reader
	writes     = 5
)

func main() {
	addrs := flag.String("addrs", "", "comma-separated host:port of the Redis servers (default: three embedded miniredis servers)")
	flag.Parse()
	var list []string
	if *addrs != "" {
		list = strings.Split(*addrs, ",")
	}
	if err := run(list, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "rwmutex:", err)
		os.Exit(1)
	}
}

// run lets the readers and the writer work on the servers at addrs (three
// embedded miniredis servers when addrs is empty) and writes the outcome
// to out.
func run(addrs []string, out io.Writer) error {
	if len(addrs) == 0 {
		for range 3 {
			server, err := miniredis.Run()
			if err != nil {
				return err
			}
			defer server.Close()
			addrs = append(addrs, server.Addr())
		}
	}
	var pools []redsyncredis.Pool
	var catalog *redis.Client // the first server's client keeps the catalog
	for _, addr := range addrs {
		client := redis.NewClient(&redis.Options{Addr: addr})
		defer client.Close()
		if catalog == nil {
			catalog = client
		}
		pools = append(pools, goredis.NewPool(client))
	}
	rs := redsync.New(pools...)
	defer rs.Wait() // before the clients close
	ctx := context.Background()
	if err := catalog.Del(ctx, versionKey, itemsKey).Err(); err != nil {
		return err
	}
	options := []redsync.Option{redsync.WithRetryDelay(5 * time.Millisecond), redsync.WithTries(1000)}

	var torn, done atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, readers+1)
	for range readers {
		wg.Go(func() {
			rw := rs.NewRWMutex(lockName, options...)
			for range reads {
				if err := rw.RLockContext(ctx); err != nil {
					errs <- fmt.Errorf("reader: %w", err)
					return
				}
				version, _ := catalog.Get(ctx, versionKey).Int()
				items, _ := catalog.LLen(ctx, itemsKey).Result()
				if int64(version) != items {
					torn.Add(1)
				}
				done.Add(1)
				if _, err := rw.RUnlockContext(ctx); err != nil {
					errs <- fmt.Errorf("reader: unlock: %w", err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		rw := rs.NewRWMutex(lockName, options...)
		for i := 1; i <= writes; i++ {
			if err := rw.LockContext(ctx); err != nil {
				errs <- fmt.Errorf("writer: %w", err)
				return
			}
			// Two steps, with readers waiting: without the lock a reader
			// could see the new item and the old version.
			catalog.RPush(ctx, itemsKey, "item-"+strconv.Itoa(i))
			time.Sleep(2 * time.Millisecond)
			catalog.Set(ctx, versionKey, i, 0)
			if _, err := rw.UnlockContext(ctx); err != nil {
				errs <- fmt.Errorf("writer: unlock: %w", err)
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	var all error
	for err := range errs {
		all = errors.Join(all, err)
	}
	if all != nil {
		return all
	}
	fmt.Fprintf(out, "%d reads, %d writes, %d torn reads\n", done.Load(), writes, torn.Load())
	if torn.Load() > 0 {
		return errors.New("a reader saw a half-written catalog")
	}
	return nil
}
