package fencing

import (
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// granted is the reply of scripts.FencedAcquire that set the key, from a
// server whose counter is counter ("" when missing) and whose clock reads
// sec seconds and usec microseconds.
func granted(counter string, sec, usec int64) any {
	return []any{counter, strconv.FormatInt(sec, 10), strconv.FormatInt(usec, 10)}
}

func TestTokenIsAgreedFromTheGrantingServers(t *testing.T) {
	for _, c := range []struct {
		name    string
		replies []any
		want    uint64
	}{{
		name:    "one more than the highest counter",
		replies: []any{granted("5", 0, 7), granted("9", 0, 8), granted("7", 0, 6)},
		want:    10,
	}, {
		name:    "the highest clock when it is larger",
		replies: []any{granted("5", 1, 3), granted("9", 2, 250), granted("7", 1, 999_999)},
		want:    2_000_250,
	}, {
		name:    "a counter equal to the clock still counts one more",
		replies: []any{granted("3000000", 3, 0), granted("", 2, 0)},
		want:    3_000_001,
	}, {
		name: "a server restarted empty: the others' counters",
		// Its counter is gone and its clock is behind what was issued:
		// another server of the quorum has the last token.
		replies: []any{granted("", 1, 0), granted("4000000", 2, 0), granted("", 1, 5)},
		want:    4_000_001,
	}, {
		name: "every server restarted empty: the clocks are the floor",
		// After the restart delay the clocks are past every token issued.
		replies: []any{granted("", 9, 1), granted("", 9, 2), granted("", 8, 0)},
		want:    9_000_002,
	}, {
		name: "refusals and failures add nothing",
		replies: []any{granted("5", 0, 0), int64(1500), int64(-1), int64(-2),
			[]any{"oops"}, granted("6", 0, 0)},
		want: 7,
	}} {
		t.Run(c.name, func(t *testing.T) {
			var r Reads
			for _, reply := range c.replies {
				r.Add(reply, nil)
			}
			token, stored := r.Token()
			assert.Equal(t, c.want, token)
			assert.False(t, stored, "several servers: the token needs a write-back")
			assert.NoError(t, r.Failure())
		})
	}
}

func TestTokenStoredByASingleServerNeedsNoWriteBack(t *testing.T) {
	var r Reads
	got := r.Add([]any{int64(1_795_696_031_978_941)}, nil)
	assert.Equal(t, Acquire{Acquired: true, TTL: -1}, got)
	token, stored := r.Token()
	assert.Equal(t, uint64(1_795_696_031_978_941), token)
	assert.True(t, stored)

	// A stored token of 0 or below is not one the script makes.
	var bad Reads
	got = bad.Add([]any{int64(0)}, nil)
	assert.False(t, got.Acquired)
	assert.Error(t, got.Err)
	_, stored = bad.Token()
	assert.False(t, stored)
}

func TestAddSaysWhatAReplyMeans(t *testing.T) {
	errDown := errors.New("ERR down")
	errCrossSlot := errors.New("CROSSSLOT Keys in request don't hash to the same slot")
	for _, c := range []struct {
		name  string
		reply any
		err   error
		want  Acquire
		isErr error // the error Err must match, when not nil
		fails bool  // Err is an error of the reply's own
	}{
		{name: "set", reply: granted("1", 2, 3), want: Acquire{Acquired: true, TTL: -1}},
		{name: "taken", reply: int64(1500), want: Acquire{TTL: 1500 * time.Millisecond}},
		{name: "taken without expiry", reply: int64(-1), want: Acquire{TTL: -1}},
		{name: "counter key in use", reply: int64(-3), want: Acquire{TTL: -1, Problem: KeyInUse}},
		{name: "server failed", err: errDown, want: Acquire{TTL: -1, Err: errDown}, isErr: errDown},
		{name: "cross slot", err: errCrossSlot, want: Acquire{TTL: -1, Problem: CrossSlot, Err: errCrossSlot}, isErr: errCrossSlot},
		{name: "unexpected array", reply: []any{"1", "2"}, fails: true},
		{name: "unreadable clock", reply: []any{"1", "x", "3"}, fails: true},
		{name: "unexpected type", reply: "OK", fails: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var r Reads
			got := r.Add(c.reply, c.err)
			if c.fails {
				assert.False(t, got.Acquired)
				assert.Equal(t, time.Duration(-1), got.TTL)
				assert.Equal(t, NoProblem, got.Problem)
				assert.Error(t, got.Err)
				return
			}
			if c.isErr != nil {
				assert.ErrorIs(t, got.Err, c.isErr)
			}
			assert.Equal(t, c.want, got)
		})
	}
}

func TestAnUnreadableCounterLeavesTheClockAsTheFloor(t *testing.T) {
	var r Reads
	got := r.Add(granted("not a number", 5, 0), nil)
	assert.True(t, got.Acquired)
	token, _ := r.Token()
	assert.Equal(t, uint64(5_000_000), token)
}

func TestFailurePrefersCrossSlotAndKeepsTheFirstOfEach(t *testing.T) {
	var r Reads
	assert.NoError(t, r.Failure())
	inUse0, inUse1 := errors.New("in use on #0"), errors.New("in use on #1")
	r.Fail(NoProblem, errors.New("ignored"))
	assert.NoError(t, r.Failure())
	r.Fail(KeyInUse, inUse0)
	r.Fail(KeyInUse, inUse1)
	assert.Equal(t, inUse0, r.Failure())
	slot0, slot1 := errors.New("cross slot #0"), errors.New("cross slot #1")
	r.Fail(CrossSlot, slot0)
	r.Fail(CrossSlot, slot1)
	assert.Equal(t, slot0, r.Failure(), "a name the cluster cannot fence says more than a key in use")
}

func TestWriteBackDecidesStoredOrKeyInUse(t *testing.T) {
	for _, c := range []struct {
		reply            any
		stored, keyInUse bool
	}{
		{reply: int64(1), stored: true},
		{reply: int64(0)},                  // the key no longer holds the value
		{reply: int64(-3), keyInUse: true}, // nothing written
		{reply: int64(2)},                  // never made: not stored
		{reply: "OK"},
		{reply: nil},
	} {
		stored, keyInUse := WriteBack(c.reply)
		assert.Equal(t, c.stored, stored, "%#v", c.reply)
		assert.Equal(t, c.keyInUse, keyInUse, "%#v", c.reply)
	}
}

func TestReadsAddedConcurrently(t *testing.T) {
	var (
		r  Reads
		wg sync.WaitGroup
	)
	const servers = 16
	for i := 0; i < servers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			got := r.Add(granted(strconv.Itoa(100+i), 0, int64(i)), nil)
			assert.True(t, got.Acquired)
			if i%4 == 0 {
				r.Fail(KeyInUse, errors.New("in use"))
			}
		}(i)
	}
	wg.Wait()
	token, stored := r.Token()
	require.False(t, stored)
	assert.Equal(t, uint64(100+servers-1+1), token)
	assert.Error(t, r.Failure())
}
