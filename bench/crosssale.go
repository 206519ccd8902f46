package bench

import (
	"context"
	"fmt"
	"time"
)

// saleTimeout bounds one flash sale across processes: redsync's buyers
// give up after 32 tries of up to 250 ms.
const saleTimeout = 30 * time.Second

// procSale is what one flash sale across processes measured.
type procSale struct {
	giveUps, sold, oversold, overlaps, errs int
	total                                   time.Duration
}

// flashSaleProcs spreads buyers over the processes of s, each buying once
// on one name; the stock is a separate key on the first server.
func (e *env) flashSaleProcs(ctx context.Context, s procSubject, round int) (procSale, error) {
	var res procSale
	name := fmt.Sprintf("bench:fleetsale:%s:N%d:%d", s.label, s.n, round)
	stockKey := name + ":stock"
	stock := e.fleet.inspect[0]
	if err := stock.Set(ctx, stockKey, e.cfg.FleetSaleStock, 0).Err(); err != nil {
		return res, fmt.Errorf("setting the stock: %w", err)
	}
	procs := len(s.libs)
	jobs := make([]workerJob, procs)
	for p, lib := range s.libs {
		// Buyers spread as evenly as they go.
		buyers := e.cfg.FleetSaleBuyers/procs + btoi(p < e.cfg.FleetSaleBuyers%procs)
		jobs[p] = workerJob{Proc: p, Library: lib, Addrs: s.addrs, Name: name, Goroutines: buyers,
			Warmup: e.cfg.FleetWarmup, StockKey: stockKey}
	}
	run, err := runWorkers(ctx, jobs, saleTimeout, nil)
	if err != nil {
		return res, err
	}
	calls, start := run.calls, run.start
	var last int64
	var held []callRecord
	for _, c := range calls {
		last = max(last, c.Return, c.Unlocked)
		switch {
		case !c.ok():
			res.giveUps++
		default:
			held = append(held, c)
			if c.Sold {
				res.sold++
			}
			if c.SaleErr != "" || c.UnlockErr != "" {
				res.errs++
			}
		}
	}
	res.total = time.Unix(0, last).Sub(start)
	res.overlaps = countOverlaps(held)
	left, err := stock.Get(ctx, stockKey).Int()
	if err != nil {
		return res, fmt.Errorf("reading the stock: %w", err)
	}
	res.oversold = res.sold - (e.cfg.FleetSaleStock - left)
	return res, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// runFleetSale is scenario 9: a flash sale whose buyers are spread over
// processes.
func runFleetSale(ctx context.Context, e *env) ([]section, error) {
	var subjects []procSubject
	for _, n := range e.cfg.FleetSaleServers {
		for _, lib := range []string{libQuorumlock, libRedsync} {
			subjects = append(subjects, procSubject{label: lib, libs: e.procLibs(lib), n: n, addrs: redistestAddrs(e.fleet, n)})
		}
	}
	type figures struct {
		giveUps, sold, oversold, overlaps, errs series
		total                                   durSeries
	}
	figs := make([]figures, len(subjects))
	for r := 0; r < e.cfg.Rounds; r++ {
		for _, i := range rotate(len(subjects), r) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			s := subjects[i]
			e.progress("  round %d/%d: %s N=%d (%d processes)", r+1, e.cfg.Rounds, s.label, s.n, len(s.libs))
			res, err := e.flashSaleProcs(ctx, s, r)
			if err != nil {
				return nil, fmt.Errorf("%s N=%d: %w", s.label, s.n, err)
			}
			f := &figs[i]
			f.giveUps = append(f.giveUps, float64(res.giveUps))
			f.sold = append(f.sold, float64(res.sold))
			f.oversold = append(f.oversold, float64(res.oversold))
			f.overlaps = append(f.overlaps, float64(res.overlaps))
			f.errs = append(f.errs, float64(res.errs))
			f.total = append(f.total, res.total)
		}
	}
	c := e.cfg
	sec := section{
		title: fmt.Sprintf("9. Flash sale across processes (%d buyers over %d processes, one name, stock %d)", c.FleetSaleBuyers, c.FleetProcs, c.FleetSaleStock),
		about: fmt.Sprintf("%d buyers, spread evenly over %d processes (each with its own clients, default options), start together at a time the parent sets; "+
			"each makes a Mutex with default options, locks, reads the stock (a separate key on server 0, through its process's client), decrements and writes it back if it is positive, and unlocks: one purchase attempt each. "+
			"Total time: from the start to the last buyer's Unlock (or Lock) return, by the wall clock. Give-ups: buyers whose Lock returned an error. "+
			"Oversold: sales that did not take an item off the stock (lost updates: must be 0); overlaps: holds that began before another ended, across processes (must be 0).",
			c.FleetSaleBuyers, c.FleetProcs),
		header: []string{"N", "library", "give-ups", "sold", "total time", "÷ redsync", "oversold (max)", "overlaps (max)", "errors"},
	}
	for i, s := range subjects {
		f := figs[i]
		ratio := "–"
		for j, o := range subjects {
			if o.label == libRedsync && o.n == s.n {
				ratio = fmtRatio(float64(f.total.median()), float64(figs[j].total.median()))
			}
		}
		sec.addRow(s.n, s.label, fmtCount(f.giveUps), fmtCount(f.sold), fmtDurRange(f.total), ratio,
			sig3(f.oversold.max()), sig3(f.overlaps.max()), fmtCount(f.errs))
	}
	return []section{sec}, nil
}
