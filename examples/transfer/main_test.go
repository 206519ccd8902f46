package main

import (
	"bytes"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestTransfersInBothDirectionsKeepTheTotal(t *testing.T) {
	defer goleak.VerifyNone(t)

	var out bytes.Buffer
	if err := run(nil, &out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, &out)
	}
	for _, want := range []string{"transfers:  40 of 40 done", "total:      2000 (opened with 2000)", "account:17: 1000\n", "account:42: 1000\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, &out)
		}
	}
}
