//go:build race

package redsync

// raceEnabled reports whether the tests run with the race detector.
const raceEnabled = true
