//go:build linux

package faults

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/quorumlock/redsync/internal/redistest"
)

// Clock faults: Redlock assumes that every clock involved measures time
// at about the same rate, within the drift factor (1 % by default, of the
// expiry): a server's clock decides when its key expires, the client's
// when its validity ends. These faults bend those clocks; the checker
// still judges on CLOCK_MONOTONIC of the host, read by the runner and the
// Go client processes, which the bent servers cannot touch: the servers'
// clocks are bent inside their own processes only (see
// clockfault_shim.go), and the clients' in their holders' reading of
// Until only (see clientClock).
const (
	// FaultClockRate runs the clocks of a majority of the servers (the
	// first len/2+1) fast or slow by ClockConfig.Rate, both the wall
	// clock that expires keys and the monotonic one, for the whole run:
	// a fast server expires its keys early. It is a background fault
	// (one event spanning the run), not one of the faults that come one
	// at a time.
	FaultClockRate = "clock-rate"
	// FaultClockJump steps the wall clocks of a random majority of the
	// servers forward by ClockConfig.Jump at once, while they hold keys:
	// every key there expires that much earlier (at once, when it had
	// less left). The clocks stay ahead; each jump adds to the last.
	FaultClockJump = "clock-jump"
	// FaultClientClockSlow makes every client process's clock run slow
	// by ClockConfig.ClientSlow for the whole run, as its holders read
	// it: a holder believes its validity lasts until its own clock
	// passes Until, later on the host's clock (see clientClock). A
	// background fault, as FaultClockRate.
	FaultClientClockSlow = "client-clock-slow"
)

// ClockFaults are the clock fault kinds (-faults clock).
var ClockFaults = []string{FaultClockRate, FaultClockJump, FaultClientClockSlow}

// backgroundFault reports whether kind lasts the whole run instead of
// coming one at a time.
func backgroundFault(kind string) bool {
	return kind == FaultClockRate || kind == FaultClientClockSlow
}

// Defaults of ClockConfig: beyond the 1 % allowance, as the kinds that
// break the lock in -faults all are meant to be.
const (
	DefaultClockRate       = 0.02
	DefaultClockJump       = 3 * time.Second
	DefaultClientClockSlow = 0.02
)

// ClockConfig sets the clock faults of a run. A zero field means its
// default; a field matters only when its kind is among Config.Faults.
type ClockConfig struct {
	// Rate is how much faster than the host's clock the clocks of the
	// servers bent by FaultClockRate run: 0.02 is 2 % fast (x1.02),
	// -0.02 2 % slow.
	Rate float64 `json:"rate,omitempty"`
	// Jump is the step of FaultClockJump.
	Jump time.Duration `json:"jump,omitempty"`
	// ClientSlow is how much slower than the host's clock the clients'
	// clocks run under FaultClientClockSlow: 0.02 is 2 % slow.
	ClientSlow float64 `json:"client_slow,omitempty"`
}

func (c *ClockConfig) setDefaults() error {
	if c.Rate == 0 {
		c.Rate = DefaultClockRate
	}
	if c.Jump == 0 {
		c.Jump = DefaultClockJump
	}
	if c.ClientSlow == 0 {
		c.ClientSlow = DefaultClientClockSlow
	}
	switch {
	case c.Rate <= -0.5 || c.Rate >= 1:
		return fmt.Errorf("faults: clock rate %+.2f%%: want more than -50%% and less than +100%%", 100*c.Rate)
	case c.Jump < 0:
		return fmt.Errorf("faults: negative clock jump %v", c.Jump)
	case c.ClientSlow < 0 || c.ClientSlow >= 0.5:
		return fmt.Errorf("faults: client clock slow by %.2f%%: want 0 to 50%%", 100*c.ClientSlow)
	}
	return nil
}

// ParsePercent parses a rate such as "+2%", "-0.5%" or "0.02" (a
// fraction) for the clock flags.
func ParsePercent(s string) (float64, error) {
	t := strings.TrimSpace(s)
	scale := 1.0
	if p, ok := strings.CutSuffix(t, "%"); ok {
		t, scale = p, 0.01
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("faults: bad rate %q: want a percentage such as +2%% or a fraction such as 0.02", s)
	}
	return v * scale, nil
}

// ExpandFaultKinds turns a -faults value into kinds: a comma-separated
// list of kinds and of the groups "safe" (SafeFaults), "all" (AllFaults)
// and "clock" (ClockFaults), each kind once.
func ExpandFaultKinds(s string) []string {
	var out []string
	for _, item := range splitList(s) {
		group := []string{item}
		switch item {
		case "safe":
			group = SafeFaults
		case "all":
			group = AllFaults
		case "clock":
			group = ClockFaults
		}
		for _, kind := range group {
			if !slices.Contains(out, kind) {
				out = append(out, kind)
			}
		}
	}
	return out
}

