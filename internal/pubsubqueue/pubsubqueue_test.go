package pubsubqueue

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumlock/redsync/redis"
)

var errClosed = errors.New("test: closed")

// fakeConn records the batches sent on it. Do blocks until release is
// closed or ctx is done, when release is set, and then returns err.
type fakeConn struct {
	batches chan []Command
	release chan struct{}
	err     error

	mu       sync.Mutex
	doing    bool // inside Do
	closes   int
	closedIn bool // Close was called while Do was running
}

func newFakeConn() *fakeConn {
	return &fakeConn{batches: make(chan []Command, 16)}
}

func (c *fakeConn) Do(ctx context.Context, cmds []Command) error {
	c.mu.Lock()
	c.doing = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.doing = false
		c.mu.Unlock()
	}()
	c.batches <- cmds
	if c.release != nil {
		select {
		case <-c.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return c.err
}

func (c *fakeConn) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closes++
	c.closedIn = c.closedIn || c.doing
}

func (c *fakeConn) next(t *testing.T) []Command {
	t.Helper()
	select {
	case b := <-c.batches:
		return b
	case <-time.After(5 * time.Second):
		t.Fatal("no batch sent")
		return nil
	}
}

func receive(t *testing.T, q *Queue) (redis.Event, error) {
	t.Helper()
	type result struct {
		ev  redis.Event
		err error
	}
	done := make(chan result, 1)
	go func() {
		ev, err := q.Receive()
		done <- result{ev, err}
	}()
	select {
	case r := <-done:
		return r.ev, r.err
	case <-time.After(5 * time.Second):
		t.Fatal("Receive did not return")
		return redis.Event{}, nil
	}
}

func start(conn Conn) (*Queue, chan error) {
	q := New(errClosed)
	hooksDone := make(chan error, 1)
	q.Start(conn, hooksDone)
	return q, hooksDone
}

func TestSendsInOrderAndReceivesInOrder(t *testing.T) {
	conn := newFakeConn()
	q, _ := start(conn)
	defer q.Close()
	ctx := context.Background()

	if err := q.Subscribe(ctx); err != nil {
		t.Fatal(err)
	}
	if err := q.Subscribe(ctx, "a", "b"); err != nil {
		t.Fatal(err)
	}
	got := conn.next(t)
	if err := q.Unsubscribe(ctx); err != nil {
		t.Fatal(err)
	}
	got = append(got, conn.next(t)...)
	want := []Command{{Channels: []string{"a", "b"}}, {Unsubscribe: true}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("sent %+v, want %+v", got, want)
	}

	q.Confirm("subscribe", "a", 1)
	q.Confirm("psubscribe", "p*", 2) // ignored
	q.Message("a", "")
	q.Confirm("unsubscribe", "a", 0)
	for _, want := range []redis.Event{
		{Kind: redis.Subscribed, Channel: "a", Count: 1},
		{Kind: redis.Message, Channel: "a"},
		{Kind: redis.Unsubscribed, Channel: "a", Count: 0},
	} {
		ev, err := receive(t, q)
		if err != nil || ev != want {
			t.Fatalf("Receive = %+v, %v; want %+v", ev, err, want)
		}
	}
}

func TestSendFailureAfterEvents(t *testing.T) {
	conn := newFakeConn()
	conn.err = errors.New("send failed")
	q, _ := start(conn)
	defer q.Close()

	q.Message("a", "")
	if err := q.Subscribe(context.Background(), "b"); err != nil {
		t.Fatal(err)
	}
	conn.next(t)
	if ev, err := receive(t, q); err != nil || ev.Channel != "a" {
		t.Fatalf("Receive = %+v, %v; want the message first", ev, err)
	}
	if _, err := receive(t, q); err != conn.err {
		t.Fatalf("Receive error = %v, want %v", err, conn.err)
	}
	if _, err := receive(t, q); err != conn.err {
		t.Fatalf("second Receive error = %v, want %v", err, conn.err)
	}
}

func TestHooksDone(t *testing.T) {
	connErr := errors.New("connection reset")
	for _, tc := range []struct {
		name string
		done func(chan error)
		want error
	}{
		{"error", func(ch chan error) { ch <- connErr; close(ch) }, connErr},
		{"nil", func(ch chan error) { ch <- nil; close(ch) }, errClosed},
		{"closed", func(ch chan error) { close(ch) }, errClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, hooksDone := start(newFakeConn())
			defer q.Close()
			q.Message("a", "")
			tc.done(hooksDone)
			if ev, err := receive(t, q); err != nil || ev.Channel != "a" {
				t.Fatalf("Receive = %+v, %v; want the message first", ev, err)
			}
			if _, err := receive(t, q); err != tc.want {
				t.Fatalf("Receive error = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestCloseStopsSenderBeforeClosingConn(t *testing.T) {
	conn := newFakeConn()
	conn.release = make(chan struct{}) // Do blocks until Close cancels it
	q, _ := start(conn)
	if err := q.Subscribe(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	conn.next(t)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	conn.mu.Lock()
	closes, closedIn := conn.closes, conn.closedIn
	conn.mu.Unlock()
	if closes != 1 || closedIn {
		t.Fatalf("conn closed %d times, during Do: %v; want once, after", closes, closedIn)
	}
	q.mu.Lock()
	err := q.err
	q.mu.Unlock()
	if err != nil {
		t.Fatalf("the cancelled send was reported: %v", err)
	}
	if err := q.Subscribe(context.Background(), "b"); err != errClosed {
		t.Fatalf("Subscribe after Close = %v, want %v", err, errClosed)
	}
}

func TestDoneContext(t *testing.T) {
	q, _ := start(newFakeConn())
	defer q.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := q.Subscribe(ctx, "a"); err != context.Canceled {
		t.Fatalf("Subscribe = %v, want %v", err, context.Canceled)
	}
	if err := q.Unsubscribe(ctx); err != context.Canceled {
		t.Fatalf("Unsubscribe = %v, want %v", err, context.Canceled)
	}
}

// panickingConn panics in Do.
type panickingConn struct{ *fakeConn }

func (c panickingConn) Do(context.Context, []Command) error { panic("client bug") }

func TestAClientPanicInSendFailsTheSubscription(t *testing.T) {
	q, _ := start(panickingConn{newFakeConn()})
	defer q.Close()
	if err := q.Subscribe(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	_, err := receive(t, q)
	if err == nil || !strings.Contains(err.Error(), "client bug") {
		t.Fatalf("Receive error = %v, want one with the panic value", err)
	}
}
