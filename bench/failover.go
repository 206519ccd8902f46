package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	quorumlock "github.com/quorumlock/redsync"
	quorumlockredis "github.com/quorumlock/redsync/redis"
	quorumlockgoredis "github.com/quorumlock/redsync/redis/goredis"
)

// Scenario 10 measures leader election across processes with default
// options: three candidate processes campaign on one name, the leader
// process is killed (SIGKILL, so its lock stays on the servers until it
// expires), and the time until the next candidate's Campaign returns is
// the failover. The new leader then resigns, and the time until the third
// candidate leads is the hand-over. The lock's remaining time to live on
// the servers when the leader was killed is read too: no candidate can
// lead before it runs out (and no library could: the servers cannot tell
// a dead holder from a slow one), so the failover less that time is what
// the library adds.

// failoverCandidates is the number of candidate processes of a round.
const failoverCandidates = 3

// failoverTimeout bounds one round: the default expiry (8 s) twice over,
// and the starting of the processes.
const failoverTimeout = 40 * time.Second

// electLine is what a candidate process writes when it leads or when it
// resigned (Unix nanoseconds, wall clock: every process is on one host).
type electLine struct {
	Leading  int64  `json:"leading,omitempty"`
	Term     uint64 `json:"term,omitempty"`
	Resigned int64  `json:"resigned,omitempty"` // when Resign was called
	Err      string `json:"err,omitempty"`
}

// electInWorker is a candidate process's life (a job with Elect set): it
// campaigns once the parent sends the start line, writes a line when it
// leads, and resigns when the parent sends a second line. Standard input
// closing ends it.
func electInWorker(ctx context.Context, lines *bufio.Scanner, enc *json.Encoder, clients []*redis.Client, job workerJob) error {
	pools := make([]quorumlockredis.Pool, len(clients))
	for i, c := range clients {
		pools[i] = quorumlockgoredis.NewPool(c)
	}
	rs := quorumlock.New(pools...)
	var opts []quorumlock.Option
	if job.Expiry > 0 {
		opts = append(opts, quorumlock.WithExpiry(job.Expiry))
	}
	e := rs.NewElection(job.Name, opts...)
	if err := enc.Encode(workerReady{Ready: true}); err != nil {
		return err
	}
	var start workerStart
	if err := readLine(lines, &start); err != nil {
		return fmt.Errorf("reading the start: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Standard input closing (the parent is done with this round) ends
	// the Campaign.
	resign := make(chan struct{})
	go func() {
		defer cancel()
		if lines.Scan() {
			close(resign)
			for lines.Scan() {
			}
		}
	}()
	if err := e.Campaign(ctx, fmt.Sprintf("proc-%d", job.Proc)); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return enc.Encode(electLine{Err: err.Error()})
	}
	if err := enc.Encode(electLine{Leading: time.Now().UnixNano(), Term: e.Term()}); err != nil {
		return err
	}
	select {
	case <-resign:
		called := time.Now().UnixNano()
		err := e.Resign(context.Background())
		if err != nil {
			return enc.Encode(electLine{Err: err.Error()})
		}
		if err := enc.Encode(electLine{Resigned: called}); err != nil {
			return err
		}
		<-ctx.Done()
	case <-ctx.Done():
		_ = e.Resign(context.Background())
	}
	return nil
}

// candidate is one candidate process of a failover round.
type candidate struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan electLine
	errs  chan error
	// back holds a line (or error) that a waiter read for nobody (see
	// firstLeader): the next read takes it first. It is never closed.
	back chan electRead
}

// electRead is what one read of a candidate's lines gave.
type electRead struct {
	line electLine
	err  error
}

