//go:build unix

package main

import (
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quorumlock/redsync/internal/redistest"
)

// BenchmarkRunTry is one `redlock run -try -- true` on 3 servers: the
// process, its connections, the lock, the child and the release.
func BenchmarkRunTry(b *testing.B) {
	addrs := redistest.Addrs(redistest.Start(b, 3))
	dir := b.TempDir()
	for b.Loop() {
		p, code := runRedlock(b, dir, addrs, nil, "run", "-try", "-name", "bench", "--", "true")
		if code != 0 {
			b.Fatalf("exit status %d\n%s", code, &p.stderr)
		}
	}
}

// BenchmarkHandOver measures, as handover-ms (the median), the time from the end of
// one run's command to the start of the command of a run that waited for
// it: the release, the hand-over to the waiting process, and the start of
// its command.
func BenchmarkHandOver(b *testing.B) {
	addrs := redistest.Addrs(redistest.Start(b, 3))
	var gaps []time.Duration
	for b.Loop() {
		dir := b.TempDir()
		first := start(b, dir, addrs, nil, append([]string{"run", "-quiet", "-name", "handover"},
			shell("date +%s%N > first.start; sleep 0.2; date +%s%N > first.end")...)...)
		eventually(b, "the first command", func() bool { return len(readLines(filepath.Join(dir, "first.start"))) == 1 })
		second := start(b, dir, addrs, nil, append([]string{"run", "-quiet", "-name", "handover"},
			shell("date +%s%N > second.start")...)...)
		first.expectExit(b, 0)
		second.expectExit(b, 0)
		gaps = append(gaps, time.Duration(stamp(b, filepath.Join(dir, "second.start"))-stamp(b, filepath.Join(dir, "first.end"))))
	}
	slices.Sort(gaps)
	b.ReportMetric(float64(gaps[len(gaps)/2].Microseconds())/1e3, "handover-ms")
}

// stamp reads the nanoseconds written by date +%s%N in the file at path.
func stamp(b *testing.B, path string) int64 {
	b.Helper()
	n, err := strconv.ParseInt(strings.TrimSpace(strings.Join(readLines(path), "")), 10, 64)
	if err != nil {
		b.Fatalf("%s: %v", path, err)
	}
	return n
}
