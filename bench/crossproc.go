package bench

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// A procSubject is one measurement of the multi-process scenarios: a
// library in every worker process (or, for the mixed fleet, one library
// per process) on servers reached at addrs.
type procSubject struct {
	label string
	libs  []string // the library of each process
	n     int
	addrs []string
}

// fleetPingEvery is how often the first worker PINGs during a round, for
// the round trip under load.
const fleetPingEvery = 10 * time.Millisecond

// procJobs returns the contention jobs of s for one round on name.
func (e *env) procJobs(s procSubject, name string) []workerJob {
	jobs := make([]workerJob, len(s.libs))
	for p, lib := range s.libs {
		jobs[p] = workerJob{Proc: p, Library: lib, Addrs: s.addrs, Name: name, Goroutines: e.cfg.FleetGoroutines,
			Warmup: e.cfg.FleetWarmup, Hold: e.cfg.FleetHold, Duration: e.cfg.FleetTime}
	}
	jobs[0].PingEvery = fleetPingEvery
	return jobs
}

// procLibs returns lib for each of the configured processes.
func (e *env) procLibs(lib string) []string {
	libs := make([]string, e.cfg.FleetProcs)
	for i := range libs {
		libs[i] = lib
	}
	return libs
}

// pingRTT returns the p50 of PINGs sent one at a time to addr through a
// go-redis client with default options: the raw round trip of the path
// the libraries use.
func pingRTT(ctx context.Context, addr string, pings int) (time.Duration, error) {
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	if err := c.Ping(ctx).Err(); err != nil { // dials
		return 0, fmt.Errorf("PING %s: %w", addr, err)
	}
	samples := make([]time.Duration, pings)
	for i := range samples {
		begin := time.Now()
		if err := c.Ping(ctx).Err(); err != nil {
			return 0, fmt.Errorf("PING %s: %w", addr, err)
		}
		samples[i] = time.Since(begin)
	}
	p50, _ := latencies(samples)
	return p50, nil
}

// fleetFigures are a subject's figures over the rounds.
type fleetFigures struct {
	rate, ceiling, otherProc, sameG, fifo, giveUps, overlaps, unlockErrs series
	procFair, gFair, procMin, procMax, gMin, gMax                        series
	attempts, attemptsMax, handed                                        series
	share                                                                []series // per process
	gapP50, gapP99, waitP50, waitP99, holdP50, rtt                       durSeries
	gapHandedP50, gapOwnP50                                              durSeries
	// loadedRTT is the PING p50 of one worker during the round;
	// unlockP50 the Unlock call's p50, afterUnlockP50 the p50 from one
	// holder's Unlock return to the next holder's Lock return.
	loadedRTT, unlockP50, afterUnlockP50 durSeries
	// clientCPU and serverCPU are the processor time of the workers and of
	// the servers per Lock call.
	clientCPU, serverCPU durSeries
	gapRTT               series
}

// add appends the figures of round r, whose PING p50 was rtt.
func (f *fleetFigures) add(r fleetRound, rtt time.Duration) {
	f.rate = append(f.rate, r.rate)
	gapP50, gapP99 := latencies(r.gaps)
	waitP50, waitP99 := latencies(r.waits)
	holdP50, _ := latencies(r.holds)
	f.gapP50, f.gapP99 = append(f.gapP50, gapP50), append(f.gapP99, gapP99)
	f.waitP50, f.waitP99 = append(f.waitP50, waitP50), append(f.waitP99, waitP99)
	f.holdP50, f.rtt = append(f.holdP50, holdP50), append(f.rtt, rtt)
	f.ceiling = append(f.ceiling, 1/(holdP50+rtt).Seconds())
	f.gapRTT = append(f.gapRTT, float64(gapP50)/float64(max(1, rtt)))
	if len(r.gapsHanded) > 0 {
		p, _ := latencies(r.gapsHanded)
		f.gapHandedP50 = append(f.gapHandedP50, p)
	}
	unlockP50, _ := latencies(r.unlocks)
	f.unlockP50 = append(f.unlockP50, unlockP50)
	afterP50, _ := latencies(r.afterUnlock)
	f.afterUnlockP50 = append(f.afterUnlockP50, afterP50)
	if len(r.gapsOwn) > 0 {
		p, _ := latencies(r.gapsOwn)
		f.gapOwnP50 = append(f.gapOwnP50, p)
	}
	f.otherProc = append(f.otherProc, r.otherProc)
	f.sameG = append(f.sameG, r.sameG)
	f.fifo = append(f.fifo, r.fifo)
	f.giveUps = append(f.giveUps, float64(r.giveUps))
	f.overlaps = append(f.overlaps, float64(r.overlaps))
	f.unlockErrs = append(f.unlockErrs, float64(r.unlockErrs))
	lo, hi, fair := minMax(r.perProc)
	f.procMin, f.procMax, f.procFair = append(f.procMin, float64(lo)), append(f.procMax, float64(hi)), append(f.procFair, fair)
	lo, hi, fair = minMax(r.perG)
	f.gMin, f.gMax, f.gFair = append(f.gMin, float64(lo)), append(f.gMax, float64(hi)), append(f.gFair, fair)
	f.attempts = append(f.attempts, meanOf(r.attempts))
	if len(r.attempts) > 0 {
		f.attemptsMax = append(f.attemptsMax, slices.Max(r.attempts))
	}
	f.handed = append(f.handed, r.handed)
	if f.share == nil {
		f.share = make([]series, len(r.perProc))
	}
	for p, c := range r.perProc {
		f.share[p] = append(f.share[p], float64(c)/float64(max(1, r.acquisitions)))
	}
}

