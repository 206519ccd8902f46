package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"go.uber.org/goleak"
)

func TestRunOnEmbeddedServers(t *testing.T) {
	defer goleak.VerifyNone(t)

	var out bytes.Buffer
	if err := run(nil, &out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, &out)
	}
	for _, want := range []string{"started embedded servers", "lock already taken", "extended", "unlocked"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, &out)
		}
	}
}

func TestRunOnGivenServers(t *testing.T) {
	defer goleak.VerifyNone(t)

	var addrs []string
	for i := 0; i < 3; i++ {
		server, err := miniredis.Run()
		if err != nil {
			t.Fatal(err)
		}
		defer server.Close()
		addrs = append(addrs, server.Addr())
	}
	var out bytes.Buffer
	if err := run(addrs, &out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, &out)
	}
	if strings.Contains(out.String(), "embedded") {
		t.Errorf("run started embedded servers although it was given addresses:\n%s", &out)
	}
}
