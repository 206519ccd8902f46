package quorum

import "math/bits"

// A Set is a set of servers, by their index among a round's servers, of
// any size: the first 64 live inline, so that a Set of up to 64 servers
// never allocates; the others in words allocated as they are added. The
// zero Set is empty and ready to use. A Set is not safe for concurrent
// use; copy it only with Clone.
type Set struct {
	low  uint64   // servers 0 to 63
	high []uint64 // high[i] holds servers 64*(i+1) to 64*(i+1)+63
}

// Add adds node (0 or more) to s.
func (s *Set) Add(node int) {
	if node < 64 {
		s.low |= 1 << uint(node)
		return
	}
	w := node/64 - 1
	for len(s.high) <= w {
		s.high = append(s.high, 0)
	}
	s.high[w] |= 1 << uint(node%64)
}

// Remove removes node from s; removing a server not in s does nothing.
func (s *Set) Remove(node int) {
	if node < 64 {
		s.low &^= 1 << uint(node)
		return
	}
	if w := node/64 - 1; w < len(s.high) {
		s.high[w] &^= 1 << uint(node%64)
	}
}

// Has reports whether node is in s.
func (s *Set) Has(node int) bool {
	if node < 64 {
		return s.low&(1<<uint(node)) != 0
	}
	w := node/64 - 1
	return w < len(s.high) && s.high[w]&(1<<uint(node%64)) != 0
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

// Clear empties s, keeping the words it allocated.
func (s *Set) Clear() {
	s.low = 0
	clear(s.high)
}

// Len returns the number of servers in s.
func (s *Set) Len() int {
	n := bits.OnesCount64(s.low)
	for _, w := range s.high {
		n += bits.OnesCount64(w)
	}
	return n
}

// Clone returns a copy of s that shares nothing with it.
func (s *Set) Clone() Set {
	c := Set{low: s.low}
	if len(s.high) > 0 {
		c.high = append([]uint64(nil), s.high...)
	}
	return c
}
