package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/quorumlock/redsync/internal/redistest"
)

func TestJobOutlivesTheExpiryOnEmbeddedServers(t *testing.T) {
	defer goleak.VerifyNone(t)

	var out bytes.Buffer
	// 1.2 s of work under a 1 s lock (a 50 ms per-server deadline, which a
	// busy machine running the race detector still meets).
	if err := run(nil, time.Second, 12, &out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, &out)
	}
	for _, want := range []string{"second instance skipped", "job done", "lock released"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, &out)
		}
	}
}

func TestJobOutlivesTheExpiryOnRealServers(t *testing.T) {
	servers := redistest.Start(t, 3)
	var out bytes.Buffer
	// 2 s of work under a 500 ms lock: only the extensions keep it.
	if err := run(redistest.Addrs(servers), 500*time.Millisecond, 20, &out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, &out)
	}
	if !strings.Contains(out.String(), "job done") {
		t.Errorf("output lacks the end of the job:\n%s", &out)
	}
}