// measureFleet runs every subject cfg.Rounds times, interleaved, the order
// rotated each round, and returns each one's figures. rttAddr(s) is where
// the subject's PING goes.
func (e *env) measureFleet(ctx context.Context, scenario string, subjects []procSubject) ([]fleetFigures, error) {
	figs := make([]fleetFigures, len(subjects))
	pings := e.cfg.FleetPings
	for r := 0; r < e.cfg.Rounds; r++ {
		for _, i := range rotate(len(subjects), r) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			s := subjects[i]
			e.progress("  round %d/%d: %s N=%d (%d processes)", r+1, e.cfg.Rounds, s.label, s.n, len(s.libs))
			rtt, err := pingRTT(ctx, s.addrs[0], pings)
			if err != nil {
				return nil, err
			}
			name := fmt.Sprintf("bench:%s:%s:N%d:%d", scenario, strings.ReplaceAll(s.label, " ", ""), s.n, r)
			meter := func(ctx context.Context) (time.Duration, error) { return e.fleet.serverCPU(ctx, s.n) }
			run, err := runWorkers(ctx, e.procJobs(s, name), e.cfg.FleetTime, meter)
			if err != nil {
				return nil, fmt.Errorf("%s N=%d: %w", s.label, s.n, err)
			}
			figs[i].add(analyseFleet(run.calls, run.start, e.cfg.FleetTime, len(s.libs), e.cfg.FleetGoroutines), rtt)
			loaded, _ := latencies(run.pings)
			figs[i].loadedRTT = append(figs[i].loadedRTT, loaded)
			acqs := float64(max(1, len(run.calls)))
			figs[i].clientCPU = append(figs[i].clientCPU, time.Duration(float64(run.cpu)/acqs))
			figs[i].serverCPU = append(figs[i].serverCPU, time.Duration(float64(run.serverCPU)/acqs))
		}
	}
	return figs, nil
}

// fleetAbout explains the multi-process tables.
func (e *env) fleetAbout() string {
	c := e.cfg
	return fmt.Sprintf("%d processes (this program started again as workers) of %d goroutines each, every goroutine with its own Mutex on one name, "+
		"lock, hold the lock %v, unlock and at once lock again, for %v per round; each process has its own go-redis clients (default options, one per server). "+
		"The processes start together at a time the parent sets and record every Lock and Unlock by the wall clock (one machine, one clock); the parent computes the figures from all the records. "+
		"Hand-off gap: from one holder's Unlock call to the next holder's Lock return, whichever processes they are in. "+
		"RTT: p50 of PINGs sent one at a time through a default go-redis client on the same path (to the first server), measured before each round; "+
		"ceiling: 1 ÷ (hold p50 + RTT), the rate of a lock that changes hands in one round trip (hold p50 is the measured hold: the %v sleep and the clock read around it). "+
		"Fairness: fewest ÷ most acquisitions, between processes and between goroutines. "+
		"Other process: share of hand-offs whose next holder is in another process. "+
		"FIFO violations: share of acquisitions whose Lock call started at least %v after another call that was still waiting when it returned (the holder overtook a waiter). "+
		"Give-ups: Lock errors before the end of the round. Overlaps: holds (Lock return to Unlock call) that began before the previous one ended, across processes (must be 0).",
		c.FleetProcs, c.FleetGoroutines, c.FleetHold, c.FleetTime, c.FleetHold, fifoMargin)
}

