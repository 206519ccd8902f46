package redsync_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumlock/redsync"
)

func TestObserverSeesAnRWMutexsOperations(t *testing.T) {
	c := newObservedCluster(t, 3)
	rec := &recorder{}
	rw := c.rs.NewRWMutex("observed:rw", redsync.WithObserver(rec), redsync.WithExpiry(2*time.Second), redsync.WithFencing(true), roomy)
	step := func(what string, op func() error) {
		t.Helper()
		require.NoError(t, op(), what)
		c.rs.Wait() // the slowest server's reply is in
	}
	ignore := func(f func() (bool, error)) func() error {
		return func() error { _, err := f(); return err }
	}
	step("RLock", rw.RLock)
	step("RExtend", ignore(rw.RExtend))
	step("RUnlock", ignore(rw.RUnlock))
	step("Lock", rw.Lock)
	step("Extend", ignore(rw.Extend))
	step("Unlock", ignore(rw.Unlock))

	assert.Equal(t, []string{
		"rlock start",
		"rlock nodes: 0=ok 1=ok 2=ok",
		"lock attempt 1 try 1: ok",
		"rlock done: ok",
		"rextend start",
		"rextend nodes: 0=ok 1=ok 2=ok",
		"rextend done: ok",
		"runlock start",
		"runlock nodes: 0=ok 1=ok 2=ok",
		"runlock done: ok",
		"rwlock start",
		"rwlock nodes: 0=ok 1=ok 2=ok",
		"lock attempt 1 try 1: ok",
		"rwlock done: ok",
		"rwextend start",
		"rwextend nodes: 0=ok 1=ok 2=ok",
		"rwextend done: ok",
		"rwunlock start",
		"rwunlock nodes: 0=ok 1=ok 2=ok",
		"rwunlock done: ok",
	}, lines(rec, true))
	for _, e := range rec.Events() {
		require.NotZero(t, e.Op, "an event without the context Start returned: %+v", e)
		assert.Equal(t, "observed:rw", e.Name())
	}
	for _, d := range rec.Dones() {
		switch d.Op {
		case redsync.OpRLock, redsync.OpRWLock:
			assert.Equal(t, 1, d.Attempts)
			assert.Positive(t, d.Validity)
		case redsync.OpRUnlock, redsync.OpRWUnlock:
			assert.Positive(t, d.Held)
		default:
			assert.Positive(t, d.Validity)
		}
		if d.Op == redsync.OpRWLock {
			assert.Equal(t, rw.Token(), d.Token, "the write's fencing token")
		}
	}
	starts := rec.Starts(func(s redsync.StartEvent) bool { return s.Op == redsync.OpRLock })
	require.Len(t, starts, 1)
	assert.Equal(t, 32, starts[0].Tries)
}

func TestObserverSeesAnElectionsOperations(t *testing.T) {
	c := newObservedCluster(t, 3)
	rec := &recorder{}
	e := c.rs.NewElection("observed:election", redsync.WithObserver(rec), redsync.WithExpiry(30*time.Second), roomy)
	ctx := context.Background()
	require.NoError(t, e.Campaign(ctx, "a"))
	c.rs.Wait()
	require.NoError(t, e.Proclaim(ctx, "b"))
	c.rs.Wait()
	require.NoError(t, e.Resign(ctx))
	c.rs.Wait()

	assert.Equal(t, []string{
		"campaign start",
		"lock start tries=2147483647",
		"lock attempt 1 nodes: 0=ok 1=ok 2=ok",
		"lock attempt 1 try 1: ok",
		"lock done: ok tries=1 attempts=1",
		"proclaim nodes: 0=ok 1=ok 2=ok",
		"campaign done: ok",
		"proclaim start",
		"proclaim nodes: 0=ok 1=ok 2=ok",
		"proclaim done: ok",
		"resign start",
		"unlock start",
		"unlock nodes: 0=ok 1=ok 2=ok",
		"unlock done: ok",
		"resign done: ok",
	}, lines(rec, true))
	campaigns := rec.Dones(func(d redsync.DoneEvent) bool { return d.Op == redsync.OpCampaign })
	require.Len(t, campaigns, 1)
	assert.Equal(t, e.Term(), campaigns[0].Token, "the term won")
	assert.Positive(t, campaigns[0].Validity)
}
