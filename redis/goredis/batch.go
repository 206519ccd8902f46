package goredis

import (
	"context"
	"sync"

	"github.com/redis/go-redis/v9"
)

// A batcher sends the commands of one Pool, at most maxInFlight batches at
// a time: a command issued while that many are on their way waits for one
// of them to return and then goes out with every other command that queued
// meanwhile, as one pipeline. Under load many lock operations share one
// write, one read and one server wake-up instead of paying each their own;
// a command issued while fewer are on their way goes out at once, as it
// would without the batcher, so that one slow command (a server loading
// its data answers only after go-redis's retries, say) does not hold up
// the next.
//
// No goroutine of its own runs the batches: the goroutine whose command
// finds a free place sends it, and when a batch returns, its sender passes
// its place to the first command that queued, which sends the next batch.
type batcher struct {
	client redis.UniversalClient

	mu      sync.Mutex   // guards busy, queue and every queued call's state
	busy    int          // batches on their way, or about to be sent
	queue   []*batchCall // the calls for the next batch, in arrival order
	scratch []*batchCall // the previous queue's array, for reuse
}

// A batchCall is a command that waits in the queue for its batch.
// maxInFlight is how many batches of one Pool may be on their way at once.
const maxInFlight = 2

type batchCall struct {
	ctx   context.Context
	cmd   redis.Cmder
	state callState
	// done receives one value: when the call's batch returned (state
	// sent), or when the call is to send the next batch (state leading).
	done chan struct{}
}

type callState int

const (
	queued    callState = iota // waiting for its batch
	leading                    // to send the next batch itself
	sent                       // on its way, or back, in a batch
	abandoned                  // its context ended before its batch left
)

// process sends cmd and waits for its reply. It returns an error without
// touching cmd only when ctx ended while the command waited for a batch:
// the command was then either never sent or is still on its way, and its
// reply, whenever it comes, is dropped.
func (b *batcher) process(ctx context.Context, cmd redis.Cmder) error {
	b.mu.Lock()
	if b.busy < maxInFlight {
		b.busy++
		b.mu.Unlock()
		_ = b.client.Process(ctx, cmd)
		b.passOn()
		return nil
	}
	call := &batchCall{ctx: ctx, cmd: cmd, done: make(chan struct{}, 1)}
	b.queue = append(b.queue, call)
	b.mu.Unlock()

	select {
	case <-call.done:
	case <-ctx.Done():
		b.mu.Lock()
		state := call.state
		if state == queued {
			call.state = abandoned
		}
		b.mu.Unlock()
		if state != leading {
			return ctx.Err()
		}
		// Chosen to send the next batch as the context ended: send it
		// anyway, for the others in it.
	}
	b.mu.Lock()
	state := call.state
	b.mu.Unlock()
	if state == leading {
		b.sendQueued(call)
		b.passOn()
	}
	return nil
}

// sendQueued sends the calls queued so far, leader among them, as one
// batch, and tells each that its reply is in.
func (b *batcher) sendQueued(leader *batchCall) {
	b.mu.Lock()
	batch := b.queue
	b.queue, b.scratch = b.scratch[:0], nil
	// The leader may have left the queue already: another sender that was
	// given a place at the same time took the queue with it still in, as a
	// leader, which it leaves out.
	live := batch[:0]
	for _, c := range batch {
		if c.state == queued {
			c.state = sent
			live = append(live, c)
		}
	}
	leader.state = sent
	live = append(live, leader)
	b.mu.Unlock()

	b.send(live, leader)
	for _, c := range live {
		if c != leader {
			c.done <- struct{}{}
		}
	}
	for i := range batch {
		batch[i] = nil
	}
	b.mu.Lock()
	if b.scratch == nil {
		b.scratch = batch[:0]
	}
	b.mu.Unlock()
}

// send runs calls as one pipeline, under the leader's context unless it
// ended (then under the first one that did not).
func (b *batcher) send(calls []*batchCall, leader *batchCall) {
	ctx := leader.ctx
	for _, c := range calls {
		if ctx.Err() == nil {
			break
		}
		ctx = c.ctx
	}
	if len(calls) == 1 {
		_ = b.client.Process(ctx, calls[0].cmd)
		return
	}
	pipe := b.client.Pipeline()
	for _, c := range calls {
		_ = pipe.Process(ctx, c.cmd)
	}
	_, err := pipe.Exec(ctx)
	if err == nil {
		return
	}
	for _, c := range calls {
		if c.cmd.Err() == err {
			return // a command's own error: every command has its reply
		}
	}
	// The pipeline failed as a whole, for instance because the server
	// refused the new connection's handshake with an error of its own:
	// go-redis then leaves the commands without reply and without error,
	// which would read as nil replies. None of them ran (on a cluster
	// client, the commands for other nodes may have: those that did not
	// fail are then reported failed too, which a lock takes as "may have
	// run" and cleans up after).
	for _, c := range calls {
		if c.cmd.Err() == nil {
			c.cmd.SetErr(err)
		}
	}
}

// passOn ends the sender's turn: the first call still queued is to send
// the next batch in its place; with none, the place is free.
func (b *batcher) passOn() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.queue {
		if c.state == queued {
			c.state = leading
			c.done <- struct{}{}
			return
		}
	}
	for i := range b.queue {
		b.queue[i] = nil // abandoned calls only
	}
	b.queue = b.queue[:0]
	b.busy--
}
