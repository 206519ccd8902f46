// Package redistest starts throw-away redis-server processes for tests and
// benchmarks.
//
// Every server is a real redis-server child process listening on a free
// 127.0.0.1 port, without persistence (a restarted server is empty) and with a
// single database (DB 0). Tests normally use Start, which skips the test when
// redis-server is not installed (or fails it when REDSYNC_REQUIRE_REDIS=1) and
// stops the servers in t.Cleanup. Programs that are not tests use
// StartServers or NewServer and stop the servers themselves. StartWithArgs
// and StartServersWithArgs give the servers options of their own (a memory
// limit, persistence, a password), which override the defaults.
//
// A Server can be paused (SIGSTOP), resumed (SIGCONT), killed (SIGKILL) and
// restarted on the same port, which is what lock tests need to simulate slow,
// partitioned and crashed nodes. Note that a paused server still accepts TCP
// connections (the kernel queues them), but it answers nothing until resumed;
// commands written to it while it is paused are executed when it resumes,
// even if the client has given up on them by then.
//
// The package only ever signals processes it started itself.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// EnvServer is the environment variable naming the redis-server binary to
// use (a path, or a name looked up in PATH). When it is empty, redis-server is
// looked up in PATH and a few usual install locations.
const EnvServer = "REDSYNC_REDIS_SERVER"

// EnvRequire is the environment variable that, when set to "1", makes Start
// fail the test instead of skipping it when redis-server is not available.
// CI sets it so that missing servers cannot silently skip the suite.
const EnvRequire = "REDSYNC_REQUIRE_REDIS"

// ErrNotFound is returned (wrapped) by NewServer and StartServers when no
// redis-server binary can be found.
var ErrNotFound = errors.New("redis-server not found")

// installHint tells the reader how to get a redis-server binary.
const installHint = "install it with `apt-get install -y redis-server`, or set " +
	EnvServer + " to the path of a redis-server binary"

const (
	// readyTimeout bounds how long a starting server may take to answer PING.
	readyTimeout = 10 * time.Second
	// probeTimeout bounds a single readiness probe.
	probeTimeout = 500 * time.Millisecond
	// pollInterval is the pause between readiness probes.
	pollInterval = 5 * time.Millisecond
	// newPortAttempts is how many fresh ports NewServer tries when another
	// process grabs the chosen port before redis-server binds it.
	newPortAttempts = 5
	// samePortAttempts is how many times Restart tries to bind the server's
	// old port when it is (temporarily) in use.
	samePortAttempts = 20
	// samePortDelay is the pause between those attempts.
	samePortDelay = 50 * time.Millisecond
)

// errPortInUse reports that redis-server could not bind its port.
var errPortInUse = errors.New("port already in use")

// Available reports whether a redis-server binary can be found, either through
// the REDSYNC_REDIS_SERVER environment variable or on PATH.
func Available() bool {
	_, err := findBinary()
	return err == nil
}

// findBinary returns the path of the redis-server binary to run.
func findBinary() (string, error) {
	if name := os.Getenv(EnvServer); name != "" {
		p, err := exec.LookPath(name)
		if err != nil {
			return "", fmt.Errorf("%w: %s=%q: %v (%s)", ErrNotFound, EnvServer, name, err, installHint)
		}
		return p, nil
	}
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p, nil
	}
	// PATH may be minimal (e.g. under some CI runners); try the usual places.
	for _, p := range []string{
		"/usr/bin/redis-server",
		"/usr/local/bin/redis-server",
		"/usr/sbin/redis-server",
		"/opt/homebrew/bin/redis-server",
	} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w in PATH (%s)", ErrNotFound, installHint)
}

// Server is one redis-server process started by this package, bound to a
// fixed 127.0.0.1 port for its whole life (Restart reuses the port).
// Its methods are safe for concurrent use.
type Server struct {
	bin  string // redis-server binary
	dir  string // temporary working directory, removed by Close
	port int

	mu     sync.Mutex
	proc   *process // current process; nil once killed
	last   *process // most recent process, kept for Output after a kill
	gen    int      // number of processes started, names the log files
	paused bool
	closed bool

	// Set before the first start and never changed (see topology.go).
	conf      string   // when not empty, written to a config file that is the first argument
	extraArgs []string // given after the default arguments
	env       []string // added to the process's environment (see env.go)
}

// process is one redis-server child process.
type process struct {
	cmd  *exec.Cmd
	log  string        // file receiving the process's stdout and stderr
	done chan struct{} // closed when the process has exited and been reaped
	err  error         // result of cmd.Wait; valid once done is closed
}

