//go:build unix

package main

import (
	"os"
	"strings"
	"testing"
)

// helpMarker is the line of README.md before the block that shows
// redlock -h.
const helpMarker = "<!-- redlock -h: kept the same as the program's by cmd/redlock's TestREADMEShowsTheHelp -->\n```text\n"

func TestREADMEShowsTheHelp(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, found := strings.Cut(string(readme), helpMarker)
	if !found {
		t.Fatalf("README.md has no line %q", helpMarker)
	}
	block, _, found = strings.Cut(block, "```\n")
	if !found {
		t.Fatal("README.md: the block of redlock -h does not end")
	}
	p, code := runRedlock(t, t.TempDir(), nil, nil, "-h")
	if code != 0 {
		t.Fatalf("redlock -h: exit status %d", code)
	}
	if got := p.stdout.String(); got != block {
		t.Errorf("README.md shows another redlock -h than the program's; the program's:\n%s", got)
	}
}

func TestHelpOfEveryCommand(t *testing.T) {
	t.Parallel()
	for _, c := range []string{"run", "elect", "check", "status"} {
		p, code := runRedlock(t, t.TempDir(), nil, nil, c, "-h")
		if code != 0 || !strings.HasPrefix(p.stderr.String(), "usage: redlock "+c) || !strings.Contains(p.stderr.String(), "-addrs host:port") {
			t.Errorf("redlock %s -h: exit status %d\n%s", c, code, &p.stderr)
		}
	}
	p, code := runRedlock(t, t.TempDir(), nil, nil, "launch")
	if code != exitUsage || !strings.Contains(p.stderr.String(), `unknown command "launch"`) {
		t.Errorf("redlock launch: exit status %d\n%s", code, &p.stderr)
	}
}
