package redsync

import (
	"context"
	"sync"

	"github.com/quorumlock/redsync/internal/quorum"
)

// holding tracks the servers that may hold one try's value, so that each of
// them is released exactly once when the try fails or the lock is
// unlocked, even when its acquire reply arrives after Lock returned.
type holding struct {
	value string

	mu sync.Mutex // guards the fields below, from givenUp up to freeAfter
	// external: the value was acquired elsewhere (WithValue), so any
	// server may hold it; set by newHolding, then only read. (It shares
	// a word with givenUp: a holding stays within 256 bytes.)
	external bool
	givenUp  bool
	// recorded are the servers whose acquire succeeded or failed with
	// an error, until giveUp.
	recorded quorum.Set
	few      [8]int // backs what giveUp returns for up to 8 servers
	// givenUpNodes are the servers given up alone (see giveUpNode).
	givenUpNodes quorum.Set
	// pending are the servers whose acquire reply is not in; replied,
	// once made, is closed at the next reply.
	pending quorum.Set
	replied chan struct{}

	// refused are the servers that refused the attempt (see reassert).
	refused refusals

	// freeAfter backs the acquire's per-server free times (see attempt)
	// for up to 8 servers; written atomically by the node goroutines.
	freeAfter [8]int64
}

// newHolding returns the hold of value, which no request is acquiring
// (WithValue), or, when acquiring is the number of servers an attempt is
// sending its acquire to, of an attempt's value.
func newHolding(value string, acquiring int) *holding {
	h := &holding{value: value, external: acquiring == 0}
	h.pending.Fill(acquiring)
	return h
}

// resend notes that an acquire of the value is on its way to each of the
// first n servers again (an attempt of a stint, see fleet.go).
func (h *holding) resend(n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pending.Fill(n)
}

// record notes that node may hold the value. It returns false when the hold
// was already given up: the caller must release node itself.
func (h *holding) record(node int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.givenUp || h.givenUpNodes.Has(node) {
		return false
	}
	h.recorded.Add(node)
	return true
}

// mayHold reports whether node may hold the value: it was acquired
// elsewhere, or node's acquire is on its way or did not refuse.
func (h *holding) mayHold(node int) bool {
	if h.external {
		return true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pending.Has(node) || h.recorded.Has(node)
}

// acquireReplied notes that the acquire reply of node is in (and was
// recorded if it had to be).
func (h *holding) acquireReplied(node int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pending.Remove(node)
	if h.replied != nil {
		close(h.replied) // the waiters look again
		h.replied = nil
	}
}

// awaitReply waits until the acquire reply of node is in, or ctx ends: a
// release sent after it cannot be overtaken by the acquire.
func (h *holding) awaitReply(ctx context.Context, node int) {
	for {
		h.mu.Lock()
		if !h.pending.Has(node) {
			h.mu.Unlock()
			return
		}
		if h.replied == nil {
			h.replied = make(chan struct{})
		}
		replied := h.replied
		h.mu.Unlock()
		select {
		case <-replied:
		case <-ctx.Done():
			return
		}
	}
}

// giveUpNode gives up node alone: a request that sets the value there from
// now on (a late acquire, an extension that sets a missing key) releases
// it itself. It always returns true now that a hold tracks every server
// alone (callers give the whole hold up on false).
func (h *holding) giveUpNode(node int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.givenUpNodes.Add(node)
	return true
}

// givenUpFor reports whether node was given up, alone or with the hold.
func (h *holding) givenUpFor(node int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.givenUp || h.givenUpNodes.Has(node)
}

// giveUp marks the hold as given up and returns the servers recorded so far,
// in server order (none when it was given up already); servers whose
// replies come later are released by their own goroutine. The slice
// returned is the caller's: nothing writes to it after.
func (h *holding) giveUp() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.givenUp = true
	nodes := h.recorded.AppendTo(h.few[:0])
	h.recorded.Clear()
	return nodes
}