// fleetHeader and fleetRow make the main table of a multi-process run.
var fleetHeader = []string{"N", "library", "acquisitions/s", "÷ redsync", "÷ ceiling", "hand-off gap p50", "gap p99", "gap p50 ÷ RTT",
	"Lock wait p50", "Lock wait p99", "processes min–max (fairness)", "goroutines min–max (fairness)", "other process", "FIFO violations", "give-ups", "overlaps"}

func fleetRow(sec *section, s procSubject, f, redsync *fleetFigures) {
	ratio := "–"
	if redsync != nil {
		ratio = fmtRatio(f.rate.median(), redsync.rate.median())
	}
	sec.addRow(s.n, s.label, fmtRateRange(f.rate), ratio, "×"+sig3(ratioMedian(f.rate, f.ceiling)),
		fmtDurRange(f.gapP50), fmtDurRange(f.gapP99), "×"+sig3(f.gapRTT.median()),
		fmtDurRange(f.waitP50), fmtDurRange(f.waitP99),
		fmt.Sprintf("%s–%s (%s)", sig3(f.procMin.median()), sig3(f.procMax.median()), sig3(f.procFair.median())),
		fmt.Sprintf("%s–%s (%s)", sig3(f.gMin.median()), sig3(f.gMax.median()), sig3(f.gFair.median())),
		fmtPercent(f.otherProc.median()), fmtPercent(f.fifo.median()), fmtCount(f.giveUps), fmtCount(f.overlaps))
	if f.unlockErrs.max() > 0 {
		sec.notes = append(sec.notes, fmt.Sprintf("%s N=%d: Unlock failed %s times per round.", s.label, s.n, fmtCount(f.unlockErrs)))
	}
}

// ratioMedian is the median over rounds of a[r] ÷ b[r], paired by round.
func ratioMedian(a, b series) float64 {
	var q series
	for i := range min(len(a), len(b)) {
		if b[i] != 0 {
			q = append(q, a[i]/b[i])
		}
	}
	return q.median()
}

// pathsSection is the table behind the figures: RTT, hold, ceiling, and
// how this library's acquisitions came about.
func pathsSection(title string, subjects []procSubject, figs []fleetFigures) section {
	sec := section{
		title: title,
		about: "RTT and hold as in the table above; RTT under load: p50 of PINGs that the first process sends every " + fleetPingEvery.String() + " during the round, on a client of its own. " +
			"Unlock p50: Unlock call to return; after Unlock: p50 from the releaser's Unlock return to the next holder's Lock return (hand-off gap = Unlock + after Unlock). CPU per Lock call: the processor time (user and system) of all the worker processes, and of the servers (INFO cpu), during the round, divided by the Lock calls (nearly all of which acquired). Attempts per acquisition: the attempts (AttemptEvent) of each Lock that acquired, mean over the round, and the most of one Lock; " +
			"handed over: the share of acquisitions whose last attempt took a hand-over (AttemptEvent.HandedOver) instead of its own SET; " +
			"gap p50 split by how the next holder got the lock. From this library's Observer, so for quorumlock only. Same-goroutine: share of hand-offs back to the goroutine that released.",
		header: []string{"N", "library", "RTT p50", "RTT under load p50", "hold p50", "ceiling", "Unlock p50", "after Unlock p50", "CPU per Lock call: processes", "servers", "attempts per acquisition (mean, max)", "handed over", "gap p50: handed over", "gap p50: own attempt", "same goroutine"},
	}
	for i, s := range subjects {
		f := figs[i]
		attempts, handed := "–", "–"
		if s.libs[0] == libQuorumlock {
			attempts = fmt.Sprintf("%s, %s", sig3(f.attempts.median()), sig3(f.attemptsMax.median()))
			handed = fmtPercent(f.handed.median())
		}
		gapHanded, gapOwn := fmtDurRange(f.gapHandedP50), fmtDurRange(f.gapOwnP50)
		if s.libs[0] != libQuorumlock {
			gapHanded, gapOwn = "–", "–"
		}
		sec.addRow(s.n, s.label, fmtDurRange(f.rtt), fmtDurRange(f.loadedRTT), fmtDurRange(f.holdP50), fmtRateRange(f.ceiling),
			fmtDurRange(f.unlockP50), fmtDurRange(f.afterUnlockP50), fmtDurRange(f.clientCPU), fmtDurRange(f.serverCPU), attempts, handed,
			gapHanded, gapOwn, fmtPercent(f.sameG.median()))
	}
	return sec
}