// clientClock is a client process's clock as its holders read it: slow
// by the fraction slow of the host's (0: the host's clock). The library
// in the process still reads the host's clock: Go reads it through the
// vDSO, which no preloaded library can bend, and the library has no
// clock of its own to inject. What is bent is the holder's belief: it
// holds until its own clock passes the Until the library gave it.
type clientClock struct{ slow float64 }

// believed returns when, on the host's clock, the holder's slow clock
// passes until. The library set until span = (1-driftFactor)·expiry,
// less the attempt's time, after the attempt began, by the host's clock;
// a library on the slow clock would have set it the same distance ahead
// on its own clock, which reaches it span·slow/(1-slow) later on the
// host's (the attempt's own time cancels out).
func (c clientClock) believed(until time.Time, expiry time.Duration) time.Time {
	if c.slow == 0 {
		return until
	}
	span := float64(expiry) * (1 - driftFactor)
	return until.Add(time.Duration(span * c.slow / (1 - c.slow)))
}

// clockFaults is the state of a run's clock faults.
type clockFaults struct {
	cfg   ClockConfig
	kinds []string // the clock kinds of the run
	lib   string   // the shim, "" when no server clock is bent
	// offsets[i] is server i's wall clock offset, nil when server i is
	// not bent; rated are the servers whose clocks run at cfg.Rate.
	offsets []*clockOffset
	rated   []int
	// anchor is when the rated servers' wall clocks began to gain (the
	// host's clock, before the servers started).
	anchor time.Time
	// background are the events of FaultClockRate and
	// FaultClientClockSlow, ended by finish.
	background []FaultEvent
}

// newClockFaults prepares the clock faults of cfg: it builds the shim
// and the servers' offset files in cfg.Dir when a server clock is bent.
func newClockFaults(cfg *Config) (*clockFaults, error) {
	cf := &clockFaults{cfg: cfg.Clock}
	for _, kind := range cfg.Faults {
		if slices.Contains(ClockFaults, kind) {
			cf.kinds = append(cf.kinds, kind)
		}
	}
	if len(cf.kinds) == 0 {
		return cf, nil
	}
	if err := cf.cfg.setDefaults(); err != nil {
		return nil, err
	}
	start := monoNow()
	if cf.has(FaultClockRate) {
		for i := 0; i < cfg.Servers/2+1; i++ {
			cf.rated = append(cf.rated, i)
		}
		cf.background = append(cf.background, FaultEvent{Kind: FaultClockRate, Target: targetOf("server", cf.rated),
			Servers: cf.rated, Client: -1, Start: start,
			Detail: fmt.Sprintf("clocks %s for the whole run", rateText(cf.cfg.Rate))})
	}
	if cf.has(FaultClientClockSlow) {
		cf.background = append(cf.background, FaultEvent{Kind: FaultClientClockSlow, Target: "every client", Client: -1, Start: start,
			Detail: fmt.Sprintf("holders read Until on a clock %s for the whole run", rateText(-cf.cfg.ClientSlow))})
	}
	if !cf.has(FaultClockRate) && !cf.has(FaultClockJump) {
		return cf, nil
	}
	lib, err := buildClockShim(cfg.Dir)
	if err != nil {
		return nil, err
	}
	cf.lib = lib
	cf.anchor = time.Now()
	cf.offsets = make([]*clockOffset, cfg.Servers)
	for i := range cf.offsets {
		if cf.offsets[i], err = newClockOffset(filepath.Join(cfg.Dir, fmt.Sprintf("clock-server-%d", i))); err != nil {
			cf.close()
			return nil, err
		}
	}
	return cf, nil
}

func (cf *clockFaults) has(kind string) bool { return slices.Contains(cf.kinds, kind) }

// rateText describes a clock rate: "2 % fast (x1.02)".
func rateText(rate float64) string {
	word := "fast"
	if rate < 0 {
		word = "slow"
	}
	return fmt.Sprintf("%s %% %s (x%s)", strconv.FormatFloat(math.Abs(100*rate), 'f', -1, 64), word, strconv.FormatFloat(1+rate, 'f', -1, 64))
}

// startServers starts the servers, under the shim when their clocks are
// bent, and checks that the shim bends them.
func (cf *clockFaults) startServers(n int) ([]*redistest.Server, func(), error) {
	if cf.lib == "" {
		return redistest.StartServers(n)
	}
	servers, stop, err := redistest.StartServersWithEnv(n, cf.serverEnv)
	if err != nil {
		return nil, nil, err
	}
	if err := cf.verify(servers); err != nil {
		stop()
		return nil, nil, err
	}
	return servers, stop, nil
}

