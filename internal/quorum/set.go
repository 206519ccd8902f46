package quorum

import "math/bits"

// A Set is a set of servers, by their index among a round's servers, of
// any size: the first 64 live inline, so that a Set of up to 64 servers
// never allocates; the others in words allocated as they are added. The
// zero Set is empty and ready to use. A Set is not safe for concurrent
// use; copy it only with Clone.
type Set struct {
	low uint64 // servers 0 to 63
	// high, allocated with the first server beyond 63, has in (*high)[i]
	// the servers 64*(i+1) to 64*(i+1)+63. (A pointer rather than a
	// slice: a Set is two words, which keeps the structures that hold
	// Sets small.)
	high *[]uint64
}

// Add adds node (0 or more) to s.
func (s *Set) Add(node int) {
	if node < 64 {
		s.low |= 1 << uint(node)
		return
	}
	w := node/64 - 1
	if s.high == nil {
		s.high = new([]uint64)
	}
	for len(*s.high) <= w {
		*s.high = append(*s.high, 0)
	}
	(*s.high)[w] |= 1 << uint(node%64)
}

// words returns the words of the servers beyond 63.
func (s *Set) words() []uint64 {
	if s.high == nil {
		return nil
	}
	return *s.high
}

// Remove removes node from s; removing a server not in s does nothing.
func (s *Set) Remove(node int) {
	if node < 64 {
		s.low &^= 1 << uint(node)
		return
	}
	if w, high := node/64-1, s.words(); w < len(high) {
		high[w] &^= 1 << uint(node%64)
	}
}

// Has reports whether node is in s.
func (s *Set) Has(node int) bool {
	if node < 64 {
		return s.low&(1<<uint(node)) != 0
	}
	w, high := node/64-1, s.words()
	return w < len(high) && high[w]&(1<<uint(node%64)) != 0
}

// Fill adds the servers 0 to n-1 to s.
func (s *Set) Fill(n int) {
	if n >= 64 {
		s.low = ^uint64(0)
	} else if n > 0 {
		s.low |= 1<<uint(n) - 1
	}
	for node := 64; node < n; node++ {
		s.Add(node)
	}
}

// AppendTo appends the servers in s to dst, in increasing order, and
// returns the extended slice.
func (s *Set) AppendTo(dst []int) []int {
	for w := s.low; w != 0; w &= w - 1 {
		dst = append(dst, bits.TrailingZeros64(w))
	}
	for i, word := range s.words() {
		for w := word; w != 0; w &= w - 1 {
			dst = append(dst, 64*(i+1)+bits.TrailingZeros64(w))
		}
	}
	return dst
}

// Clear empties s, keeping the words it allocated.
func (s *Set) Clear() {
	s.low = 0
	clear(s.words())
}

// Len returns the number of servers in s.
func (s *Set) Len() int {
	n := bits.OnesCount64(s.low)
	for _, w := range s.words() {
		n += bits.OnesCount64(w)
	}
	return n
}

// Clone returns a copy of s that shares nothing with it.
func (s *Set) Clone() Set {
	c := Set{low: s.low}
	if high := s.words(); len(high) > 0 {
		words := append([]uint64(nil), high...)
		c.high = &words
	}
	return c
}
