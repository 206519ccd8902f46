package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/quorumlock/redsync/internal/redistest"
)

// wantLines are what the output must say, whatever the servers.
var wantLines = []string{
	"p1 leads, term ",
	"p1 learns it lost: true\n",
	"p2 leads, term ",
	"p1: late write refused: ",
	"stale term\n",
	"p3 leads, term ",
	`storage: "config by p2"` + "\n",
}

func checkOutput(t *testing.T, out string) {
	t.Helper()
	for _, want := range wantLines {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestLeaderTakesOverOnEmbeddedServers(t *testing.T) {
	defer goleak.VerifyNone(t)
	var out bytes.Buffer
	if err := run(nil, time.Second, &out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, &out)
	}
	checkOutput(t, out.String())
	t.Log(out.String())
}

func TestLeaderTakesOverOnRealServers(t *testing.T) {
	servers := redistest.Start(t, 3)
	var out bytes.Buffer
	if err := run(redistest.Addrs(servers), time.Second, &out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, &out)
	}
	checkOutput(t, out.String())
	t.Log(out.String())
}
