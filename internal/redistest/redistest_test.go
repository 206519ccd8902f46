package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// processGone reports whether no process with the given pid exists (a reaped
// child leaves no zombie behind).
func processGone(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return true
	}
	return p.Signal(syscall.Signal(0)) != nil
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestStartPingSetGet(t *testing.T) {
	servers := Start(t, 3)
	if len(servers) != 3 {
		t.Fatalf("got %d servers, want 3", len(servers))
	}
	ports := map[int]bool{}
	for i, s := range servers {
		if !s.Running() || s.Paused() || s.Pid() == 0 {
			t.Fatalf("server %d: Running=%v Paused=%v Pid=%d", i, s.Running(), s.Paused(), s.Pid())
		}
		if ports[s.Port()] {
			t.Fatalf("port %d used twice", s.Port())
		}
		ports[s.Port()] = true
		if want := fmt.Sprintf("127.0.0.1:%d", s.Port()); s.Addr() != want {
			t.Fatalf("Addr() = %q, want %q", s.Addr(), want)
		}
		c := s.Client(t)
		ctx := ctxTimeout(t, 5*time.Second)
		if err := c.Ping(ctx).Err(); err != nil {
			t.Fatalf("server %d: PING: %v", i, err)
		}
		// Each server gets its own key; the others must not see it.
		key := fmt.Sprintf("key-%d", i)
		if err := c.Set(ctx, key, "value", time.Minute).Err(); err != nil {
			t.Fatalf("server %d: SET: %v", i, err)
		}
		if v, err := c.Get(ctx, key).Result(); err != nil || v != "value" {
			t.Fatalf("server %d: GET = %q, %v", i, v, err)
		}
		if n, err := c.DBSize(ctx).Result(); err != nil || n != 1 {
			t.Fatalf("server %d: DBSIZE = %d, %v; want 1 (servers must be independent)", i, n, err)
		}
	}
	if got := Addrs(servers); len(got) != 3 || got[1] != servers[1].Addr() {
		t.Fatalf("Addrs() = %v", got)
	}
}

func TestPauseResume(t *testing.T) {
	s := Start(t, 1)[0]
	c := s.Client(t)
	if err := c.Set(ctxTimeout(t, 5*time.Second), "k", "before", 0).Err(); err != nil {
		t.Fatal(err)
	}

	s.Pause(t)
	s.Pause(t) // idempotent
	if !s.Paused() || !s.Running() {
		t.Fatalf("after Pause: Paused=%v Running=%v", s.Paused(), s.Running())
	}
	start := time.Now()
	err := c.Get(ctxTimeout(t, 200*time.Millisecond), "k").Err()
	if err == nil {
		t.Fatal("GET on a paused server succeeded")
	}
	if elapsed := time.Since(start); elapsed > 1500*time.Millisecond {
		t.Fatalf("GET on a paused server took %v to fail, want about 200ms", elapsed)
	}
	// Pausing from another goroutine while paused is fine too.
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.PauseErr(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()

	s.Resume(t)
	s.Resume(t) // idempotent
	if s.Paused() {
		t.Fatal("still paused after Resume")
	}
	if v, err := c.Get(ctxTimeout(t, 5*time.Second), "k").Result(); err != nil || v != "before" {
		t.Fatalf("GET after Resume = %q, %v", v, err)
	}
}

func TestKillRestart(t *testing.T) {
	s := Start(t, 1)[0]
	c := s.Client(t)
	port, oldPid := s.Port(), s.Pid()
	if err := c.Set(ctxTimeout(t, 5*time.Second), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}

	s.Pause(t) // Kill must work on a paused server too
	s.Kill(t)
	s.Kill(t) // idempotent
	if s.Running() || s.Paused() || s.Pid() != 0 {
		t.Fatalf("after Kill: Running=%v Paused=%v Pid=%d", s.Running(), s.Paused(), s.Pid())
	}
	if !processGone(oldPid) {
		t.Fatalf("process %d still exists after Kill", oldPid)
	}
	if err := c.Ping(ctxTimeout(t, 5*time.Second)).Err(); err == nil {
		t.Fatal("PING on a killed server succeeded")
	}
	if err := s.PauseErr(); err == nil {
		t.Fatal("Pause on a killed server succeeded")
	}
	// The port is free: we can listen on it ourselves.
	l, err := net.Listen("tcp", s.Addr())
	if err != nil {
		t.Fatalf("port not free after Kill: %v", err)
	}
	l.Close()

	s.Restart(t)
	if s.Port() != port || !s.Running() || s.Pid() == 0 || s.Pid() == oldPid {
		t.Fatalf("after Restart: Port=%d (was %d) Running=%v Pid=%d (was %d)", s.Port(), port, s.Running(), s.Pid(), oldPid)
	}
	ctx := ctxTimeout(t, 5*time.Second)
	if err := c.Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET after Restart: %v, want redis.Nil (restarted server must be empty)", err)
	}

	// Restart of a running server kills it first.
	if err := c.Set(ctx, "k2", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	pid := s.Pid()
	s.Restart(t)
	if !processGone(pid) || s.Pid() == pid {
		t.Fatalf("Restart did not replace process %d", pid)
	}
	if n, err := c.DBSize(ctx).Result(); err != nil || n != 0 {
		t.Fatalf("DBSIZE after second Restart = %d, %v; want 0", n, err)
	}
}

func TestCleanupLeavesNothing(t *testing.T) {
	Start(t, 0) // skips here too when redis-server is missing
	var pids []int
	var dirs []string
	t.Run("inner", func(t *testing.T) {
		servers := Start(t, 3)
		servers[0].Pause(t) // cleanup must cope with a paused server
		servers[1].Kill(t)  // and with a killed one
		for _, s := range servers {
			dirs = append(dirs, s.dir)
			if pid := s.Pid(); pid != 0 {
				pids = append(pids, pid)
			}
		}
		_ = servers[2].Client(t)
	})
	if len(pids) != 2 {
		t.Fatalf("got %d running pids, want 2", len(pids))
	}
	for _, pid := range pids {
		if !processGone(pid) {
			t.Errorf("process %d still exists after cleanup", pid)
		}
	}
	for _, dir := range dirs {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("temp dir %s still exists after cleanup (stat: %v)", dir, err)
		}
	}
}

