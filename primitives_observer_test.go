package redsync_test

import (
	"context"
	"fmt"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/quorumlock/redsync/internal/observertest"
)

// A Semaphore's and a MultiMutex's operations are reported as the Mutex's
// are: Start, every server's reply as a NodeEvent of the operation, Done.
func TestSemaphoreAndMultiMutexReportEveryServersReply(t *testing.T) {
	var rec observertest.Recorder
	observertest.RunPrimitives(t, context.Background(), &rec)
	// Each operation's lines: its Start, its servers' replies (in any
	// order, sorted here), its Done. An operation that returns at a quorum
	// (Extend, Release, Unlock) may report a late reply after its Done, so
	// a reply goes to the latest operation of its op and name.
	type operation struct {
		start, done string
		nodes       []string
	}
	var ops []*operation
	latest := map[string]*operation{}
	for _, e := range rec.Events() {
		switch {
		case e.Start != nil:
			o := &operation{start: fmt.Sprintf("start %s %s", e.Start.Op, e.Start.Name)}
			ops = append(ops, o)
			latest[e.Start.Op.String()+" "+e.Start.Name] = o
		case e.Node != nil:
			if o := latest[e.Node.Op.String()+" "+e.Node.Name]; o != nil {
				o.nodes = append(o.nodes, fmt.Sprintf("node %s %s %d %s", e.Node.Op, e.Node.Name, e.Node.Node, e.Node.Outcome))
			}
		case e.Done != nil:
			if o := latest[e.Done.Op.String()+" "+e.Done.Name]; o != nil {
				o.done = fmt.Sprintf("done %s %s %s", e.Done.Op, e.Done.Name, e.Done.Outcome())
			}
		case e.Attempt != nil:
			t.Errorf("an attempt event for %s: the other primitives report none", e.Attempt.Name)
		}
	}
	var got []string
	for _, o := range ops {
		sort.Strings(o.nodes)
		got = append(append(append(got, o.start), o.nodes...), o.done)
	}
	assert.Equal(t, []string{
		"start acquire workers",
		"node acquire workers 0 ok", "node acquire workers 1 ok", "node acquire workers 2 error",
		"done acquire workers ok",
		"start acquire workers",
		"node acquire workers 0 refused", "node acquire workers 1 refused", "node acquire workers 2 error",
		"done acquire workers taken",
		"start extend workers",
		"node extend workers 0 ok", "node extend workers 1 ok", "node extend workers 2 error",
		"done extend workers ok",
		"start release workers",
		"node release workers 0 ok", "node release workers 1 ok", "node release workers 2 error",
		"done release workers ok",
		"start multilock a,b",
		"node multilock a,b 0 ok", "node multilock a,b 1 ok", "node multilock a,b 2 error",
		"done multilock a,b ok",
		"start multiunlock a,b",
		"node multiunlock a,b 0 ok", "node multiunlock a,b 1 ok", "node multiunlock a,b 2 error",
		"done multiunlock a,b ok",
	}, got)
}
