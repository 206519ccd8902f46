package main

import (
	"bytes"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/quorumlock/redsync/internal/redistest"
)

const want = "40 reads, 5 writes, 0 torn reads\n"

func TestReadersNeverSeeAHalfWrittenCatalogOnEmbeddedServers(t *testing.T) {
	defer goleak.VerifyNone(t)
	var out bytes.Buffer
	if err := run(nil, &out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, &out)
	}
	if !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, &out)
	}
}

func TestReadersNeverSeeAHalfWrittenCatalogOnRealServers(t *testing.T) {
	servers := redistest.Start(t, 3)
	var out bytes.Buffer
	if err := run(redistest.Addrs(servers), &out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, &out)
	}
	if !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, &out)
	}
}
