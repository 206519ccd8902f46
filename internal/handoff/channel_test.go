package handoff

import (
	"testing"

	"github.com/quorumlock/redsync/internal/hashslot"
)

func TestReleaseChannelsNameTheirLockAndShareItsSlot(t *testing.T) {
	for _, tt := range []struct {
		name, sharded string
	}{
		{"lock", "redsync:released{lock}"},
		{"{user}:lock", "redsync:released:{user}:lock"},
		{"a{b", "redsync:released{a{b}"},
		{"a}b", ""},
		{"", "redsync:released{}"},
	} {
		got := ShardedReleaseChannel(tt.name)
		if got != tt.sharded {
			t.Errorf("ShardedReleaseChannel(%q) = %q, want %q", tt.name, got, tt.sharded)
		}
		for _, channel := range []string{ReleaseChannel(tt.name), got} {
			if channel == "" {
				continue
			}
			if name, ok := releaseName(channel); !ok || name != tt.name {
				t.Errorf("releaseName(%q) = %q, %v; want %q", channel, name, ok, tt.name)
			}
		}
		if got != "" && tt.name != "" && hashslot.Slot(got) != hashslot.Slot(tt.name) {
			t.Errorf("%q hashes to slot %d, the lock %q to %d", got, hashslot.Slot(got), tt.name, hashslot.Slot(tt.name))
		}
	}
	for _, channel := range []string{"other", "redsync:released", "redsync:released{x"} {
		if name, ok := releaseName(channel); ok {
			t.Errorf("releaseName(%q) = %q, want no name", channel, name)
		}
	}
}
