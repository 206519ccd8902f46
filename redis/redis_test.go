package redis_test

import (
	"testing"

	"github.com/quorumlock/redsync/redis"
)

func TestNewScriptKeepsItsArgumentsAsGiven(t *testing.T) {
	tests := []struct {
		keyCount  int
		src, hash string
	}{
		{-1, "return 2", ""},
		{1, "return 1", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"},
		{0, "return 1", "not a hash"},
	}
	for _, tt := range tests {
		got := redis.NewScript(tt.keyCount, tt.src, tt.hash)
		want := redis.Script{KeyCount: tt.keyCount, Src: tt.src, Hash: tt.hash}
		if *got != want {
			t.Errorf("NewScript(%d, %q, %q) = %+v, want %+v", tt.keyCount, tt.src, tt.hash, *got, want)
		}
	}
}
