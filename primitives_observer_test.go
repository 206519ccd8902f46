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
	var got []string
	for _, e := range rec.Events() {
		switch {
		case e.Start != nil:
			got = append(got, fmt.Sprintf("start %s %s", e.Start.Op, e.Start.Name))
		case e.Node != nil:
			got = append(got, fmt.Sprintf("node %s %s %d %s", e.Node.Op, e.Node.Name, e.Node.Node, e.Node.Outcome))
		case e.Done != nil:
			got = append(got, fmt.Sprintf("done %s %s %s", e.Done.Op, e.Done.Name, e.Done.Outcome()))
		case e.Attempt != nil:
			got = append(got, "attempt "+e.Attempt.Name)
		}
	}
	// The replies of one operation come in any order.
	for i := 0; i < len(got); {
		j := i + 1
		for j < len(got) && got[j][:4] == "node" {
			j++
		}
		sort.Strings(got[i+1 : j])
		i = j
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