// exited reports whether the process has exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL unless the process already exited, and waits until it
// has been reaped.
func (p *process) kill() {
	if !p.exited() {
		// An error here means the process exited in the meantime; the wait
		// below covers both cases.
		_ = p.cmd.Process.Kill()
	}
	<-p.done
}

// output returns what the process wrote to stdout and stderr so far.
func (p *process) output() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return fmt.Sprintf("(cannot read redis-server output: %v)", err)
	}
	return string(b)
}

// NewServer starts one redis-server on a free 127.0.0.1 port and returns once
// it answers PING. The caller must call Close. The error wraps ErrNotFound
// when no redis-server binary is available.
func NewServer() (*Server, error) {
	bin, err := findBinary()
	if err != nil {
		return nil, err
	}
	return newServer(bin)
}

// newServer starts a server using the given binary.
// The options, if any, configure the server before its first start.
func newServer(bin string, options ...func(*Server)) (*Server, error) {
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return nil, fmt.Errorf("redistest: %w", err)
	}
	s := &Server{bin: bin, dir: dir}
	for _, option := range options {
		option(s)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err == nil {
			s.port = port
			err = s.spawnLocked()
		}
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errPortInUse) || attempt == newPortAttempts {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
}

// StartServers starts n servers concurrently (see NewServer). The returned
// function stops all of them and removes their files; it is safe to call more
// than once. On error, the servers already started are stopped and the
// returned function is nil. The error wraps ErrNotFound when no redis-server
// binary is available.
func StartServers(n int) ([]*Server, func(), error) {
	return StartServersWithArgs(n)
}

// StartServersWithArgs is StartServers for servers that get args (such as
// "--maxmemory", "1mb") after the default options, which they override.
// A restarted server gets them again.
func StartServersWithArgs(n int, args ...string) ([]*Server, func(), error) {
	return startServers(n, func(int) []func(*Server) { return []func(*Server){withArgs(args...)} })
}

// startServers starts n servers concurrently, server i with the options
// options(i) gives (see StartServersWithArgs).
func startServers(n int, options func(i int) []func(*Server)) ([]*Server, func(), error) {
	if n < 0 {
		return nil, nil, fmt.Errorf("redistest: negative number of servers %d", n)
	}
	bin, err := findBinary()
	if err != nil {
		return nil, nil, err
	}
	servers := make([]*Server, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			servers[i], errs[i] = newServer(bin, options(i)...)
		}(i)
	}
	wg.Wait()
	stop := func() {
		for _, s := range servers {
			if s != nil {
				_ = s.Close()
			}
		}
	}
	for _, err := range errs {
		if err != nil {
			stop()
			return nil, nil, err
		}
	}
	return servers, stop, nil
}

// Start starts n redis-server processes on free 127.0.0.1 ports, waits until
// each answers PING, and registers a t.Cleanup that stops them all (resuming
// paused ones, killing and reaping the processes, removing their files).
//
// When redis-server is not installed, Start skips the test with a message
// explaining how to install it, or fails the test if the environment variable
// REDSYNC_REQUIRE_REDIS is "1". A server that cannot be started fails the
// test.
func Start(t testing.TB, n int) []*Server {
	t.Helper()
	return StartWithArgs(t, n)
}

// StartWithArgs is Start for servers that get args after the default
// options (see StartServersWithArgs), to test a setting the defaults do
// not have: persistence, a memory limit, a password, an ACL user.
func StartWithArgs(t testing.TB, n int, args ...string) []*Server {
	t.Helper()
	if _, err := findBinary(); err != nil {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("redistest: %v (%s=1 is set, so this is an error)", err, EnvRequire)
		}
		t.Skipf("redistest: %v (set %s=1 to make this an error)", err, EnvRequire)
	}
	servers, _, err := StartServersWithArgs(n, args...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		for _, s := range servers {
			if err := s.Close(); err != nil {
				t.Errorf("%v", err)
			}
		}
	})
	return servers
}

// Addrs returns the addresses ("127.0.0.1:port") of the given servers, in
// order.
func Addrs(servers []*Server) []string {
	addrs := make([]string, len(servers))
	for i, s := range servers {
		addrs[i] = s.Addr()
	}
	return addrs
}

// Addr returns the server's address, "127.0.0.1:port". It does not change
// across Restart.
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Port returns the server's TCP port. It does not change across Restart.
func (s *Server) Port() int {
	return s.port
}

// Running reports whether the server process is alive (paused counts as
// running). It is false after Kill or Close, or if the process died on its
// own.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil && !s.proc.exited()
}

