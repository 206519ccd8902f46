package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumlock/redsync/internal/redistest"
)

// inspectTimeout bounds each command the harness itself sends to check or
// clean a server.
const inspectTimeout = 5 * time.Second

// A fleet is the redis-server processes of one run, all started by this
// package on loopback ports, with one inspection client per server.
type fleet struct {
	servers []*redistest.Server
	stop    func()
	// inspect are redistest's clients (short timeouts, no retries) that the
	// harness uses to check and clean keys; the libraries never use them.
	inspect []*redis.Client
}

// startFleet starts n redis-server processes.
func startFleet(n int) (*fleet, error) {
	servers, stop, err := redistest.StartServers(n)
	if err != nil {
		return nil, err
	}
	f := &fleet{servers: servers, stop: stop}
	for _, s := range servers {
		f.inspect = append(f.inspect, s.NewClient())
	}
	return f, nil
}

// close resumes, stops and removes every server.
func (f *fleet) close() {
	closeClients(f.inspect)
	f.stop()
}

// clients returns new go-redis clients with default options on the first n
// servers, as an application would make them. The caller closes them.
func (f *fleet) clients(n int) []*redis.Client {
	clients := make([]*redis.Client, n)
	for i := range clients {
		clients[i] = redis.NewClient(&redis.Options{Addr: f.servers[i].Addr()})
	}
	return clients
}

// closeClients closes clients.
func closeClients(clients []*redis.Client) {
	for _, c := range clients {
		_ = c.Close()
	}
}

// flush deletes every key on every server.
func (f *fleet) flush(ctx context.Context) error {
	for i, c := range f.inspect {
		cctx, cancel := context.WithTimeout(ctx, inspectTimeout)
		err := c.FlushAll(cctx).Err()
		cancel()
		if err != nil {
			return fmt.Errorf("FLUSHALL on server %d: %w", i, err)
		}
	}
	return nil
}

// countKeys returns how many keys matching pattern the given servers hold
// in total (every server when none are given).
func (f *fleet) countKeys(ctx context.Context, pattern string, servers ...int) (int, error) {
	if len(servers) == 0 {
		servers = f.all()
	}
	total := 0
	for _, i := range servers {
		cctx, cancel := context.WithTimeout(ctx, inspectTimeout)
		iter := f.inspect[i].Scan(cctx, 0, pattern, 1000).Iterator()
		for iter.Next(cctx) {
			total++
		}
		err := iter.Err()
		cancel()
		if err != nil {
			return 0, fmt.Errorf("SCAN on server %d: %w", i, err)
		}
	}
	return total, nil
}

// all returns the indexes of every server.
func (f *fleet) all() []int {
	idx := make([]int, len(f.servers))
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// pause stops the given servers with SIGSTOP.
func (f *fleet) pause(servers ...int) error {
	for _, i := range servers {
		if err := f.servers[i].PauseErr(); err != nil {
			return err
		}
	}
	return nil
}

// resume continues the given servers with SIGCONT; it tries every server
// and reports the first error.
func (f *fleet) resume(servers ...int) error {
	var errs []error
	for _, i := range servers {
		errs = append(errs, f.servers[i].ResumeErr())
	}
	return errors.Join(errs...)
}

// redisVersion returns the version the first server reports.
func (f *fleet) redisVersion(ctx context.Context) string {
	cctx, cancel := context.WithTimeout(ctx, inspectTimeout)
	defer cancel()
	info, err := f.inspect[0].Info(cctx, "server").Result()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return v
		}
	}
	return "unknown"
}

// serverCPU returns the processor time (user and system, INFO cpu) the
// first n servers have used so far, in total.
func (f *fleet) serverCPU(ctx context.Context, n int) (time.Duration, error) {
	var total time.Duration
	for i := range n {
		cctx, cancel := context.WithTimeout(ctx, inspectTimeout)
		info, err := f.inspect[i].Info(cctx, "cpu").Result()
		cancel()
		if err != nil {
			return 0, fmt.Errorf("INFO cpu on server %d: %w", i, err)
		}
		for _, line := range strings.Split(info, "\n") {
			k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
			if !ok || (k != "used_cpu_sys" && k != "used_cpu_user") {
				continue
			}
			secs, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("INFO cpu on server %d: %s: %w", i, k, err)
			}
			total += time.Duration(secs * float64(time.Second))
		}
	}
	return total, nil
}

// settle waits until at most limit goroutines run, so that work a library
// left in the background (late replies, releases of stalled servers) is over
// before the next measurement, or until timeout passes. It reports whether
// the goroutines settled.
func settle(ctx context.Context, limit int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for runtime.NumGoroutine() > limit {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}
