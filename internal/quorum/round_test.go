package quorum

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumlock/redsync/redis"
)

var errDown = errors.New("server down")

func TestRunCountsEveryServerWhenAllAnswer(t *testing.T) {
	f := newFixture(t, 3)
	for node := range f.gates {
		f.answer(node, answer{ok: node != 1})
	}
	// A quorum of 3 cannot agree: every reply is waited for.
	o := receive(t, f.start(context.Background(), f.round(3), nil))
	assert.Equal(t, 2, o.n)
	assert.NoError(t, o.ctxErr)
	assert.Equal(t, []Reply{{Node: 1, Outcome: Refused}}, o.failed, "a refusal, without error")
}

func TestRunReportsRefusalsAndErrorsInTheOrderCounted(t *testing.T) {
	f := newFixture(t, 3)
	w := newRecorder()
	rd := f.round(2)
	rd.Watch = w
	done := f.start(context.Background(), rd, nil)
	f.answer(2, answer{err: errDown})
	assert.Equal(t, Reply{Node: 2, Outcome: Failed, Err: errDown}, w.next(t).reply)
	f.answer(0, answer{})
	assert.Equal(t, Reply{Node: 0, Outcome: Refused}, w.next(t).reply)
	f.answer(1, answer{ok: true})
	o := receive(t, done)
	assert.Equal(t, 1, o.n)
	assert.Equal(t, []Reply{{Node: 2, Outcome: Failed, Err: errDown}, {Node: 0, Outcome: Refused}}, o.failed)
}

func TestRunWithFailFastReturnsOnceAQuorumCannotAgree(t *testing.T) {
	f := newFixture(t, 3)
	rd := f.round(2)
	rd.FailFast = true
	done := f.start(context.Background(), rd, nil)
	f.answer(0, answer{})
	f.answer(1, answer{err: errDown})
	o := receive(t, done)
	assert.Zero(t, o.n)
	assert.Len(t, o.failed, 2, "server 2 is not waited for")
	f.answer(2, answer{ok: true})
}

func TestRunRecordsTheServersWithoutAReplyAtTheDeadline(t *testing.T) {
	f := newFixture(t, 3)
	w := newRecorder()
	rd := f.round(2)
	rd.Watch = w
	done := f.start(context.Background(), rd, nil)
	f.answer(1, answer{ok: true})
	require.Equal(t, "reply", w.next(t).kind)
	f.awaitArmed(timeout)
	f.clk.Advance(timeout)
	o := receive(t, done)
	assert.Equal(t, 1, o.n)
	require.Len(t, o.failed, 2)
	for i, node := range []int{0, 2} {
		assert.Equal(t, node, o.failed[i].Node)
		assert.Equal(t, NoReply, o.failed[i].Outcome)
		assert.ErrorIs(t, o.failed[i].Err, context.DeadlineExceeded)
		assert.EqualError(t, o.failed[i].Err, "no reply within 80ms: context deadline exceeded")
		e := w.next(t)
		assert.Equal(t, "noReply", e.kind)
		assert.Equal(t, node, e.reply.Node)
		assert.Equal(t, timeout, e.latency)
	}
	f.answer(0, answer{ok: true})
	f.answer(2, answer{err: errDown})
}

func TestALateReplyStillReachesTheOpAndTheWatcher(t *testing.T) {
	f := newFixture(t, 3)
	w := newRecorder()
	rd := f.round(2)
	rd.Watch = w
	done := f.start(context.Background(), rd, nil)
	f.answer(0, answer{ok: true})
	f.answer(1, answer{ok: true})
	receive(t, done) // no linger: at the quorum
	for i := 0; i < 2; i++ {
		<-f.seen
		require.Equal(t, "reply", w.next(t).kind)
	}
	f.answer(2, answer{ok: true})
	seen := <-f.seen
	assert.Equal(t, 2, seen.node)
	assert.NoError(t, seen.ctxErr, "the request's context outlives the round")
	e := w.next(t)
	assert.Equal(t, "late", e.kind)
	assert.Equal(t, Reply{Node: 2, Outcome: OK}, e.reply)
}

func TestRunReturnsWhenTheCallersContextEnds(t *testing.T) {
	f := newFixture(t, 3)
	ctx, cancel := context.WithCancel(context.Background())
	done := f.start(ctx, f.round(2), nil)
	f.answer(0, answer{ok: true})
	cancel()
	o := receive(t, done)
	assert.ErrorIs(t, o.ctxErr, context.Canceled)
	f.answer(1, answer{ok: true})
	f.answer(2, answer{ok: true})
	for i := 0; i < 3; i++ {
		assert.NoError(t, (<-f.seen).ctxErr, "the requests are not cancelled with the caller")
	}
}

