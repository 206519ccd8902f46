// Command fencing shows what fencing tokens are for: a lock holder that
// pauses past its lease, and wakes up to write after the next holder did,
// is stopped by the storage, not by the lock.
//
// Holder A locks with WithFencing(true) and gets a token, then stops (a
// long GC pause, say) until its lease has run out. Holder B locks, gets a
// larger token and writes a document. A wakes up, unaware that its lock
// lapsed, and writes with its old token: the document store, which
// remembers the highest token it accepted, rejects the write. Without the
// token, A would silently overwrite B's work.
//
// With no flags it starts three embedded miniredis servers:
//
//	go run ./examples/fencing
//
// On real servers (the fencing counter, "{example:fencing}:redsync:fence",
// stays there for 24 hours after the run):
//
//	go run ./examples/fencing -addrs 127.0.0.1:6379,127.0.0.1:6380,127.0.0.1:6381
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

const (
	lockName   = "example:fencing"
	documentID = "report"
)

func main() {
	addrs := flag.String("addrs", "", "comma-separated host:port of the Redis servers (default: three embedded miniredis servers)")
	expiry := flag.Duration("expiry", time.Second, "the lock's expiry: how long holder A pauses, at least")
	flag.Parse()

	var list []string
	if *addrs != "" {
		list = strings.Split(*addrs, ",")
	}
	if err := run(list, *expiry, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "fencing:", err)
		os.Exit(1)
	}
}

// run plays the paused holder's story on the servers at addrs (three
// embedded miniredis servers when addrs is empty) and writes what happens
// to out. It fails if the store accepts the stale write.
func run(addrs []string, expiry time.Duration, out io.Writer) error {
	var embedded []*miniredis.Miniredis
	if len(addrs) == 0 {
		for i := 0; i < 3; i++ {
			server, err := miniredis.Run()
			if err != nil {
				return err
			}
			defer server.Close()
			embedded = append(embedded, server)
			addrs = append(addrs, server.Addr())
		}
	}
	var pools []redsyncredis.Pool
	for _, addr := range addrs {
		client := redis.NewClient(&redis.Options{Addr: addr})
		defer client.Close()
		pools = append(pools, goredis.NewPool(client))
	}
	rs := redsync.New(pools...)
	defer rs.Wait() // before the clients close

	ctx := context.Background()
	store := newDocumentStore()
	options := []redsync.Option{redsync.WithFencing(true), redsync.WithExpiry(expiry)}

	a := rs.NewMutex(lockName, options...)
	if err := a.LockContext(ctx); err != nil {
		return fmt.Errorf("holder A: lock: %w", err)
	}
	fmt.Fprintf(out, "A: locked with token %d, valid for %v\n", a.Token(), time.Until(a.Until()).Round(time.Millisecond))

	fmt.Fprintln(out, "A: pauses past the end of its lease")
	pausePast(a.Until(), expiry, embedded)

	b := rs.NewMutex(lockName, options...)
	if err := b.LockContext(ctx); err != nil {
		return fmt.Errorf("holder B: lock: %w", err)
	}
	defer b.UnlockContext(ctx)
	if b.Token() <= a.Token() {
		return fmt.Errorf("holder B's token %d is not above A's %d", b.Token(), a.Token())
	}
	fmt.Fprintf(out, "B: locked with token %d (A's + %d)\n", b.Token(), b.Token()-a.Token())
	if err := store.Write(documentID, b.Token(), "written by B"); err != nil {
		return fmt.Errorf("holder B: write: %w", err)
	}
	fmt.Fprintln(out, "B: write accepted")

	// A resumes where it stopped, between Lock and the write, and does not
	// look at Until(): only the token can stop it now.
	fmt.Fprintln(out, "A: wakes up and writes with its token")
	err := store.Write(documentID, a.Token(), "written by A")
	switch {
	case err == nil:
		return errors.New("the store accepted holder A's write after its lock had lapsed")
	case !errors.Is(err, errStaleToken):
		return fmt.Errorf("holder A: write: %w", err)
	}
	fmt.Fprintf(out, "A: write rejected: %v\n", err)

	text, _ := store.Read(documentID)
	fmt.Fprintf(out, "document %q: %q\n", documentID, text)

	// A's Unlock releases nothing: the key holds B's value.
	if ok, err := a.UnlockContext(ctx); !ok && err != nil {
		fmt.Fprintf(out, "A: Unlock released nothing (%s)\n", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return nil
}

// pausePast stands for a holder whose process is stopped (a long GC pause,
// a frozen VM) until its lease has run out: it sleeps past until. The
// embedded servers do not expire keys in real time, so their clocks are
// moved on by the expiry as well; real servers expire the key themselves,
// at most the drift allowance after until, and B's Lock waits for that.
func pausePast(until time.Time, expiry time.Duration, embedded []*miniredis.Miniredis) {
	time.Sleep(time.Until(until) + time.Millisecond)
	for _, server := range embedded {
		server.FastForward(expiry)
	}
}

// errStaleToken is wrapped by the error of a write whose fencing token is
// below one the store already accepted.
var errStaleToken = errors.New("stale fencing token")

// documentStore stands for the storage a lock protects: a database or an
// object store, in a real system. It checks the fencing token itself, in
// the same step as the write, so no client can skip the check or race it.
type documentStore struct {
	mu   sync.Mutex // guards docs
	docs map[string]document
}

type document struct {
	text  string
	token uint64 // the highest token accepted for the document
}

func newDocumentStore() *documentStore {
	return &documentStore{docs: make(map[string]document)}
}

// Write stores text as the document id if token is at least the highest
// token accepted for id so far, and otherwise returns an error wrapping
// errStaleToken. An equal token comes from the same acquisition (tokens
// only grow), so a holder may write more than once.
func (s *documentStore) Write(id string, token uint64, text string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if doc, ok := s.docs[id]; ok && token < doc.token {
		return fmt.Errorf("document %q: token %d is below %d, which the store already accepted: %w", id, token, doc.token, errStaleToken)
	}
	s.docs[id] = document{text: text, token: token}
	return nil
}

// Read returns the document id and whether it exists.
func (s *documentStore) Read(id string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	doc, ok := s.docs[id]
	return doc.text, ok
}
