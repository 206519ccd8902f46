// Command leader shows leader election: three processes campaign for
// "example:leader", the first leads, and the others wait their turn. The
// leader is then killed (its connections cut, as a crash or a long pause
// would): it learns it lost before its lease ends, the next candidate
// takes over once the lease has run out, and the killed leader's late
// write, sent with its old term, is refused by the storage, which
// remembers the highest term it accepted. The second leader resigns and
// the third takes over at once. Each term is printed, with the time the
// election spent without a leader.
//
// With no flags it starts three embedded miniredis servers (their clocks
// moved on in real time, so that keys expire):
//
//	go run ./examples/leader
//
// On real servers (the fencing counter and the leader record stay there
// for 24 hours after the run):
//
//	go run ./examples/leader -addrs 127.0.0.1:6379,127.0.0.1:6380,127.0.0.1:6381
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/quorumlock/redsync"
	redsyncredis "github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis"
)

const electionName = "example:leader"

func main() {
	addrs := flag.String("addrs", "", "comma-separated host:port of the Redis servers (default: three embedded miniredis servers)")
	expiry := flag.Duration("expiry", time.Second, "the leader's lease: the longest time without a leader after a crash")
	flag.Parse()

	var list []string
	if *addrs != "" {
		list = strings.Split(*addrs, ",")
	}
	if err := run(list, *expiry, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "leader:", err)
		os.Exit(1)
	}
}

// process stands for one program of the fleet: its own connections and
// its own Redsync, as separate processes would have.
type process struct {
	name    string
	clients []*redis.Client
	rs      *redsync.Redsync
	e       *redsync.Election
}

func newProcess(name string, addrs []string, expiry time.Duration) *process {
	p := &process{name: name}
	var pools []redsyncredis.Pool
	for _, addr := range addrs {
		client := redis.NewClient(&redis.Options{Addr: addr})
		p.clients = append(p.clients, client)
		pools = append(pools, goredis.NewPool(client))
	}
	p.rs = redsync.New(pools...)
	p.e = p.rs.NewElection(electionName, redsync.WithExpiry(expiry))
	return p
}

// kill cuts the process's connections: from the servers' side it is
// gone, and it extends nothing any more.
func (p *process) kill() {
	for _, c := range p.clients {
		_ = c.Close()
	}
}

// stop ends a process that was not killed.
func (p *process) stop() {
	p.rs.Wait()
	p.kill()
}

// run plays the election on the servers at addrs (three embedded
// miniredis servers when addrs is empty) and writes what happens to out.
// It fails if the storage accepts the killed leader's late write.
func run(addrs []string, expiry time.Duration, out io.Writer) error {
	if len(addrs) == 0 {
		var embedded []*miniredis.Miniredis
		for range 3 {
			server, err := miniredis.Run()
			if err != nil {
				return err
			}
			defer server.Close()
			embedded = append(embedded, server)
			addrs = append(addrs, server.Addr())
		}
		defer runClock(embedded)()
	}
	ctx := context.Background()
	store := &termStore{}
	p1, p2, p3 := newProcess("p1", addrs, expiry), newProcess("p2", addrs, expiry), newProcess("p3", addrs, expiry)
	defer p2.stop()
	defer p3.stop()

	if err := p1.e.Campaign(ctx, p1.name); err != nil {
		return fmt.Errorf("p1: campaign: %w", err)
	}
	fmt.Fprintf(out, "p1 leads, term %d\n", p1.e.Term())
	if err := store.Write(p1.e.Term(), "config by p1"); err != nil {
		return fmt.Errorf("p1: write: %w", err)
	}
	fmt.Fprintln(out, "p1: write accepted")

	// p2, then p3, campaign: they wait in that order.
	won := map[string]chan time.Time{"p2": make(chan time.Time, 1), "p3": make(chan time.Time, 1)}
	var campaigns sync.WaitGroup
	var campaignErr error
	var mu sync.Mutex // guards campaignErr
	for _, p := range []*process{p2, p3} {
		campaigns.Go(func() {
			if err := p.e.Campaign(ctx, p.name); err != nil {
				mu.Lock()
				campaignErr = errors.Join(campaignErr, fmt.Errorf("%s: campaign: %w", p.name, err))
				mu.Unlock()
				close(won[p.name])
				return
			}
			won[p.name] <- time.Now()
		})
		time.Sleep(20 * time.Millisecond)
	}

	p1Until := p1.e.Context()
	fmt.Fprintln(out, "p1 is killed")
	killedAt := time.Now()
	p1.kill()
	<-p1.e.Done()
	fmt.Fprintf(out, "p1 learns it lost: %v\n", errors.Is(context.Cause(p1Until), redsync.ErrLockLost))

	at, ok := <-won["p2"]
	if !ok {
		campaigns.Wait()
		return campaignErr
	}
	fmt.Fprintf(out, "p2 leads, term %d, after %v without a leader\n", p2.e.Term(), at.Sub(killedAt).Round(10*time.Millisecond))
	if err := store.Write(p2.e.Term(), "config by p2"); err != nil {
		return fmt.Errorf("p2: write: %w", err)
	}
	fmt.Fprintln(out, "p2: write accepted")

	// p1 was paused, not gone: it wakes up and sends the write it had
	// prepared as leader, with its term.
	err := store.Write(p1.e.Term(), "late config by p1")
	switch {
	case err == nil:
		return errors.New("the storage accepted the killed leader's late write")
	case !errors.Is(err, errStaleTerm):
		return fmt.Errorf("p1: late write: %w", err)
	}
	fmt.Fprintf(out, "p1: late write refused: %v\n", err)

	resignedAt := time.Now()
	if err := p2.e.Resign(ctx); err != nil {
		return fmt.Errorf("p2: resign: %w", err)
	}
	at, ok = <-won["p3"]
	if !ok {
		campaigns.Wait()
		return campaignErr
	}
	campaigns.Wait()
	fmt.Fprintf(out, "p3 leads, term %d, after %v without a leader (p2 resigned)\n", p3.e.Term(), at.Sub(resignedAt).Round(time.Millisecond))
	if err := p3.e.Resign(ctx); err != nil {
		return fmt.Errorf("p3: resign: %w", err)
	}
	fmt.Fprintf(out, "storage: %q\n", store.Read())
	return nil
}

// runClock moves the embedded servers' clocks on in real time, so that
// their keys expire (miniredis expires keys only when told time passed),
// until the function it returns is called.
func runClock(servers []*miniredis.Miniredis) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		const tick = 5 * time.Millisecond
		last := time.Now()
		ticker := time.NewTicker(tick)
		defer ticker.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-ticker.C:
				for _, s := range servers {
					s.FastForward(now.Sub(last))
				}
				last = now
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// errStaleTerm is wrapped by the error of a write whose term is below one
// the storage already accepted.
var errStaleTerm = errors.New("stale term")

// termStore stands for what the leader writes to: a database, in a real
// system. It checks the term itself, in the same step as the write.
type termStore struct {
	mu   sync.Mutex // guards term and text
	term uint64     // the highest term accepted
	text string
}

// Write stores text if term is at least the highest term accepted so
// far, and otherwise returns an error wrapping errStaleTerm.
func (s *termStore) Write(term uint64, text string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if term < s.term {
		return fmt.Errorf("term %d is below %d, which the storage already accepted: %w", term, s.term, errStaleTerm)
	}
	s.term, s.text = term, text
	return nil
}

// Read returns what was written last.
func (s *termStore) Read() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.text
}
