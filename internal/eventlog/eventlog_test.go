package eventlog_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumlock/redsync/internal/eventlog"
)

// Events of the shape of redsync's, for a Recorder of this package's own.
type (
	start   struct{ Name string }
	attempt struct {
		Name     string
		Acquired bool
	}
	node struct {
		Name string
		Node int
	}
	done struct{ Name string }
	lost struct{ Name string }
)

type recorder = eventlog.Recorder[start, attempt, node, done, lost]
type event = eventlog.Event[start, attempt, node, done, lost]

func TestEventsCarryTheirOperation(t *testing.T) {
	rec := &recorder{}
	bg := context.Background()
	a := rec.Start(bg, start{"a"})
	b := rec.Start(bg, start{"b"})
	rec.Attempt(a, attempt{"a", true})
	rec.Node(b, node{"b", 2})
	rec.Done(a, done{"a"})
	rec.Lost(bg, lost{"a"})

	ops := []int{}
	for _, e := range rec.Events() {
		ops = append(ops, e.Op)
	}
	assert.Equal(t, []int{1, 2, 1, 2, 1, 0}, ops)
	assert.Equal(t, 2, rec.OpIn(b))
	assert.Zero(t, (&recorder{}).OpIn(b), "another recorder's operation")
	assert.Equal(t, []start{{"a"}, {"b"}}, rec.Starts())
	assert.Equal(t, []node{{"b", 2}}, rec.Nodes())
	assert.Equal(t, []done{{"a"}}, rec.Dones())
	assert.Equal(t, []lost{{"a"}}, rec.Losts())
	assert.Empty(t, rec.Attempts(func(e attempt) bool { return !e.Acquired }))
	assert.Len(t, rec.Named("a"), 4)
	assert.Equal(t, "b", rec.Named("b")[1].Name())
}

func TestKeepDropsTheOtherEvents(t *testing.T) {
	rec := &recorder{Keep: func(e event) bool { return e.Node != nil }}
	ctx := rec.Start(context.Background(), start{"a"})
	rec.Node(ctx, node{"a", 1})
	rec.Done(ctx, done{"a"})
	events := rec.Events()
	require.Len(t, events, 1)
	assert.Equal(t, 1, events[0].Op, "numbered by the Start it dropped")
	assert.Equal(t, 1, events[0].Node.Node)
}

func TestWaitReturnsAnEventRecordedBeforeOrAfter(t *testing.T) {
	rec := &recorder{}
	rec.Node(context.Background(), node{"x", 0})
	assert.Equal(t, 0, rec.Wait(t, func(e event) bool { return e.Node != nil }).Node.Node)

	var wg sync.WaitGroup
	for i := 1; i <= 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec.Node(context.Background(), node{"x", i})
		}()
	}
	e := rec.Wait(t, func(e event) bool { return e.Node != nil && e.Node.Node == 50 })
	assert.Equal(t, 50, e.Node.Node)
	wg.Wait()
	require.Len(t, rec.Nodes(), 51)
}
