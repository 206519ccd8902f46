package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// labelRedislockDefault names redislock with its default options, which
// never retry: a buyer who finds the lock taken gives up at once.
const labelRedislockDefault = "redislock (default: no retry)"

// saleRound is what one flash sale measured.
type saleRound struct {
	giveUps, sold, oversold, overlaps, errs int
	total                                   time.Duration
}

// flashSale lets buyers goroutines each buy one item once: lock, read the
// stock, decrement it if positive and write it back, unlock. The stock
// lives on server 0, read and written through the subject's own client.
func flashSale(ctx context.Context, s *subject, lockKey, stockKey string, buyers, stock int) (saleRound, error) {
	var res saleRound
	c := s.clients[0]
	if err := c.Set(ctx, stockKey, stock, 0).Err(); err != nil {
		return res, fmt.Errorf("setting the stock: %w", err)
	}
	var (
		start                         = make(chan struct{})
		wg                            sync.WaitGroup
		inside                        atomic.Int32
		giveUps, sold, overlaps, errs atomic.Int32
	)
	for b := 0; b < buyers; b++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := s.locker.newMutex(lockKey)
			<-start
			if err := m.lock(ctx); err != nil {
				giveUps.Add(1)
				return
			}
			if inside.Add(1) != 1 {
				overlaps.Add(1)
			}
			left, err := c.Get(ctx, stockKey).Int()
			if err == nil && left > 0 {
				err = c.Set(ctx, stockKey, left-1, 0).Err()
				if err == nil {
					sold.Add(1)
				}
			}
			if err != nil {
				errs.Add(1)
			}
			inside.Add(-1)
			if err := m.unlock(ctx); err != nil {
				errs.Add(1)
			}
		}()
	}
	begin := time.Now()
	close(start)
	wg.Wait()
	res.total = time.Since(begin)
	left, err := c.Get(ctx, stockKey).Int()
	if err != nil {
		return res, fmt.Errorf("reading the stock: %w", err)
	}
	res.giveUps, res.sold, res.overlaps, res.errs = int(giveUps.Load()), int(sold.Load()), int(overlaps.Load()), int(errs.Load())
	// Each sale took one item off the stock; a sale that did not was a
	// lost update, an item sold twice.
	res.oversold = res.sold - (stock - left)
	return res, nil
}

// runFlashSale is scenario 4: a burst of buyers on one key, with default
// options.
func runFlashSale(ctx context.Context, e *env) ([]section, error) {
	var subjects []*subject
	defer func() { closeSubjects(subjects) }()
	for _, n := range e.cfg.Servers {
		for _, lib := range librariesFor(n, libFloor) {
			if lib.name == libRedislock {
				subjects = append(subjects,
					e.openSubject(lib, n, lockOptions{}, labelRedislockDefault),
					e.openSubject(lib, n, lockOptions{retry: true}, labelRedislockRetry))
				continue
			}
			subjects = append(subjects, e.openSubject(lib, n, lockOptions{}, ""))
		}
	}
	for _, s := range subjects {
		if err := warmup(ctx, s.locker.newMutex(s.key("sale", "warmup")), e.cfg.Warmup); err != nil {
			return nil, fmt.Errorf("%s N=%d: %w", s.label, s.n, err)
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
			e.progress("  round %d/%d: %s N=%d", r+1, e.cfg.Rounds, s.label, s.n)
			res, err := flashSale(ctx, s, s.key("sale", r, "lock"), s.key("sale", r, "stock"), e.cfg.SaleBuyers, e.cfg.SaleStock)
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

	sec := section{
		title: fmt.Sprintf("4. Flash sale (%d buyers, one key, stock %d)", e.cfg.SaleBuyers, e.cfg.SaleStock),
		about: fmt.Sprintf("%d goroutines start together; each makes a Mutex with default options, locks, reads the stock (on server 0), "+
			"decrements and writes it back if it is positive, and unlocks: one purchase attempt each. "+
			"Give-ups are buyers whose Lock returned an error. Total time runs from the start to the last buyer done. "+
			"Oversold counts sales that did not take an item off the stock (lost updates: must be 0); overlaps, buyers that found another inside.",
			e.cfg.SaleBuyers),
		header: []string{"N", "library", "give-ups", "sold", "total time", "oversold (max)", "overlaps (max)", "errors"},
	}
	for i, s := range subjects {
		f := figs[i]
		sec.addRow(s.n, s.label, fmtCount(f.giveUps), fmtCount(f.sold), fmtDurRange(f.total),
			sig3(f.oversold.max()), sig3(f.overlaps.max()), fmtCount(f.errs))
		if s.label == labelRedislockRetry && f.giveUps.max() > 0 {
			sec.notes = append(sec.notes, labelRedislockRetry+": ExponentialBackoff has no jitter, so buyers that start together "+
				"retry in lockstep (16, 32, 64 … 256 ms): at each tick one wins and the others find the key taken, "+
				"until Obtain's default deadline (the lock's TTL, 8 s) ends the wait.")
		}
	}
	return []section{sec}, nil
}