// Paused reports whether the server is paused by Pause.
func (s *Server) Paused() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paused && s.proc != nil && !s.proc.exited()
}

// Pid returns the process id of the running server process, or 0 when it is
// not running.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil || s.proc.exited() {
		return 0
	}
	return s.proc.cmd.Process.Pid
}

// Output returns what the current (or most recently killed) server process
// wrote to stdout and stderr, for diagnostics.
func (s *Server) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		return ""
	}
	return s.last.output()
}

// Pause stops the server process with SIGSTOP, so that it accepts
// connections but answers nothing, as a hung or partitioned node would.
// Pausing a paused server does nothing. It fails the test if the server is not
// running. A server still paused when the test ends is resumed before the
// cleanups registered until now run (a test that failed before its Resume
// would otherwise leave them waiting for the server's replies).
func (s *Server) Pause(t testing.TB) {
	t.Helper()
	if err := s.PauseErr(); err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.proc != nil && !s.proc.exited() {
			_ = s.resumeLocked()
		}
	})
}

// PauseErr is Pause for callers without a testing.TB.
func (s *Server) PauseErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkRunningLocked("pause"); err != nil {
		return err
	}
	if s.paused {
		return nil
	}
	if err := stopProcess(s.proc.cmd.Process); err != nil {
		return fmt.Errorf("redistest: pause %s: %w", s.Addr(), err)
	}
	s.paused = true
	return nil
}

// Resume continues a paused server with SIGCONT. Resuming a server that is not
// paused does nothing. It fails the test if the server is not running.
func (s *Server) Resume(t testing.TB) {
	t.Helper()
	if err := s.ResumeErr(); err != nil {
		t.Fatalf("%v", err)
	}
}

// ResumeErr is Resume for callers without a testing.TB.
func (s *Server) ResumeErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkRunningLocked("resume"); err != nil {
		return err
	}
	return s.resumeLocked()
}

// resumeLocked sends SIGCONT if the server is paused.
func (s *Server) resumeLocked() error {
	if !s.paused {
		return nil
	}
	if !s.proc.exited() {
		if err := continueProcess(s.proc.cmd.Process); err != nil {
			return fmt.Errorf("redistest: resume %s: %w", s.Addr(), err)
		}
	}
	s.paused = false
	return nil
}

// checkRunningLocked returns an error unless the server process is alive.
func (s *Server) checkRunningLocked(op string) error {
	if s.closed {
		return fmt.Errorf("redistest: %s %s: server is closed", op, s.Addr())
	}
	if s.proc == nil {
		return fmt.Errorf("redistest: %s %s: server is not running (killed)", op, s.Addr())
	}
	if s.proc.exited() {
		return fmt.Errorf("redistest: %s %s: server process exited unexpectedly (%v); output:\n%s",
			op, s.Addr(), s.proc.err, s.proc.output())
	}
	return nil
}

// Kill kills the server process with SIGKILL (paused or not) and waits until
// it has exited, so the port is free afterwards. Killing a server that is not
// running does nothing. Restart brings it back, empty.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	if err := s.KillErr(); err != nil {
		t.Fatalf("%v", err)
	}
}

// KillErr is Kill for callers without a testing.TB.
func (s *Server) KillErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("redistest: kill %s: server is closed", s.Addr())
	}
	s.killLocked()
	return nil
}

// killLocked kills and reaps the current process, if any.
func (s *Server) killLocked() {
	if s.proc != nil {
		s.proc.kill()
		s.proc = nil
	}
	s.paused = false
}

// Restart starts a new, empty redis-server process on the same port and
// waits until it answers PING. A running (or paused) server is killed first.
// It fails the test if the port cannot be bound again.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.RestartErr(); err != nil {
		t.Fatalf("%v", err)
	}
}

// RestartErr is Restart for callers without a testing.TB.
func (s *Server) RestartErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("redistest: restart %s: server is closed", s.Addr())
	}
	s.killLocked()
	var err error
	for attempt := 1; attempt <= samePortAttempts; attempt++ {
		if err = s.spawnLocked(); !errors.Is(err, errPortInUse) {
			break
		}
		time.Sleep(samePortDelay)
	}
	return err
}

// Close stops the server for good: it resumes it if paused, kills it, waits
// for it to exit and removes its temporary directory. Calling Close more than
// once is harmless.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []string
	if s.proc != nil {
		if err := s.resumeLocked(); err != nil {
			errs = append(errs, err.Error())
		}
	}
	s.killLocked()
	if err := os.RemoveAll(s.dir); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return fmt.Errorf("redistest: close %s: %s", s.Addr(), strings.Join(errs, "; "))
	}
	return nil
}

