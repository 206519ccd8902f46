package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestJobsOnEmbeddedServersNeverExceedThePermits(t *testing.T) {
	defer goleak.VerifyNone(t)

	var out bytes.Buffer
	if err := run(nil, 20*time.Millisecond, &out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, &out)
	}
	if !strings.Contains(out.String(), "done:        20\n") {
		t.Errorf("not every job ran:\n%s", &out)
	}
	for _, bad := range []string{"seen: 0\n", "seen: 4\n", "seen: 5\n"} {
		if strings.Contains(out.String(), bad) {
			t.Errorf("highest concurrency out of 1..3:\n%s", &out)
		}
	}
}
