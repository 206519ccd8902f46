package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"go.uber.org/goleak"
)

func TestSaleOnEmbeddedServersSellsEachUnitOnce(t *testing.T) {
	defer goleak.VerifyNone(t)

	var out bytes.Buffer
	if err := run(nil, 32, 8*time.Second, &out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, &out)
	}
	for _, want := range []string{"sold:        50\n", "sold out:    50\n", "final stock: 0\n", "oversold:    0\n", "failures:    0 "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, &out)
		}
	}
}

func TestSaleOnGivenServersKeepsStockOnFirst(t *testing.T) {
	defer goleak.VerifyNone(t)

	var servers []*miniredis.Miniredis
	var addrs []string
	for i := 0; i < 3; i++ {
		server, err := miniredis.Run()
		if err != nil {
			t.Fatal(err)
		}
		defer server.Close()
		servers = append(servers, server)
		addrs = append(addrs, server.Addr())
	}
	var out bytes.Buffer
	if err := run(addrs, 32, 8*time.Second, &out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, &out)
	}
	if got, err := servers[0].Get(stockKey); err != nil || got != "0" {
		t.Errorf("stock on the first server = %q, %v; want \"0\"", got, err)
	}
	for i, server := range servers[1:] {
		if server.Exists(stockKey) {
			t.Errorf("server %d has the stock key; only the first should", i+1)
		}
	}
}

func TestSaleWithOneTryReportsFailures(t *testing.T) {
	defer goleak.VerifyNone(t)

	var out bytes.Buffer
	if err := run(nil, 1, 8*time.Second, &out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, &out)
	}
	// One try each: most buyers find the lock taken and give up at once.
	if !strings.Contains(out.String(), "first error: lock: ") || !strings.Contains(out.String(), "oversold:    0\n") {
		t.Errorf("want failures with a lock error and nothing oversold:\n%s", &out)
	}
}