// Client returns a go-redis client connected to the server, closed in
// t.Cleanup, for tests to inspect and manipulate keys. It uses 2 s dial, read
// and write timeouts, honours context deadlines and never retries, so that a
// command to a paused or killed server fails quickly instead of hanging. The
// client keeps working across Restart (the address does not change).
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := s.NewClient()
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// NewClient is Client for callers without a testing.TB; the caller must
// close the client.
func (s *Server) NewClient() *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:                  s.Addr(),
		DialTimeout:           2 * time.Second,
		ReadTimeout:           2 * time.Second,
		WriteTimeout:          2 * time.Second,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		DialerRetries:         1,
		DisableIdentity:       true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	})
}

// spawnLocked starts a redis-server process on s.port and waits until it
// answers PING. On failure nothing is left running; the error wraps
// errPortInUse when the port could not be bound.
func (s *Server) spawnLocked() error {
	s.gen++
	logPath := filepath.Join(s.dir, fmt.Sprintf("redis-%d.log", s.gen))
	logFile, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("redistest: %w", err)
	}
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--dir", s.dir,
		"--protected-mode", "no",
		"--loglevel", "warning",
		"--databases", "1",
	)
	cmd.Dir = s.dir
	// Using a file (not a buffer) means exec starts no copying goroutines and
	// the output survives the process.
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := s.configure(cmd); err != nil {
		_ = logFile.Close()
		return err
	}
	err = cmd.Start()
	_ = logFile.Close() // the child has its own descriptor
	if err != nil {
		return fmt.Errorf("redistest: start %s: %w", s.bin, err)
	}
	p := &process{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	s.last = p
	if err := waitReady(s.Addr(), p); err != nil {
		p.kill()
		return err
	}
	s.proc = p
	s.paused = false
	return nil
}

// waitReady polls addr until the server answers PING and reports p's pid, p
// exits, or readyTimeout passes.
func waitReady(addr string, p *process) error {
	pid := p.cmd.Process.Pid
	deadline := time.Now().Add(readyTimeout)
	var lastErr error
	for {
		select {
		case <-p.done:
			out := p.output()
			if strings.Contains(out, "Address already in use") || strings.Contains(out, "Failed listening on port") {
				return fmt.Errorf("redistest: redis-server on %s: %w", addr, errPortInUse)
			}
			return fmt.Errorf("redistest: redis-server on %s exited during startup (%v); output:\n%s", addr, p.err, out)
		default:
		}
		if lastErr = probe(addr, pid, p.done); lastErr == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redistest: redis-server on %s not ready after %v (last probe: %v); output:\n%s",
				addr, readyTimeout, lastErr, p.output())
		}
		time.Sleep(pollInterval)
	}
}

// probe sends PING and INFO server over a raw connection and checks that the
// server answers +PONG and that its process_id is pid, so that a foreign
// process that happens to own the port is never mistaken for ours. The probe
// is abandoned as soon as exited is closed.
func probe(addr string, pid int, exited <-chan struct{}) error {
	conn, err := net.DialTimeout("tcp", addr, probeTimeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	// If our process dies (typically: it could not bind because a foreign
	// listener owns the port, which is what we are connected to), stop
	// waiting for a reply at once.
	probeDone := make(chan struct{})
	defer close(probeDone)
	go func() {
		select {
		case <-exited:
			conn.Close()
		case <-probeDone:
		}
	}()
	if err := conn.SetDeadline(time.Now().Add(probeTimeout)); err != nil {
		return err
	}
	if _, err := io.WriteString(conn, "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n"); err != nil {
		return err
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("unexpected reply to PING: %q", line)
	}
	line, err = r.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "$") || !strings.HasSuffix(line, "\r\n") {
		return fmt.Errorf("unexpected reply to INFO: %q", line)
	}
	n, err := strconv.Atoi(line[1 : len(line)-2])
	if err != nil || n < 0 || n > 1<<20 {
		return fmt.Errorf("unexpected reply to INFO: %q", line)
	}
	body := make([]byte, n+2)
	if _, err := io.ReadFull(r, body); err != nil {
		return err
	}
	for _, l := range strings.Split(string(body), "\r\n") {
		if v, ok := strings.CutPrefix(l, "process_id:"); ok {
			if got, err := strconv.Atoi(v); err != nil || got != pid {
				return fmt.Errorf("port owned by another process (process_id %s, want %d)", v, pid)
			}
			return nil
		}
	}
	return errors.New("INFO server reply has no process_id")
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redistest: pick a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("redistest: pick a free port: %w", err)
	}
	return port, nil
}
