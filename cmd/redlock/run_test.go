//go:build unix

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quorumlock/redsync"
	redsyncredis "github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis"

	"github.com/quorumlock/redsync/internal/redistest"
)

// holdLock takes name on servers in the test's process until the test
// ends (or release is called).
func holdLock(t *testing.T, servers []*redistest.Server, name string) (release func()) {
	t.Helper()
	var pools []redsyncredis.Pool
	for _, s := range servers {
		pools = append(pools, goredis.NewPool(s.Client(t)))
	}
	rs := redsync.New(pools...)
	m := rs.NewMutex(name, redsync.WithExpiry(20*time.Second), redsync.WithTries(1))
	if err := m.Lock(); err != nil {
		t.Fatalf("holding %s: %v", name, err)
	}
	released := false
	release = func() {
		if !released {
			released = true
			if _, err := m.Unlock(); err != nil {
				t.Errorf("releasing %s: %v", name, err)
			}
			rs.Wait()
		}
	}
	t.Cleanup(release)
	return release
}

func TestConcurrentRunsNeverInterleave(t *testing.T) {
	t.Parallel()
	servers := redistest.Start(t, 3)
	addrs := redistest.Addrs(servers)
	dir := t.TempDir()
	const runs = 4
	var procs []*proc
	for i := range runs {
		procs = append(procs, start(t, dir, addrs, nil, append([]string{"run", "-name", "report", "-quiet"},
			shell(fmt.Sprintf("echo start %d >> log; sleep 0.2; echo end %d >> log", i, i))...)...))
	}
	for _, p := range procs {
		p.expectExit(t, 0)
	}
	lines := readLines(filepath.Join(dir, "log"))
	if len(lines) != 2*runs {
		t.Fatalf("log has %d lines, want %d:\n%s", len(lines), 2*runs, strings.Join(lines, "\n"))
	}
	seen := map[string]bool{}
	for i := 0; i < len(lines); i += 2 {
		id := strings.TrimPrefix(lines[i], "start ")
		if lines[i] == id || lines[i+1] != "end "+id || seen[id] {
			t.Fatalf("runs interleaved or ran twice:\n%s", strings.Join(lines, "\n"))
		}
		seen[id] = true
	}
	expectNoKeys(t, servers)
}