// goalsSection judges this library's figures against the goals of the
// fleet queue.
func (e *env) goalsSection(title, table string, subjects []procSubject, figs []fleetFigures) section {
	contenders := e.cfg.FleetProcs * e.cfg.FleetGoroutines
	sec := section{
		title: title,
		about: fmt.Sprintf("This library's figures against the goals of the fleet queue, each with its goal: hand-off gap p50 at most 1.3 RTT; "+
			"the same against the RTT under load (table %sa), for comparison; acquisitions/s at least 1.1× redsync's and 0.9× the ceiling; fairness between processes and between goroutines at least 0.9; "+
			"Lock wait p99 at most 1.5 × contenders (%d) × (hold p50 + gap p50); no give-ups.", table, contenders),
		header: []string{"N", "gap p50 ÷ RTT (≤ 1.3)", "gap p50 ÷ RTT under load", "÷ redsync (≥ 1.1)", "÷ ceiling (≥ 0.9)", "fairness processes (≥ 0.9)", "fairness goroutines (≥ 0.9)", "wait p99 ÷ bound (≤ 1)", "give-ups (0)"},
	}
	judge := func(v, goal float64, atMost bool) string {
		if math.IsNaN(v) {
			return "–"
		}
		met := v >= goal
		if atMost {
			met = v <= goal
		}
		if met {
			return sig3(v) + " met"
		}
		return sig3(v) + " **missed**"
	}
	for i, s := range subjects {
		if s.libs[0] != libQuorumlock || s.label != libQuorumlock {
			continue
		}
		f := figs[i]
		vsRedsync := math.NaN()
		for j, o := range subjects {
			if o.label == libRedsync && o.n == s.n {
				vsRedsync = f.rate.median() / figs[j].rate.median()
			}
		}
		var bound series
		for r := range f.waitP99 {
			b := 1.5 * float64(contenders) * float64(f.holdP50[r]+f.gapP50[r])
			bound = append(bound, float64(f.waitP99[r])/b)
		}
		var gapLoaded series
		for r := range min(len(f.gapP50), len(f.loadedRTT)) {
			gapLoaded = append(gapLoaded, float64(f.gapP50[r])/float64(max(1, f.loadedRTT[r])))
		}
		sec.addRow(s.n, judge(f.gapRTT.median(), 1.3, true), judge(gapLoaded.median(), 1.3, true), judge(vsRedsync, 1.1, false), judge(ratioMedian(f.rate, f.ceiling), 0.9, false),
			judge(f.procFair.median(), 0.9, false), judge(f.gFair.median(), 0.9, false), judge(bound.median(), 1, true),
			judge(f.giveUps.max(), 0, true))
	}
	return sec
}

// runFleet is scenario 7: processes contending for one name, on 1, 3 and
// 5 servers, and (7b) a mixed fleet, this library and redsync v4 on one
// name.
func runFleet(ctx context.Context, e *env) ([]section, error) {
	var subjects []procSubject
	for _, n := range e.cfg.Servers {
		addrs := redistestAddrs(e.fleet, n)
		for _, lib := range []string{libQuorumlock, libRedsync} {
			subjects = append(subjects, procSubject{label: lib, libs: e.procLibs(lib), n: n, addrs: addrs})
		}
	}
	mixedLibs := e.procLibs(libQuorumlock)
	mixedLibs[len(mixedLibs)-1] = libRedsync
	mixed := procSubject{label: "mixed", libs: mixedLibs, n: e.cfg.FleetMixedServers, addrs: redistestAddrs(e.fleet, e.cfg.FleetMixedServers)}
	figs, err := e.measureFleet(ctx, "fleet", append(subjects, mixed))
	if err != nil {
		return nil, err
	}
	mixedFigs := figs[len(figs)-1]
	figs = figs[:len(figs)-1]

	c := e.cfg
	main := section{
		title:  fmt.Sprintf("7. Fleet (%d processes × %d goroutines on one name, holding it %v)", c.FleetProcs, c.FleetGoroutines, c.FleetHold),
		about:  e.fleetAbout(),
		header: fleetHeader,
	}
	for i, s := range subjects {
		var rs *fleetFigures
		for j, o := range subjects {
			if o.label == libRedsync && o.n == s.n {
				rs = &figs[j]
			}
		}
		fleetRow(&main, s, &figs[i], rs)
	}
	paths := pathsSection("7a. Fleet: round trips and how the lock changed hands", subjects, figs)
	goals := e.goalsSection("7c. Fleet: goals", "7", subjects, figs)
	return []section{main, paths, mixedSection(e, mixed, mixedFigs), goals}, nil
}

