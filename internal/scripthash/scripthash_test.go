package scripthash

import (
	"fmt"
	"testing"
)

func TestOfKeepsAGivenHash(t *testing.T) {
	if got := Of("return 1", "given"); got != "given" {
		t.Fatalf("Of with a hash = %q, want the hash given", got)
	}
}

func TestOfComputesTheSHA1OfTheSource(t *testing.T) {
	// The SHA-1 redis-server names "return 1" by (SCRIPT LOAD "return 1").
	const want = "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"
	for i := 0; i < 2; i++ { // computed, then remembered
		if got := Of("return 1", ""); got != want {
			t.Fatalf("call %d: Of = %q, want %q", i+1, got, want)
		}
	}
}

func TestOfStaysRightPastTheBound(t *testing.T) {
	for i := 0; i < 2*maxRemembered; i++ {
		src := fmt.Sprintf("return %d", i)
		if got, want := Of(src, ""), Compute(src); got != want {
			t.Fatalf("Of(%q) = %q, want %q", src, got, want)
		}
	}
	if n := count.Load(); n > maxRemembered {
		t.Fatalf("%d sources remembered, want at most %d", n, maxRemembered)
	}
}

func BenchmarkOfRemembered(b *testing.B) {
	src := "local current = redis.call('GET', KEYS[1]) return current"
	Of(src, "")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		Of(src, "")
	}
}