func TestStartServers(t *testing.T) {
	if !Available() {
		t.Skip("redis-server not available")
	}
	servers, stop, err := StartServers(2)
	if err != nil {
		t.Fatal(err)
	}
	pids := []int{servers[0].Pid(), servers[1].Pid()}
	c := servers[1].NewClient()
	if err := c.Ping(ctxTimeout(t, 5*time.Second)).Err(); err != nil {
		t.Error(err)
	}
	c.Close()
	if out := servers[0].Output(); strings.Contains(out, "rror") {
		t.Logf("server output:\n%s", out)
	}
	stop()
	stop() // harmless twice
	for _, pid := range pids {
		if !processGone(pid) {
			t.Errorf("process %d still exists after stop", pid)
		}
	}
	if err := servers[0].RestartErr(); err == nil {
		t.Error("Restart after Close succeeded")
	}

	servers, stop, err = StartServers(0)
	if err != nil || len(servers) != 0 {
		t.Fatalf("StartServers(0) = %v, %v", servers, err)
	}
	stop()
}

func TestPortInUseRetries(t *testing.T) {
	servers := Start(t, 2)
	s, other := servers[0], servers[1]
	// A foreign redis-server on a port must never be mistaken for ours.
	if err := probe(other.Addr(), other.Pid()+1, nil); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Fatalf("probe with a wrong pid: %v", err)
	}
	if err := probe(other.Addr(), other.Pid(), nil); err != nil {
		t.Fatalf("probe: %v", err)
	}
	// Restarting s while a listener we own holds its port must fail (after a
	// few quick retries) rather than talk to the listener.
	s.Kill(t)
	l, err := net.Listen("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	start := time.Now()
	if err := s.RestartErr(); !errors.Is(err, errPortInUse) {
		t.Fatalf("Restart on an occupied port: %v, want errPortInUse", err)
	}
	t.Logf("Restart on an occupied port gave up after %v", time.Since(start))
	l.Close()
	s.Restart(t)
	if err := s.Client(t).Ping(ctxTimeout(t, 5*time.Second)).Err(); err != nil {
		t.Fatal(err)
	}
}

// fakeTB records Skip and Fatal calls; both end the calling goroutine like
// the real ones do.
type fakeTB struct {
	testing.TB
	mu      sync.Mutex
	skipped string
	fatal   string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Skipf(format string, args ...any) {
	f.mu.Lock()
	f.skipped = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatal = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fakeTB) Cleanup(func()) { panic("Cleanup must not be reached") }

func runStart(f *fakeTB) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(f, 1)
	}()
	<-done
}

func TestMissingBinary(t *testing.T) {
	t.Setenv(EnvServer, filepath.Join(t.TempDir(), "no-such-redis-server"))
	if Available() {
		t.Fatal("Available() = true with a bogus " + EnvServer)
	}
	if _, _, err := StartServers(1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("StartServers: %v, want ErrNotFound", err)
	}
	if _, err := NewServer(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("NewServer: %v, want ErrNotFound", err)
	}

	t.Setenv(EnvRequire, "")
	f := &fakeTB{}
	runStart(f)
	if f.fatal != "" || !strings.Contains(f.skipped, "apt-get install -y redis-server") || !strings.Contains(f.skipped, EnvServer) {
		t.Fatalf("without %s: skipped=%q fatal=%q", EnvRequire, f.skipped, f.fatal)
	}

	t.Setenv(EnvRequire, "1")
	f = &fakeTB{}
	runStart(f)
	if f.skipped != "" || !strings.Contains(f.fatal, "apt-get install -y redis-server") {
		t.Fatalf("with %s=1: skipped=%q fatal=%q", EnvRequire, f.skipped, f.fatal)
	}
}

func TestStartWithArgsOverridesTheDefaultsAcrossRestarts(t *testing.T) {
	s := StartWithArgs(t, 1, "--maxmemory", "7mb", "--appendonly", "yes")[0]
	c := s.Client(t)
	check := func(when string) {
		t.Helper()
		ctx := ctxTimeout(t, 5*time.Second)
		got, err := c.ConfigGet(ctx, "maxmemory").Result()
		if err != nil || got["maxmemory"] != "7340032" {
			t.Fatalf("%s: CONFIG GET maxmemory = %v, %v; want 7340032", when, got, err)
		}
		got, err = c.ConfigGet(ctx, "appendonly").Result()
		if err != nil || got["appendonly"] != "yes" {
			t.Fatalf("%s: CONFIG GET appendonly = %v, %v; want yes (overriding the default no)", when, got, err)
		}
	}
	check("started")
	s.Restart(t)
	check("restarted")
}
