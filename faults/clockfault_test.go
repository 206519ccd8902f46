//go:build linux

package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quorumlock/redsync/internal/redistest"
)

func TestParsePercent(t *testing.T) {
	for _, c := range []struct {
		in   string
		want float64
		bad  bool
	}{
		{in: "+2%", want: 0.02}, {in: "-0.5%", want: -0.005}, {in: "0.02", want: 0.02}, {in: " 10% ", want: 0.1},
		{in: "x1.02", bad: true}, {in: "%", bad: true}, {in: "NaN%", bad: true},
	} {
		got, err := ParsePercent(c.in)
		if c.bad {
			if err == nil {
				t.Errorf("ParsePercent(%q) = %v, want an error", c.in, got)
			}
			continue
		}
		if err != nil || got < c.want-1e-12 || got > c.want+1e-12 {
			t.Errorf("ParsePercent(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func TestExpandFaultKinds(t *testing.T) {
	got := ExpandFaultKinds("safe,clock-rate,clock")
	want := append(append([]string(nil), SafeFaults...), ClockFaults...)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("ExpandFaultKinds = %v, want %v", got, want)
	}
	if got := ExpandFaultKinds("all"); len(got) != len(AllFaults) {
		t.Errorf("ExpandFaultKinds(all) = %v", got)
	}
}

// A holder whose clock runs slow by s reads the library's validity span
// as ending span·s/(1-s) later: for 2 % and an expiry of 1 s, 990 ms
// become 990/0.98 ms.
func TestSlowClientBelievesItsUntilLater(t *testing.T) {
	until := time.Unix(1000, 0)
	if got := (clientClock{}).believed(until, time.Second); !got.Equal(until) {
		t.Errorf("an unbent clock believes %v, want %v", got, until)
	}
	got := clientClock{slow: 0.02}.believed(until, time.Second)
	span := 990 * time.Millisecond
	want := until.Add(-span).Add(time.Duration(float64(span) / 0.98))
	if d := got.Sub(want); d < -time.Microsecond || d > time.Microsecond {
		t.Errorf("believed %v, want %v", got, want)
	}
}

func TestBeyondAllowance(t *testing.T) {
	for _, c := range []struct {
		name  string
		kinds []string
		cfg   ClockConfig
		want  bool
	}{
		{"servers 0.5% fast", []string{FaultClockRate}, ClockConfig{Rate: 0.005}, false},
		{"servers 1% fast", []string{FaultClockRate}, ClockConfig{Rate: 0.01}, false},
		{"servers 2% fast", []string{FaultClockRate}, ClockConfig{Rate: 0.02}, true},
		{"servers 10% slow", []string{FaultClockRate}, ClockConfig{Rate: -0.1}, false},
		{"clients 2% slow", []string{FaultClientClockSlow}, ClockConfig{ClientSlow: 0.02}, true},
		{"0.5% fast servers, 0.4% slow clients", []string{FaultClockRate, FaultClientClockSlow}, ClockConfig{Rate: 0.005, ClientSlow: 0.004}, false},
		{"1% fast servers, 1% slow clients", []string{FaultClockRate, FaultClientClockSlow}, ClockConfig{Rate: 0.01, ClientSlow: 0.01}, true},
		{"jump of 5ms", []string{FaultClockJump}, ClockConfig{Jump: 5 * time.Millisecond}, false},
		{"jump of 500ms", []string{FaultClockJump}, ClockConfig{Jump: 500 * time.Millisecond}, true},
		{"a rate not among the kinds", []string{FaultClockJump}, ClockConfig{Rate: 0.1, Jump: time.Millisecond}, false},
	} {
		got, rule := beyondAllowance(c.kinds, c.cfg, 800*time.Millisecond)
		if got != c.want {
			t.Errorf("%s: beyond = %v, want %v (%s)", c.name, got, c.want, rule)
		}
	}
}

// requireClockFaults skips the test where the clock faults cannot run
// (no redis-server, no C compiler to build the clock shim), or fails it
// when CI says they must.
func requireClockFaults(t *testing.T) {
	t.Helper()
	requireRedis(t)
	if err := ClockFaultsAvailable(); err != nil {
		if os.Getenv(redistest.EnvRequire) == "1" {
			t.Fatalf("%v (and %s=1)", err, redistest.EnvRequire)
		}
		t.Skipf("%v (set %s=1 to make this an error)", err, redistest.EnvRequire)
	}
	if testing.Short() {
		t.Skip("a run of the suite takes a minute")
	}
}

// runSuite runs the faultsuite binary with args and returns its report.
func runSuite(t *testing.T, bin string, args ...string) *Report {
	t.Helper()
	dir := t.TempDir()
	reportPath := filepath.Join(dir, "report.json")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, append([]string{"-json", reportPath, "-dir", filepath.Join(dir, "records")}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	t.Logf("faultsuite %s:\n%s", strings.Join(args, " "), out.String())
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
		t.Fatalf("faultsuite: %v", err)
	}
	b, err := os.ReadFile(reportPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Problems {
		t.Errorf("run problem: %s", p)
	}
	for _, o := range rep.Orphans {
		t.Errorf("orphan key on server %d: %s = %q (ttl %d ms)", o.Server, o.Key, o.Value, o.PTTL)
	}
	for _, l := range rep.Leaks {
		t.Errorf("client %d leaked %d goroutines (Wait stuck: %v)", l.Client, l.LeakedGoroutines, l.WaitStuck)
	}
	for _, v := range rep.Check.FencingViolations {
		t.Errorf("fencing token out of order on %s: %s, then %s", v.Name, v.Earlier, v.Later)
	}
	if rep.Clock == nil {
		t.Fatal("the report has no clock section")
	}
	return &rep
}

// TestClockFaults runs the suite twice with bent clocks: inside the drift
// allowance (a majority of servers 0.5 % fast and the clients 0.4 % slow,
// among pauses and partitions that make holders use their validity to
// its end) no two holders overlap; beyond it (the wall clocks of a
// majority jumping 3 s forward, past the longest expiry) the checker
// finds the overlaps, each with the jump around it.
func TestClockFaults(t *testing.T) {
	requireClockFaults(t)
	bin := buildSuite(t)

	t.Run("inside the allowance", func(t *testing.T) {
		rep := runSuite(t, bin, "-duration", "30s", "-seed", "20261203",
			"-faults", "pause-long,partition,client-pause,clock-rate,client-clock-slow",
			"-clock-rate", "+0.5%", "-client-clock-slow", "0.4%")
		if rep.Clock.Beyond {
			t.Fatalf("the setting is beyond the allowance: %s", rep.Clock.Rule)
		}
		for _, kind := range []string{FaultClientPause, FaultPartition, FaultClockRate, FaultClientClockSlow} {
			if rep.Faults[kind] == 0 {
				t.Errorf("no %s fault was injected", kind)
			}
		}
		if rep.Ops.Acquired < 500 {
			t.Errorf("only %d acquisitions: the clients hardly ran", rep.Ops.Acquired)
		}
		for _, o := range rep.Check.Overlaps {
			t.Errorf("overlap on %s for %v: %s and %s; faults around: %v", o.Name, o.Duration(), o.A, o.B, o.Faults)
		}
		for _, v := range rep.Check.primViolations(false) {
			t.Error(v)
		}
	})

	t.Run("beyond the allowance", func(t *testing.T) {
		rep := runSuite(t, bin, "-duration", "15s", "-seed", "20261203", "-faults", "clock-jump", "-clock-jump", "3s")
		if !rep.Clock.Beyond {
			t.Fatalf("the setting is inside the allowance: %s", rep.Clock.Rule)
		}
		if rep.Faults[FaultClockJump] == 0 {
			t.Fatal("no clock jump was injected")
		}
		if len(rep.Check.Overlaps) == 0 {
			t.Fatal("the checker found no overlap: jumps past the expiry on a majority must break the lock")
		}
		if rep.Clock.Overlaps != len(rep.Check.Overlaps) {
			t.Errorf("%d of %d overlaps had a clock fault around them, want all", rep.Clock.Overlaps, len(rep.Check.Overlaps))
		}
		t.Logf("%d overlaps; fencing tokens ordered %d, out of order %d, undetermined %d, unfenced %d",
			rep.Clock.Overlaps, rep.Clock.Ordered, rep.Clock.Inverted, rep.Clock.Undetermined, rep.Clock.Unfenced)
	})
}

// A server whose clock runs fast keeps the gain its clock has when it is
// restarted, as a machine's clock does when a process on it restarts:
// counted from each start, a restart would step its wall clock back.
func TestRatedServerKeepsItsGainAcrossARestart(t *testing.T) {
	requireClockFaults(t)
	cfg := &Config{Servers: 1, Dir: t.TempDir(), Faults: []string{FaultClockRate}, Clock: ClockConfig{Rate: 0.1}}
	cf, err := newClockFaults(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cf.close()
	servers, stop, err := cf.startServers(1)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	gain := func() time.Duration {
		t.Helper()
		client := servers[0].NewClient()
		defer func() { _ = client.Close() }()
		before := time.Now()
		at, err := client.Time(context.Background()).Result()
		if err != nil {
			t.Fatal(err)
		}
		return at.Sub(before)
	}
	time.Sleep(time.Second)
	first := gain()
	if first < 50*time.Millisecond {
		t.Fatalf("a server 10 %% fast gained %v in a second", first)
	}
	if err := servers[0].RestartErr(); err != nil {
		t.Fatal(err)
	}
	if again := gain(); again < first {
		t.Errorf("the restarted server's clock gains %v, it gained %v before the restart: the restart stepped it back", again, first)
	}
}