// startCandidate starts exe as candidate proc of the election name and
// waits until it is ready.
func startCandidate(ctx context.Context, exe string, proc int, addrs []string, name string, expiry time.Duration) (*candidate, error) {
	w, err := startWorker(ctx, exe, workerJob{Proc: proc, Library: libQuorumlock, Addrs: addrs, Name: name, Elect: true, Expiry: expiry})
	if err != nil {
		return nil, err
	}
	var ready workerReady
	if err := w.read(&ready); err != nil || !ready.Ready {
		_ = w.stdin.Close()
		_ = w.cmd.Process.Kill()
		_ = w.cmd.Wait()
		return nil, w.failed(proc, "getting ready", err, ready.Err)
	}
	c := &candidate{cmd: w.cmd, stdin: w.stdin, lines: make(chan electLine, 4), errs: make(chan error, 1), back: make(chan electRead, 1)}
	go func() {
		for {
			var l electLine
			if err := w.read(&l); err != nil {
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					c.errs <- w.failed(proc, "campaigning", err, "")
				}
				close(c.lines)
				return
			}
			c.lines <- l
		}
	}()
	return c, nil
}

// send writes one line to the candidate.
func (c *candidate) send(v any) error { return json.NewEncoder(c.stdin).Encode(v) }

// stop ends the candidate: standard input closed, and killed if it has
// not exited a second later.
func (c *candidate) stop() {
	_ = c.stdin.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// failoverRound is what one round measured.
type failoverRound struct {
	failover  time.Duration // leader killed → next leader's Campaign returned
	remaining time.Duration // the lock's largest remaining PTTL on a quorum when it was killed
	handover  time.Duration // Resign called → next leader's Campaign returned
	terms     [3]uint64
}

// failover runs one round on the first n servers.
func (e *env) failover(ctx context.Context, n, round int) (failoverRound, error) {
	var res failoverRound
	exe, err := os.Executable()
	if err != nil {
		return res, err
	}
	ctx, cancel := context.WithTimeout(ctx, failoverTimeout)
	defer cancel()
	name := fmt.Sprintf("bench:failover:N%d:%d", n, round)
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = e.fleet.servers[i].Addr()
	}
	var cands []*candidate
	defer func() {
		for _, c := range cands {
			c.stop()
		}
	}()
	for p := range failoverCandidates {
		c, err := startCandidate(ctx, exe, p, addrs, name, e.cfg.FailoverExpiry)
		if err != nil {
			return res, err
		}
		cands = append(cands, c)
	}
	// Candidate 0 campaigns first and leads; the others campaign once it
	// does, and queue behind it.
	next := func(c *candidate) (electLine, error) {
		select {
		case r := <-c.back:
			return r.line, r.err
		default:
		}
		select {
		case r := <-c.back:
			return r.line, r.err
		case l, ok := <-c.lines:
			switch {
			case !ok:
				select {
				case err := <-c.errs:
					return l, err
				default:
					return l, errors.New("a candidate exited")
				}
			case l.Err != "":
				return l, errors.New(l.Err)
			}
			return l, nil
		case <-ctx.Done():
			return electLine{}, fmt.Errorf("waiting for a leader: %w", ctx.Err())
		}
	}
	now := workerStart{Start: time.Now().UnixNano()}
	if err := cands[0].send(now); err != nil {
		return res, err
	}
	first, err := next(cands[0])
	if err != nil {
		return res, err
	}
	res.terms[0] = first.Term
	for _, c := range cands[1:] {
		if err := c.send(now); err != nil {
			return res, err
		}
	}
	// Let the other two queue, and the leader's KeepAlive run a while, so
	// that the kill comes at any point of its extension cycle.
	expiry := e.cfg.FailoverExpiry
	if expiry == 0 {
		expiry = 8 * time.Second
	}
	time.Sleep(expiry/8 + time.Duration(round%4)*expiry/11)

	if err := cands[0].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return res, err
	}
	killed := time.Now()
	res.remaining = e.remainingTTL(ctx, name, n)
	// The next leader is whichever of 1 and 2 wins (1 campaigned first,
	// but both sent their Campaign at about the same moment).
	winner, second, err := e.firstLeader(cands[1], cands[2], next)
	if err != nil {
		return res, err
	}
	res.failover = time.Unix(0, winner.line.Leading).Sub(killed)
	res.terms[1] = winner.line.Term
	if err := winner.c.send(struct{}{}); err != nil {
		return res, err
	}
	resigned, err := next(winner.c)
	if err != nil {
		return res, err
	}
	third, err := next(second)
	if err != nil {
		return res, err
	}
	res.handover = time.Unix(0, third.Leading).Sub(time.Unix(0, resigned.Resigned))
	res.terms[2] = third.Term
	if !(res.terms[0] < res.terms[1] && res.terms[1] < res.terms[2]) {
		return res, fmt.Errorf("terms out of order: %v", res.terms)
	}
	return res, nil
}

