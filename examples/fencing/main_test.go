package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/quorumlock/redsync/internal/redistest"
)

// wantLines are what the output must say, whatever the servers.
var wantLines = []string{
	"B: write accepted\n",
	"A: write rejected: ",
	"stale fencing token\n",
	`document "report": "written by B"` + "\n",
}

func checkOutput(t *testing.T, out string) {
	t.Helper()
	for _, want := range wantLines {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestFencingRejectsThePausedHolderOnEmbeddedServers(t *testing.T) {
	defer goleak.VerifyNone(t)

	var out bytes.Buffer
	// A 1 s expiry gives each server a 50 ms deadline, which a busy machine
	// running the race detector still meets.
	if err := run(nil, time.Second, &out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, &out)
	}
	checkOutput(t, out.String())
}

func TestFencingRejectsThePausedHolderOnRealServers(t *testing.T) {
	servers := redistest.Start(t, 3)
	var out bytes.Buffer
	if err := run(redistest.Addrs(servers), time.Second, &out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, &out)
	}
	checkOutput(t, out.String())
}

func TestStoreRefusesOnlyLowerFencingTokens(t *testing.T) {
	store := newDocumentStore()
	steps := []struct {
		token     uint64
		wantStale bool
	}{
		{token: 10},                  // the first write sets the floor
		{token: 10},                  // the same holder writes again
		{token: 9, wantStale: true},  // a lapsed holder
		{token: 11},                  // the next holder
		{token: 10, wantStale: true}, // the first holder, too late
	}
	for i, step := range steps {
		err := store.Write(documentID, step.token, "v")
		if got := errors.Is(err, errStaleToken); got != step.wantStale {
			t.Errorf("step %d: Write with token %d: error %v, want stale %v", i, step.token, err, step.wantStale)
		}
	}
}
