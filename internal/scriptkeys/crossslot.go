package scriptkeys

import (
	"fmt"
	"strings"
)

// RecoverCrossSlot, deferred by an adapter's Eval, turns the panic of a
// rueidis or valkey-go cluster client given keys of different hash slots
// into the error a Redis Cluster replies with (CROSSSLOT), which the lock
// reports as a bad name. Other panics go on.
func RecoverCrossSlot(err *error) {
	r := recover()
	if r == nil {
		return
	}
	if s, ok := r.(string); ok && strings.Contains(s, "different key slots") {
		*err = fmt.Errorf("CROSSSLOT Keys in request don't hash to the same slot (refused by the client: %s)", s)
		return
	}
	panic(r)
}