// led is a candidate that leads, with the line that said so.
type led struct {
	c    *candidate
	line electLine
}

// firstLeader waits until a or b leads and returns it, with the other.
func (e *env) firstLeader(a, b *candidate, next func(*candidate) (electLine, error)) (led, *candidate, error) {
	type result struct {
		c    *candidate
		line electLine
		err  error
	}
	got := make(chan result, 2)
	wait := func(c *candidate) {
		l, err := next(c)
		got <- result{c, l, err}
	}
	go wait(a)
	go wait(b)
	r := <-got
	if r.err != nil {
		return led{}, nil, r.err
	}
	other := b
	if r.c == b {
		other = a
	}
	// The other candidate's waiter is still waiting for its line; it
	// hands it (or its error) to the next read through back, which is
	// never closed.
	go func() {
		o := <-got
		other.back <- electRead{o.line, o.err}
	}()
	return led{r.c, r.line}, other, nil
}

// remainingTTL returns the time the killed leader's lock still lives on a
// quorum of the first n servers: the quorum-th largest PTTL.
func (e *env) remainingTTL(ctx context.Context, name string, n int) time.Duration {
	var ttls []time.Duration
	for _, c := range e.fleet.inspect[:n] {
		ttl, err := c.PTTL(ctx, name).Result()
		if err != nil || ttl < 0 {
			ttl = 0
		}
		ttls = append(ttls, ttl)
	}
	slices.Sort(ttls)
	slices.Reverse(ttls)
	return ttls[n/2]
}

// runFailover is scenario 10.
func runFailover(ctx context.Context, e *env) ([]section, error) {
	options := "default options"
	if e.cfg.FailoverExpiry > 0 {
		options = "WithExpiry(" + e.cfg.FailoverExpiry.String() + ")"
	}
	s := section{
		title:  "10. Leader failover across processes (quorumlock Election, " + options + ")",
		about:  fmt.Sprintf("%d candidate processes campaign on one name (go-redis v9 clients, %s; the default expiry is 8 s; leadership kept alive by KeepAlive); the leader process is killed with SIGKILL at a varying point of its extension cycle, and *failover* is the time from the kill to the next candidate's Campaign returning. *remaining* is the killed leader's lock's time to live on a quorum of servers at the kill: the servers cannot tell a dead holder from a slow one, so no candidate can lead before it runs out, and *failover − remaining* is what the library adds. The new leader then resigns: *hand-over* is from the Resign call to the third candidate leading. Medians over %d rounds per N (range in parentheses). redsync has no election.", failoverCandidates, options, e.cfg.Rounds),
		header: []string{"N", "failover", "remaining", "failover − remaining", "hand-over", "terms in order"},
	}
	for _, n := range e.cfg.Servers {
		var fo, rem, added, ho durSeries
		for r := range e.cfg.Rounds {
			e.progress("failover N=%d round %d", n, r+1)
			res, err := e.failover(ctx, n, r)
			if err != nil {
				return nil, fmt.Errorf("on %d servers, round %d: %w", n, r+1, err)
			}
			fo = append(fo, res.failover)
			rem = append(rem, res.remaining)
			added = append(added, res.failover-res.remaining)
			ho = append(ho, res.handover)
		}
		s.addRow(n, fmtDurRange(fo), fmtDurRange(rem), fmtDurRange(added), fmtDurRange(ho), "yes")
	}
	s.notes = append(s.notes, "A shorter failover needs a shorter expiry (WithExpiry): the lease is the bound, as in etcd (a session's TTL) and Curator (ZooKeeper's session timeout).")
	return []section{s}, nil
}