func TestRunWithLingerWaitsForTheOtherServersAfterAQuorum(t *testing.T) {
	f := newFixture(t, 3)
	w := newRecorder()
	rd := f.round(2)
	rd.Linger, rd.Watch = true, w
	done := f.start(context.Background(), rd, nil)
	f.answer(0, answer{ok: true})
	f.answer(1, answer{ok: true})
	// No fake time passed: the wait is the shortest.
	f.awaitArmed(minLinger)
	notYet(t, done)
	f.answer(2, answer{ok: true})
	assert.Equal(t, 3, receive(t, done).n, "a reply during the wait counts")

	done = f.start(context.Background(), rd, nil)
	f.answer(0, answer{ok: true})
	f.answer(1, answer{ok: true})
	f.awaitArmed(minLinger)
	f.clk.Advance(minLinger)
	o := receive(t, done)
	assert.Equal(t, 2, o.n)
	assert.Empty(t, o.failed, "the server after the wait is not recorded as failed")
	f.answer(2, answer{ok: true})
}

func TestLingerForIsTheQuorumsTimeBoundedByTheDeadline(t *testing.T) {
	assert.Equal(t, minLinger, lingerFor(0, timeout))
	assert.Equal(t, 5*minLinger, lingerFor(5*minLinger, timeout))
	assert.Equal(t, timeout/8, lingerFor(timeout, timeout))
}

func TestABackloggedServerIsSkippedWhenSkipSaysSo(t *testing.T) {
	f := newFixture(t, 3)
	for i := 0; i < BacklogMin; i++ {
		f.states[1].Sent(f.clk)
	}
	f.clk.Advance(timeout + 1)
	var asked []int
	skip := func(node int) bool { asked = append(asked, node); return true }
	w := newRecorder()
	rd := f.round(2)
	rd.Watch = w
	f.answer(0, answer{ok: true})
	f.answer(2, answer{ok: true})
	o := receive(t, f.start(context.Background(), rd, skip))
	assert.Equal(t, []int{1}, asked, "skip is asked for the backlogged server only")
	assert.Equal(t, 2, o.n)
	assert.Equal(t, []Reply{{Node: 1, Outcome: NotSent}}, o.failed)
	kinds := map[string]int{}
	for i := 0; i < 3; i++ {
		kinds[w.next(t).kind]++
	}
	assert.Equal(t, map[string]int{"reply": 2, "notSent": 1}, kinds)
	for i := 0; i < BacklogMin; i++ {
		f.states[1].Replied(f.clk)
	}
}

func TestAPanicFailsTheServersReply(t *testing.T) {
	f := newFixture(t, 1)
	rd := f.round(1)
	rd.Op = func(context.Context, int, redis.Pool) (bool, error) { panic("boom") }
	o := receive(t, f.start(context.Background(), rd, nil))
	assert.Zero(t, o.n)
	require.Len(t, o.failed, 1)
	assert.Equal(t, panicked{"boom"}, o.failed[0].Err)
}

func TestRunDecidesOnMoreThan64Servers(t *testing.T) {
	const n = 100
	f := newFixture(t, n)
	w := newRecorder()
	rd := f.round(n/2 + 1)
	rd.Watch = w
	done := f.start(context.Background(), rd, nil)
	// Servers 0 to 49 agree, one short of the quorum, 50 to 70 refuse,
	// the others do not answer. Each is counted in turn.
	for node := 0; node <= 70; node++ {
		f.answer(node, answer{ok: node < 50})
		require.Equal(t, "reply", w.next(t).kind)
	}
	f.awaitArmed(timeout)
	f.clk.Advance(timeout)
	o := receive(t, done)
	assert.Equal(t, 50, o.n)
	require.Len(t, o.failed, 21+29)
	for i, r := range o.failed[:21] {
		assert.Equal(t, Reply{Node: 50 + i, Outcome: Refused}, r)
	}
	for i, r := range o.failed[21:] {
		assert.Equal(t, 71+i, r.Node, "no reply from the servers beyond 64 either")
		assert.Equal(t, NoReply, r.Outcome)
	}
	for node := 71; node < n; node++ {
		f.answer(node, answer{ok: true})
	}
}
