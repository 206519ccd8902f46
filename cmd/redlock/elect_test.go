//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quorumlock/redsync/internal/redistest"
)

// candidate starts redlock elect as holder, running script.
func candidate(t *testing.T, dir string, addrs []string, holder, script string, flags ...string) *proc {
	t.Helper()
	args := append([]string{"elect", "-name", "leader", "-value", holder, "-expiry", "1s"}, flags...)
	return start(t, dir, addrs, nil, append(args, shell(script)...)...)
}

func TestElectHandsOverWhenTheLeadersCommandExits(t *testing.T) {
	t.Parallel()
	servers := redistest.Start(t, 3)
	addrs := redistest.Addrs(servers)
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	// a leads until the test creates the file stop; b then leads.
	a := candidate(t, dir, addrs, "a", `echo lead a >> log; while [ ! -e stop ]; do sleep 0.02; done; echo end a >> log`)
	eventually(t, "a to lead", func() bool { return fileHas(log, "lead a") })
	b := candidate(t, dir, addrs, "b", `echo lead b >> log`)
	eventually(t, "b to campaign", func() bool { return strings.Contains(b.stderr.String(), "redlock: waiting: leader is held by a since") })
	touch(t, filepath.Join(dir, "stop"))
	a.expectExit(t, 0)
	b.expectExit(t, 0)
	if got, want := strings.Join(readLines(log), "; "), "lead a; end a; lead b"; got != want {
		t.Errorf("log: %s, want %s", got, want)
	}
	expectNoKeys(t, servers)
}

func TestElectTakesOverFromAKilledLeader(t *testing.T) {
	t.Parallel()
	servers := redistest.Start(t, 3)
	addrs := redistest.Addrs(servers)
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	a := candidate(t, dir, addrs, "a", `echo pid $$ >> log; while :; do sleep 0.02; done`)
	eventually(t, "a to lead", func() bool { return len(readLines(log)) == 1 })
	b := candidate(t, dir, addrs, "b", `echo lead b >> log`)
	eventually(t, "b to campaign", func() bool { return strings.Contains(b.stderr.String(), "redlock: waiting:") })
	killed := time.Now()
	a.signal(t, syscall.SIGKILL)
	a.wait(t)
	b.expectExit(t, 0)
	took := time.Since(killed)
	lines := readLines(log)
	if len(lines) != 2 || lines[1] != "lead b" {
		t.Fatalf("log: %q", lines)
	}
	// The kernel killed a's command with a (Pdeathsig).
	pid, _ := strconv.Atoi(strings.TrimPrefix(lines[0], "pid "))
	eventually(t, "a's command to die with a", func() bool { return syscall.Kill(pid, 0) == syscall.ESRCH })
	t.Logf("b led %v after a was killed (expiry 1s)", took)
	if took > 1*time.Second+5*time.Second {
		t.Errorf("b led %v after a was killed, want within about the 1s expiry", took)
	}
	expectNoKeys(t, servers)
}

func TestElectRespawnRunsTheCommandAgain(t *testing.T) {
	t.Parallel()
	servers := redistest.Start(t, 3)
	addrs := redistest.Addrs(servers)
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	p := candidate(t, dir, addrs, "a", `echo ran >> log; exit 3`, "-respawn")
	// Signalled in the pause after the second run, so that the signal is
	// redlock's and not the command's.
	eventually(t, "the second run to end", func() bool { return strings.Count(p.stderr.String(), "campaigning again") >= 2 })
	p.signal(t, syscall.SIGTERM)
	p.expectExit(t, 128+int(syscall.SIGTERM))
	if n := len(readLines(log)); n != 2 || !strings.Contains(p.stderr.String(), "the command exited with status 3; campaigning again") {
		t.Errorf("%d runs", n)
		t.Errorf("stderr:\n%s", &p.stderr)
	}
	expectNoKeys(t, servers)
}

func touch(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
}