// mixedSection is 7b: each process's share of a mixed fleet.
func mixedSection(e *env, s procSubject, f fleetFigures) section {
	sec := section{
		title: fmt.Sprintf("7b. Mixed fleet (N=%d: %d processes on this library and 1 on redsync v4, %d goroutines each, one name)", s.n, len(s.libs)-1, e.cfg.FleetGoroutines),
		about: fmt.Sprintf("As in table 7, with the last process on redsync v4 (its default options) and the others on this library, all on one name: "+
			"each process's share of the acquisitions (median over rounds, every round in parentheses, in %%). "+
			"All together: %s acquisitions/s, hand-off gap p50 %s, Lock wait p99 %s, give-ups %s, overlaps %s (must be 0).",
			fmtRateRange(f.rate), fmtDurRange(f.gapP50), fmtDurRange(f.waitP99), fmtCount(f.giveUps), fmtCount(f.overlaps)),
		header: []string{"process", "library", "share of acquisitions"},
	}
	for p, lib := range s.libs {
		share := "–"
		if p < len(f.share) {
			sh := f.share[p]
			share = fmtPercent(sh.median())
			if len(sh) > 1 {
				rounds := make([]string, len(sh))
				for r, v := range sh {
					rounds[r] = strings.TrimSuffix(fmtPercent(v), " %")
				}
				share += " (" + strings.Join(rounds, ", ") + ")"
			}
		}
		sec.addRow(p+1, lib, share)
	}
	return sec
}

// runFleetSlow is scenario 8: scenario 7 on cfg.FleetSlowServers servers
// behind proxies that delay every byte cfg.FleetSlowDelay each way.
func runFleetSlow(ctx context.Context, e *env) ([]section, error) {
	n := e.cfg.FleetSlowServers
	var addrs []string
	for _, a := range redistestAddrs(e.fleet, n) {
		p, err := startDelayProxy(a, e.cfg.FleetSlowDelay)
		if err != nil {
			return nil, err
		}
		defer p.close()
		addrs = append(addrs, p.addr())
	}
	var subjects []procSubject
	for _, lib := range []string{libQuorumlock, libRedsync} {
		subjects = append(subjects, procSubject{label: lib, libs: e.procLibs(lib), n: n, addrs: addrs})
	}
	figs, err := e.measureFleet(ctx, "fleetslow", subjects)
	if err != nil {
		return nil, err
	}
	c := e.cfg
	main := section{
		title: fmt.Sprintf("8. Fleet on a slow network (N=%d, %v added each way)", n, c.FleetSlowDelay),
		about: fmt.Sprintf("Table 7's measurement with every connection (the libraries', the PINGs') through a proxy in front of each server that holds every chunk of bytes %v in each direction. "+
			"The gap is also given in RTTs (gap p50 ÷ RTT p50).", c.FleetSlowDelay),
		header: fleetHeader,
	}
	for i, s := range subjects {
		fleetRow(&main, s, &figs[i], &figs[1])
	}
	paths := pathsSection("8a. Slow network: round trips and how the lock changed hands", subjects, figs)
	goals := e.goalsSection("8b. Slow network: goals", "8", subjects, figs)
	return []section{main, paths, goals}, nil
}

// redistestAddrs returns the addresses of the first n servers of f.
func redistestAddrs(f *fleet, n int) []string {
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = f.servers[i].Addr()
	}
	return addrs
}