func TestTryAndWaitGiveUpWithTheNotAcquiredCode(t *testing.T) {
	t.Parallel()
	servers := redistest.Start(t, 3)
	addrs := redistest.Addrs(servers)
	dir := t.TempDir()
	holdLock(t, servers, "busy")

	begin := time.Now()
	p, code := runRedlock(t, dir, addrs, nil, append([]string{"run", "-name", "busy", "-try"}, shell("echo ran > ran")...)...)
	tryTook := time.Since(begin)
	if code != exitNotAcquired {
		t.Fatalf("-try: exit status %d, want %d\n%s", code, exitNotAcquired, &p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "not acquired (-try): busy is held by") {
		t.Errorf("-try: stderr does not say who holds the lock:\n%s", &p.stderr)
	}

	begin = time.Now()
	p, code = runRedlock(t, dir, addrs, nil, append([]string{"run", "-name", "busy", "-wait", "200ms"}, shell("echo ran > ran")...)...)
	waitTook := time.Since(begin)
	if code != exitNotAcquired {
		t.Fatalf("-wait: exit status %d, want %d\n%s", code, exitNotAcquired, &p.stderr)
	}
	for _, want := range []string{"redlock: waiting: busy is held by", "not acquired (-wait ran out)"} {
		if !strings.Contains(p.stderr.String(), want) {
			t.Errorf("-wait: stderr lacks %q:\n%s", want, &p.stderr)
		}
	}
	t.Logf("-try took %v, -wait 200ms took %v (the holder's lock lasts 20s)", tryTook, waitTook)
	if waitTook < 200*time.Millisecond || tryTook > 10*time.Second || waitTook > 10*time.Second {
		t.Errorf("-try took %v, -wait 200ms took %v: want at once, and after 200ms, well before the lock's 20s", tryTook, waitTook)
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Errorf("the command ran without the lock")
	}
	// Only the holder's key: neither gave up leaving a key or a queued
	// value behind.
	expectNoKeys(t, servers, "busy")
}

func TestLostLockTerminatesThenKillsTheCommand(t *testing.T) {
	t.Parallel()
	servers := redistest.Start(t, 3)
	addrs := redistest.Addrs(servers)
	dir := t.TempDir()
	const grace = 600 * time.Millisecond
	// The command records its signals, ignores SIGTERM, and ticks until
	// it is killed.
	script := `echo pid $$ >> rec
trap 'echo TERM $(date +%s%N) >> rec' TERM
while :; do echo tick $(date +%s%N) >> rec; sleep 0.05; done`
	p := start(t, dir, addrs, nil, append([]string{"run", "-name", "job", "-expiry", "900ms", "-grace", grace.String()}, shell(script)...)...)
	rec := filepath.Join(dir, "rec")
	eventually(t, "the command to start", func() bool { return len(readLines(rec)) >= 2 })

	// A key deleted on a quorum is set again by the next extension (as
	// after a server restarted empty): the lock is not lost.
	for _, s := range servers[:2] {
		if err := s.Client(t).Del(context.Background(), "job").Err(); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the keep-alive to set the deleted keys again", func() bool {
		for _, ks := range keys(t, servers) {
			if len(ks) != 1 {
				return false
			}
		}
		return true
	})

	// Another holder's value on a quorum: the lock is lost.
	stolen := time.Now()
	for _, s := range servers[:2] {
		if err := s.Client(t).Set(context.Background(), "job", "thief", 20*time.Second).Err(); err != nil {
			t.Fatal(err)
		}
	}
	p.expectExit(t, exitLost)

	var pid int
	var term time.Time
	var lastTick time.Time
	for _, l := range readLines(rec) {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "pid":
			pid = int(n)
		case "TERM":
			if !term.IsZero() {
				t.Errorf("SIGTERM recorded twice")
			}
			term = time.Unix(0, n)
		case "tick":
			lastTick = time.Unix(0, n)
		}
	}
	if term.IsZero() {
		t.Fatalf("the command recorded no SIGTERM:\n%s\nstderr:\n%s", strings.Join(readLines(rec), "\n"), &p.stderr)
	}
	t.Logf("SIGTERM %v after the theft; the last tick %v after SIGTERM (grace %v)", term.Sub(stolen), lastTick.Sub(term), grace)
	// SIGTERM before the lock's expiry has passed since the theft
	// (extensions every 300 ms find it), SIGKILL not before -grace.
	if term.Before(stolen) {
		t.Errorf("SIGTERM came before the lock was stolen: the deleted keys lost it")
	}
	if term.Sub(stolen) > 900*time.Millisecond+time.Second {
		t.Errorf("SIGTERM came %v after the lock was stolen, want within the keep-alive interval", term.Sub(stolen))
	}
	if lastTick.Sub(term) < grace-250*time.Millisecond {
		t.Errorf("the command stopped %v after SIGTERM, before the %v grace", lastTick.Sub(term), grace)
	}
	if err := syscall.Kill(pid, 0); err != syscall.ESRCH {
		t.Errorf("the command (pid %d) still exists after redlock exited: %v", pid, err)
	}
	if !strings.Contains(p.stderr.String(), "sending SIGKILL") {
		t.Errorf("stderr does not tell of the SIGKILL:\n%s", &p.stderr)
	}
	// redlock released its own value and left the thief's alone.
	for i, ks := range keys(t, servers) {
		want := i < 2
		if got := len(ks) == 1 && ks[0] == "job"; got != want || len(ks) > 1 {
			t.Errorf("server #%d holds %q after redlock exited", i, ks)
		}
	}
}

func TestSignalsArePassedOnToTheCommand(t *testing.T) {
	t.Parallel()
	servers := redistest.Start(t, 3)
	addrs := redistest.Addrs(servers)
	for i, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		name := strings.TrimPrefix(sig.String(), "SIG")
		dir := t.TempDir()
		// The command leaves with a status of its own, which comes back.
		status := 10 + i
		script := fmt.Sprintf(`trap 'echo got %s >> rec; exit %d' %s
echo ready >> rec
while :; do sleep 0.05; done`, unixName(sig), status, unixName(sig))
		p := start(t, dir, addrs, nil, append([]string{"run", "-name", "sig"}, shell(script)...)...)
		rec := filepath.Join(dir, "rec")
		eventually(t, "the command to start", func() bool { return fileHas(rec, "ready") })
		p.signal(t, sig)
		p.expectExit(t, status)
		if !fileHas(rec, "got "+unixName(sig)) {
			t.Errorf("%s did not reach the command:\n%s", name, strings.Join(readLines(rec), "\n"))
		}
		expectNoKeys(t, servers)
	}
}

