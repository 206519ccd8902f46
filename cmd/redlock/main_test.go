//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/quorumlock/redsync/internal/redistest"
)

// binary is the redlock built by TestMain, which the tests run.
var binary string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "redlock-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "redlock")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command(goTool(), append(args, ".")...)
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building redlock: %v\n%s", err, out)
		return 1
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			return 1
		}
	}
	return code
}

// goTool is the go command that runs the tests: the one in $GOROOT/bin
// (go test sets GOROOT for its tests' processes), or go on $PATH.
func goTool() string {
	if root := os.Getenv("GOROOT"); root != "" {
		if p := filepath.Join(root, "bin", "go"); fileExists(p) {
			return p
		}
	}
	return "go"
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// A proc is a redlock process started by a test.
type proc struct {
	cmd    *exec.Cmd
	stdout syncBuffer
	stderr syncBuffer
	done   chan struct{}
	err    error
}

// start starts redlock with args, its servers given by $REDLOCK_ADDRS =
// addrs, in dir, with env added; it is killed at the end of the test if
// still running.
func start(t testing.TB, dir string, addrs []string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binary, args...), done: make(chan struct{})}
	p.cmd.Dir = dir
	p.cmd.Env = append(cleanEnv(), "REDLOCK_ADDRS="+strings.Join(addrs, ","))
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting redlock: %v", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// A syncBuffer is a bytes.Buffer that a test may read while the process
// writes to it.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// cleanEnv is the test's environment without any REDLOCK_ variable.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REDLOCK_") {
			env = append(env, kv)
		}
	}
	return env
}

// wait waits for p to exit and returns its exit status.
func (p *proc) wait(t testing.TB) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("redlock %v still running after 30s\nstderr:\n%s", p.cmd.Args[1:], &p.stderr)
	}
	var exit *exec.ExitError
	if p.err != nil && !errors.As(p.err, &exit) {
		t.Fatalf("redlock: %v", p.err)
	}
	return p.cmd.ProcessState.ExitCode()
}

// expectExit waits for p and fails the test unless it exits with want.
func (p *proc) expectExit(t testing.TB, want int) {
	t.Helper()
	if got := p.wait(t); got != want {
		t.Fatalf("redlock %v: exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", p.cmd.Args[1:], got, want, &p.stdout, &p.stderr)
	}
}

// signal sends sig to p.
func (p *proc) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// runRedlock runs redlock to its end and returns its exit status.
func runRedlock(t testing.TB, dir string, addrs []string, env []string, args ...string) (*proc, int) {
	t.Helper()
	p := start(t, dir, addrs, env, args...)
	return p, p.wait(t)
}

// eventually polls cond until it holds, and fails the test after 15 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fileHas reports whether the file at path holds line as one of its lines.
func fileHas(path, line string) bool {
	for _, l := range readLines(path) {
		if l == line {
			return true
		}
	}
	return false
}

// readLines returns the lines of the file at path (none when missing).
func readLines(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// keys returns every key on every server, by server.
func keys(t testing.TB, servers []*redistest.Server) [][]string {
	t.Helper()
	all := make([][]string, len(servers))
	for i, s := range servers {
		ks, err := s.Client(t).Keys(context.Background(), "*").Result()
		if err != nil {
			t.Fatalf("KEYS on server #%d: %v", i, err)
		}
		all[i] = ks
	}
	return all
}

// expectNoKeys fails the test when a server holds a key but those
// allowed.
func expectNoKeys(t testing.TB, servers []*redistest.Server, allowed ...string) {
	t.Helper()
	for i, ks := range keys(t, servers) {
		for _, k := range ks {
			ok := false
			for _, a := range allowed {
				ok = ok || k == a
			}
			if !ok {
				t.Errorf("server #%d holds %q after redlock exited", i, k)
			}
		}
	}
}

// shell is a sh -c command line for redlock.
func shell(script string) []string {
	return []string{"--", "sh", "-c", script}
}
