// Package quorumlock is this library for the mixed-fleet tests of the
// compat suite when the suite runs against redsync v4 (go test in compat/):
// the suite's own imports then name redsync, and this package the library
// that replaces it.
package quorumlock

import (
	"sync"

	goredislib "github.com/redis/go-redis/v9"

	"github.com/quorumlock/redsync"
	"github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis"
)

// Name says which library this peer is, for test messages.
const Name = "quorumlock"

// Mutex is what the mixed-fleet tests do with a peer's lock.
type Mutex interface {
	Lock() error
	TryLock() error
	Unlock() (bool, error)
	Extend() (bool, error)
	Value() string
}

var (
	// mu guards made.
	mu sync.Mutex
	// made lists every Redsync NewMutex made, for Wait.
	made []*redsync.Redsync
)

// NewMutex returns this library's Mutex for name over one pool per client.
// tries bounds Lock's tries.
func NewMutex(clients []*goredislib.Client, name string, tries int) Mutex {
	pools := make([]redis.Pool, len(clients))
	for i, c := range clients {
		pools[i] = goredis.NewPool(c)
	}
	rs := redsync.New(pools...)
	mu.Lock()
	made = append(made, rs)
	mu.Unlock()
	return rs.NewMutex(name, redsync.WithTries(tries))
}

// Wait waits for the requests of every Mutex NewMutex made that are still
// in flight (this library returns at quorum and lets the others finish in
// the background), so that a test can close the clients.
func Wait() {
	mu.Lock()
	all := made
	made = nil
	mu.Unlock()
	for _, rs := range all {
		rs.Wait()
	}
}