// unixName is the signal's name as sh's trap knows it.
func unixName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGTERM:
		return "TERM"
	case syscall.SIGINT:
		return "INT"
	case syscall.SIGHUP:
		return "HUP"
	}
	panic(sig)
}

func TestSignalWhileWaitingLeavesNothingBehind(t *testing.T) {
	t.Parallel()
	servers := redistest.Start(t, 3)
	addrs := redistest.Addrs(servers)
	dir := t.TempDir()
	holdLock(t, servers, "queue")
	p := start(t, dir, addrs, nil, append([]string{"run", "-name", "queue"}, shell("echo ran > ran")...)...)
	eventually(t, "the waiting line", func() bool { return strings.Contains(p.stderr.String(), "redlock: waiting:") })
	p.signal(t, syscall.SIGINT)
	p.expectExit(t, 128+int(syscall.SIGINT))
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Errorf("the command ran without the lock")
	}
	expectNoKeys(t, servers, "queue")
}

func TestExitStatus(t *testing.T) {
	t.Parallel()
	servers := redistest.Start(t, 3)
	addrs := redistest.Addrs(servers)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "not-executable"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	closed := []string{"127.0.0.1:1", "127.0.0.1:2", addrs[0]}
	for _, c := range []struct {
		name   string
		addrs  []string
		args   []string
		want   int
		stderr string
	}{
		{"success", addrs, shell("exit 0"), 0, ""},
		{"the command's status", addrs, shell("exit 7"), 7, ""},
		{"killed by a signal", addrs, shell("kill -KILL $$"), 128 + 9, ""},
		{"not found", addrs, []string{"--", "./no-such-command"}, exitNotFound, "command not found"},
		{"not runnable", addrs, []string{"--", "./not-executable"}, exitCannotRun, "cannot run"},
		{"no command", addrs, nil, exitUsage, "no command"},
		{"no name", addrs, []string{"-name=", "--", "true"}, exitUsage, "-name is missing"},
		{"-try with -wait", addrs, []string{"-try", "-wait", "1s", "--", "true"}, exitUsage, "-try and -wait"},
		{"a bad flag", addrs, []string{"-expiry", "soon", "--", "true"}, exitUsage, "invalid value"},
		{"a bad address", []string{"localhost"}, []string{"--", "true"}, exitUsage, "is not host:port"},
		{"a server given twice", []string{addrs[0], addrs[1], addrs[0]}, shell("echo ran > ran"), exitUsage, "is given twice"},
		{"no quorum", closed, shell("echo ran > ran"), exitUnreachable, "unreachable; check -addrs"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, code := runRedlock(t, dir, c.addrs, nil, append([]string{"run", "-name", "status"}, c.args...)...)
			if code != c.want {
				t.Errorf("exit status %d, want %d\nstderr:\n%s", code, c.want, &p.stderr)
			}
			if !strings.Contains(p.stderr.String(), c.stderr) {
				t.Errorf("stderr lacks %q:\n%s", c.stderr, &p.stderr)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Errorf("the command ran without a quorum")
	}
	expectNoKeys(t, servers)
}

func TestTheCommandGetsTheLocksEnvironment(t *testing.T) {
	t.Parallel()
	servers := redistest.Start(t, 3)
	addrs := redistest.Addrs(servers)
	dir := t.TempDir()
	before := time.Now()
	p, code := runRedlock(t, dir, addrs, nil, append([]string{"run", "-name", "env", "-fencing"},
		shell(`echo "$REDLOCK_NAME" > env; echo "$REDLOCK_UNTIL" >> env; echo "$REDLOCK_TOKEN" >> env`)...)...)
	if code != 0 {
		t.Fatalf("exit status %d\n%s", code, &p.stderr)
	}
	env := readLines(filepath.Join(dir, "env"))
	if len(env) != 3 || env[0] != "env" {
		t.Fatalf("the command saw %q", env)
	}
	until, err := time.Parse(time.RFC3339Nano, env[1])
	if err != nil || until.Before(before) || until.After(time.Now().Add(8*time.Second)) {
		t.Errorf("REDLOCK_UNTIL = %q (%v), want within the 8s expiry", env[1], err)
	}
	if token, err := strconv.ParseUint(env[2], 10, 64); err != nil || token == 0 {
		t.Errorf("REDLOCK_TOKEN = %q, want a fencing token", env[2])
	}
	// The fencing counter stays, as it must: later tokens grow from it.
	expectNoKeys(t, servers, "{env}:redsync:fence")
}

func TestLoginAndPermissionErrorsSayWhatToDo(t *testing.T) {
	t.Parallel()
	servers := redistest.Start(t, 3)
	addrs := redistest.Addrs(servers)
	dir := t.TempDir()
	ctx := context.Background()
	for i, s := range servers {
		// An ACL user without scripts on two servers of three.
		perms := []any{"ACL", "SETUSER", "locker", "on", ">pw", "~*", "&*", "+@all"}
		if i < 2 {
			perms = append(perms, "-evalsha", "-eval")
		}
		if err := s.Client(t).Do(ctx, perms...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// Waiting does not mend a refusal: redlock stops at once.
	p, code := runRedlock(t, dir, addrs, []string{"REDLOCK_PASSWORD=pw"}, append([]string{"run", "-name", "acl", "-user", "locker"}, shell("echo ran > ran")...)...)
	if code != exitUnreachable || !strings.Contains(p.stderr.String(), "the ACL user lacks a command the lock sends") {
		t.Errorf("NOPERM: exit status %d, want %d, and stderr saying what the user needs:\n%s", code, exitUnreachable, &p.stderr)
	}
	p, code = runRedlock(t, dir, addrs, []string{"REDLOCK_PASSWORD=wrong"}, append([]string{"run", "-name", "acl", "-user", "locker"}, shell("echo ran > ran")...)...)
	if code != exitUnreachable || !strings.Contains(p.stderr.String(), "WRONGPASS") || !strings.Contains(p.stderr.String(), "check -user and REDLOCK_PASSWORD") {
		t.Errorf("WRONGPASS: exit status %d, want %d\n%s", code, exitUnreachable, &p.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Errorf("the command ran without the lock")
	}
	expectNoKeys(t, servers)

	// NOAUTH last: the test's own clients cannot read the keys after it.
	if err := servers[0].Client(t).ConfigSet(ctx, "requirepass", "s3cret").Err(); err != nil {
		t.Fatal(err)
	}
	p, code = runRedlock(t, dir, addrs[:1], nil, append([]string{"run", "-name", "auth"}, shell("true")...)...)
	if code != exitUnreachable || !strings.Contains(p.stderr.String(), "set REDLOCK_PASSWORD") {
		t.Errorf("NOAUTH: exit status %d, want %d, and stderr saying to set REDLOCK_PASSWORD:\n%s", code, exitUnreachable, &p.stderr)
	}
	p, code = runRedlock(t, dir, addrs[:1], []string{"REDLOCK_PASSWORD=s3cret"}, append([]string{"run", "-name", "auth"}, shell("true")...)...)
	if code != 0 {
		t.Errorf("with REDLOCK_PASSWORD: exit status %d\n%s", code, &p.stderr)
	}
}

func TestTheLockIsInTheDatabaseOfDB(t *testing.T) {
	t.Parallel()
	servers := redistest.StartWithArgs(t, 1, "--databases", "2")
	addrs := redistest.Addrs(servers)
	dir := t.TempDir()
	holder := start(t, dir, addrs, nil, append([]string{"run", "-db", "1", "-name", "db", "-value", "in-db-1"},
		shell("echo started > started; while [ ! -e stop ]; do sleep 0.02; done")...)...)
	eventually(t, "the command", func() bool { return fileHas(filepath.Join(dir, "started"), "started") })
	p, code := runRedlock(t, dir, addrs, nil, "status", "-db", "1", "-name", "db")
	if code != 0 || !strings.Contains(p.stdout.String(), "db is held by in-db-1") {
		t.Errorf("status -db 1: exit status %d\n%s", code, &p.stdout)
	}
	expectNoKeys(t, servers) // database 0
	touch(t, filepath.Join(dir, "stop"))
	holder.expectExit(t, 0)
}