// serverEnv is server i's environment: the shim, its offset file and,
// for a rated server, the rate and the moment its wall clock began to
// gain. That moment is the run's start, the same for every start of the
// server: a restarted server's clock keeps the gain it had (counted from
// each start instead, a restart would step it back by that gain, 12 s
// after 10 minutes at +2 %, and the fencing tokens it floors with it).
func (cf *clockFaults) serverEnv(i int) []string {
	env := []string{"LD_PRELOAD=" + cf.lib, "CLOCKSHIFT_FILE=" + cf.offsets[i].path}
	if slices.Contains(cf.rated, i) {
		env = append(env, "CLOCKSHIFT_RATE_PPB="+strconv.FormatInt(int64(math.Round(cf.cfg.Rate*1e9)), 10),
			"CLOCKSHIFT_ANCHOR_NS="+strconv.FormatInt(cf.anchor.UnixNano(), 10))
	}
	return env
}

// verify steps every server's wall clock an hour ahead, reads it with
// TIME and steps it back: a server whose clock did not move is not bent
// (the shim was not loaded), and the run would prove nothing.
func (cf *clockFaults) verify(servers []*redistest.Server) error {
	const probe = time.Hour
	for i, s := range servers {
		cf.offsets[i].add(probe)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		rc := s.NewClient()
		now, err := rc.Time(ctx).Result()
		_ = rc.Close()
		cancel()
		cf.offsets[i].add(-probe)
		if err != nil {
			return fmt.Errorf("faults: TIME on server %d: %w", i, err)
		}
		if ahead := time.Until(now); ahead < probe-time.Minute || ahead > probe+time.Minute {
			return fmt.Errorf("faults: server %d's clock is %v ahead after a step of %v: the clock shim does not bend it", i, ahead.Round(time.Millisecond), probe)
		}
	}
	return nil
}

// jump returns a FaultClockJump on a random majority of the servers.
func (cf *clockFaults) jump(in *injector, ev *FaultEvent) (apply func() error) {
	ev.Servers = in.serversPicked(len(in.servers)/2 + 1)
	ev.Target = targetOf("server", ev.Servers)
	ahead := make([]string, len(ev.Servers))
	for k, i := range ev.Servers {
		ahead[k] = (time.Duration(cf.offsets[i].ns) + cf.cfg.Jump).Round(time.Millisecond).String()
	}
	ev.Detail = fmt.Sprintf("wall clock stepped %v forward (now %s ahead)", cf.cfg.Jump, strings.Join(ahead, ", "))
	return func() error {
		for _, i := range ev.Servers {
			cf.offsets[i].add(cf.cfg.Jump)
		}
		return nil
	}
}

