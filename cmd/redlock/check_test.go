//go:build unix

package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/quorumlock/redsync/internal/redistest"
)

func TestCheckFindsAnEvictingServerAndADuplicatePool(t *testing.T) {
	t.Parallel()
	evicting := redistest.StartWithArgs(t, 1, "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru")
	fine := redistest.Start(t, 1)
	addrs := []string{evicting[0].Addr(), fine[0].Addr(), fine[0].Addr()}
	p, code := runRedlock(t, t.TempDir(), addrs, nil, "check", "-ack", "no-persistence")
	if code != exitFindings {
		t.Errorf("exit status %d, want %d\n%s", code, exitFindings, &p.stderr)
	}
	out := p.stdout.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^#0 .* problem +eviction: maxmemory`),
		regexp.MustCompile(`(?m)^#2 .* problem +same-server: the pool reaches the same server as node #1`),
		regexp.MustCompile(`(?m)^2 problems, 0 warnings, 3 warnings accepted with -ack$`),
	} {
		if !want.MatchString(out) {
			t.Errorf("output does not match %s:\n%s", want, out)
		}
	}
}

func TestCheckPassesGoodServers(t *testing.T) {
	t.Parallel()
	addrs := redistest.Addrs(redistest.Start(t, 3))
	p, code := runRedlock(t, t.TempDir(), addrs, nil, "check", "-ack", "no-persistence")
	if code != 0 {
		t.Errorf("exit status %d, want 0\n%s\n%s", code, &p.stdout, &p.stderr)
	}
	// Without -ack, the warning fails the check.
	p, code = runRedlock(t, t.TempDir(), addrs, nil, "check")
	if code != exitFindings || !strings.Contains(p.stdout.String(), "warning  no-persistence") {
		t.Errorf("without -ack: exit status %d, want %d\n%s", code, exitFindings, &p.stdout)
	}
	p, code = runRedlock(t, t.TempDir(), addrs, nil, "check", "-ack", "eviction")
	if code != exitUsage || !strings.Contains(p.stderr.String(), "eviction is a problem, not a warning") {
		t.Errorf("-ack eviction: exit status %d, want %d\n%s", code, exitUsage, &p.stderr)
	}
}

func TestStatusShowsHolderFenceWaitersAndQueue(t *testing.T) {
	t.Parallel()
	servers := redistest.Start(t, 3)
	addrs := redistest.Addrs(servers)
	dir := t.TempDir()
	holder := start(t, dir, addrs, nil, append([]string{"run", "-name", "shown", "-value", "holder-1", "-fencing"},
		shell(`echo $REDLOCK_TOKEN > token; while [ ! -e stop ]; do sleep 0.02; done`)...)...)
	eventually(t, "the holder's command", func() bool { return len(readLines(filepath.Join(dir, "token"))) == 1 })
	waiter := start(t, dir, addrs, nil, append([]string{"run", "-name", "shown", "-value", "waiter-1"}, shell("true")...)...)
	token := readLines(filepath.Join(dir, "token"))[0]
	row := regexp.MustCompile(`(?m)^#[012] +127\.0\.0\.1:\d+ +holder-1 +\d\d:\d\d:\d\d \(\d+s\) +[\d.]+m?s +` + token + ` +1 +1$`)
	var out string
	defer func() {
		if t.Failed() {
			t.Logf("last status:\n%s", out)
		}
	}()
	eventually(t, "status to show the holder, its token, one listener and one queued waiter on every server", func() bool {
		p, code := runRedlock(t, dir, addrs, nil, "status", "-name", "shown")
		out = p.stdout.String()
		if code != 0 {
			t.Fatalf("status: exit status %d\n%s", code, &p.stderr)
		}
		return len(row.FindAllString(out, -1)) == 3
	})
	if !strings.Contains(out, "shown is held by holder-1 since") || !strings.Contains(out, "on 3 of 3 servers (a quorum is 2)") {
		t.Errorf("status:\n%s", out)
	}
	if err := os.WriteFile(filepath.Join(dir, "stop"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	holder.expectExit(t, 0)
	waiter.expectExit(t, 0)
	expectNoKeys(t, servers, "{shown}:redsync:fence")

	p, code := runRedlock(t, dir, addrs, nil, "status", "-name", "shown")
	if code != 0 || !strings.Contains(p.stdout.String(), "shown is free") {
		t.Errorf("status after: exit status %d\n%s", code, &p.stdout)
	}
}

func TestStatusWithoutAQuorum(t *testing.T) {
	t.Parallel()
	servers := redistest.Start(t, 1)
	addrs := []string{servers[0].Addr(), "127.0.0.1:1", "127.0.0.1:2"}
	p, code := runRedlock(t, t.TempDir(), addrs, nil, "status", "-name", "x")
	if code != exitUnreachable || !strings.Contains(p.stdout.String(), "(failed, see below)") || !strings.Contains(p.stderr.String(), "unreachable; check -addrs") {
		t.Errorf("exit status %d, want %d\n%s\n%s", code, exitUnreachable, &p.stdout, &p.stderr)
	}
}
