package main

import (
	"testing"
	"time"

	"github.com/quorumlock/redsync"
)

func TestAValueTellsItsHolderAndWhenItWasMade(t *testing.T) {
	before := time.Now().Truncate(time.Second)
	newValue := valueMaker("user@web-3:4121")
	v, err := newValue()
	if err != nil {
		t.Fatal(err)
	}
	holder, since, ok := parseValue(v)
	if !ok || holder != "user@web-3:4121" || since.Before(before) || since.After(time.Now()) {
		t.Errorf("parseValue(%q) = %q, %v, %v", v, holder, since, ok)
	}
	if w, _ := newValue(); w == v {
		t.Errorf("two values alike: %q", v)
	}
	for _, other := range []string{"FpjTrsKcdWCVfQG7pQmAfw==", "a@b", "a@12.short", "a@x.0123456789012345678901"} {
		if _, _, ok := parseValue(other); ok {
			t.Errorf("parseValue(%q) took it for a value of redlock's", other)
		}
	}
}

func TestAckNamesOnlyWarnings(t *testing.T) {
	kinds, err := parseKinds("no-persistence, failover")
	if err != nil || len(kinds) != 2 || kinds[0] != redsync.FindingNoPersistence || kinds[1] != redsync.FindingFailover {
		t.Errorf("parseKinds = %v, %v", kinds, err)
	}
	for _, bad := range []string{"same-server", "nonsense"} {
		if _, err := parseKinds(bad); err == nil {
			t.Errorf("parseKinds(%q) accepted it", bad)
		}
	}
}