// finish ends the background events, appends them to the fault log file
// in dir and returns them.
func (cf *clockFaults) finish(dir string) ([]FaultEvent, error) {
	if len(cf.background) == 0 {
		return nil, nil
	}
	end := monoNow()
	f, err := os.OpenFile(filepath.Join(dir, "faults.jsonl"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	log := &jsonLines{f: f, w: bufio.NewWriter(f)}
	for i := range cf.background {
		cf.background[i].End, cf.background[i].Healed = end, end
		log.write(cf.background[i])
	}
	return cf.background, log.close()
}

// close unmaps the offset files.
func (cf *clockFaults) close() {
	for _, o := range cf.offsets {
		if o != nil {
			o.close()
		}
	}
}

// A clockOffset is a server's wall clock offset: the first 8 bytes of a
// file the server's shim maps and reads at every clock read; the runner
// maps it too and stores to it atomically.
type clockOffset struct {
	path string
	mem  []byte
	ns   int64 // the offset stored, in nanoseconds; the injector's
}

func newClockOffset(path string) (*clockOffset, error) {
	if err := os.WriteFile(path, make([]byte, unix.Getpagesize()), 0o644); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	mem, err := unix.Mmap(int(f.Fd()), 0, unix.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("faults: mapping %s: %w", path, err)
	}
	return &clockOffset{path: path, mem: mem}, nil
}

// add moves the clock by d.
func (o *clockOffset) add(d time.Duration) {
	o.ns += int64(d)
	// The page is page-aligned, so its first 8 bytes are an aligned
	// int64 for the atomic store the shim's atomic load pairs with.
	atomic.StoreInt64((*int64)(unsafe.Pointer(&o.mem[0])), o.ns)
}

func (o *clockOffset) close() { _ = unix.Munmap(o.mem) }

// A ClockReport sums up the clock faults of a run: their settings,
// whether they exceed the drift allowance, and the overlaps that had a
// clock fault around them, with what their fencing tokens said.
type ClockReport struct {
	Kinds       []string    `json:"kinds"`
	Config      ClockConfig `json:"config"`
	RatedServer []int       `json:"rated_servers,omitempty"`
	// DriftFactor is the holders' drift factor; Beyond tells whether
	// the setting can outrun it (see beyondAllowance), and Rule how.
	DriftFactor float64 `json:"drift_factor"`
	Beyond      bool    `json:"beyond"`
	Rule        string  `json:"rule"`
	// Overlaps counts the overlaps with a clock fault among their
	// faults; Ordered, Inverted, Undetermined and Unfenced split them by
	// Overlap.Fencing.
	Overlaps     int `json:"overlaps"`
	Ordered      int `json:"ordered"`
	Inverted     int `json:"inverted"`
	Undetermined int `json:"undetermined"`
	Unfenced     int `json:"unfenced"`
}

// clockReport sums up the clock faults of rep's run; nil without any.
func clockReport(kinds []string, cfg ClockConfig, rated []int, minTTL time.Duration, overlaps []Overlap) *ClockReport {
	if len(kinds) == 0 {
		return nil
	}
	r := &ClockReport{Kinds: kinds, Config: cfg, RatedServer: rated, DriftFactor: driftFactor}
	r.Beyond, r.Rule = beyondAllowance(kinds, cfg, minTTL)
	for _, o := range overlaps {
		if !clockAround(o.Faults) {
			continue
		}
		r.Overlaps++
		switch o.Fencing {
		case FencingOrdered:
			r.Ordered++
		case FencingInverted:
			r.Inverted++
		case FencingUndetermined:
			r.Undetermined++
		default:
			r.Unfenced++
		}
	}
	return r
}

// clockAround reports whether a clock fault is among the faults of an
// overlap (as faultsDuring describes them: "#seq kind target").
func clockAround(faults []string) bool {
	for _, f := range faults {
		for _, kind := range ClockFaults {
			if strings.Contains(f, " "+kind+" ") {
				return true
			}
		}
	}
	return false
}

// beyondAllowance tells whether the clock faults can make a key expire
// on a majority before its holder's validity ends, and why. A key set
// with expiry E on a server whose clock runs at 1+rate and jumps forward
// by J lives (E-J)/(1+rate) on the host's clock; a holder whose clock
// runs slow by s believes it holds it (1-driftFactor)·E/(1-s). The
// shortest expiry is the one a jump hurts most.
func beyondAllowance(kinds []string, cfg ClockConfig, minTTL time.Duration) (bool, string) {
	rate, jump, slow := 0.0, time.Duration(0), 0.0
	if slices.Contains(kinds, FaultClockRate) {
		rate = cfg.Rate
	}
	if slices.Contains(kinds, FaultClockJump) {
		jump = cfg.Jump
	}
	if slices.Contains(kinds, FaultClientClockSlow) {
		slow = cfg.ClientSlow
	}
	e := float64(minTTL)
	life := max(e-float64(jump), 0) / (1 + rate)
	believed := (1 - driftFactor) * e / (1 - slow)
	beyond := believed > life
	rule := fmt.Sprintf("a key of %v lives %v on the host's clock, its holder believes it holds it %v: %s the %v%% drift allowance",
		minTTL, time.Duration(life).Round(10*time.Microsecond), time.Duration(believed).Round(10*time.Microsecond),
		map[bool]string{true: "beyond", false: "inside"}[beyond], 100*driftFactor)
	return beyond, rule
}

// clockFaultNote describes a clock fault kind in the report.
func clockFaultNote(kind string) string {
	switch kind {
	case FaultClockRate:
		return "a majority of servers' clocks fast or slow, the whole run"
	case FaultClockJump:
		return "a majority of servers' wall clocks stepped forward"
	case FaultClientClockSlow:
		return "every client's clock slow (its holders' reading of Until), the whole run"
	}
	return ""
}

// writeClock writes the clock section of the report.
func (r *Report) writeClock(row func(label string, v any, note string)) {
	c := r.Clock
	if c == nil {
		return
	}
	var set []string
	if slices.Contains(c.Kinds, FaultClockRate) {
		set = append(set, fmt.Sprintf("servers %s: %s", strings.Trim(strings.Join(strings.Fields(fmt.Sprint(c.RatedServer)), ","), "[]"), rateText(c.Config.Rate)))
	}
	if slices.Contains(c.Kinds, FaultClockJump) {
		set = append(set, fmt.Sprintf("jumps of %v on a majority", c.Config.Jump))
	}
	if slices.Contains(c.Kinds, FaultClientClockSlow) {
		set = append(set, "clients "+rateText(-c.Config.ClientSlow))
	}
	row("clock faults", strings.Join(c.Kinds, ","), strings.Join(set, "; "))
	row("  allowance", map[bool]string{true: "beyond", false: "inside"}[c.Beyond], c.Rule)
	row("  clock overlaps", c.Overlaps, fmt.Sprintf("fencing tokens ordered the holders: %d, out of order: %d, undetermined (Lock calls overlapped): %d, no tokens: %d",
		c.Ordered, c.Inverted, c.Undetermined, c.Unfenced))
}
