// Package redsyncv4 is redsync v4 for the mixed-fleet tests of the compat
// suite when the suite runs against this library: compat/run.sh rewrites
// the import prefix of the suite (compat/suite) only, so this package keeps
// the real redsync while the suite's own imports name this library.
package redsyncv4

import (
	"github.com/go-redsync/redsync/v4"
	"github.com/go-redsync/redsync/v4/redis"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"
	goredislib "github.com/redis/go-redis/v9"
)

// Name says which library this peer is, for test messages.
const Name = "redsync v4"

// Mutex is what the mixed-fleet tests do with a peer's lock.
type Mutex interface {
	Lock() error
	TryLock() error
	Unlock() (bool, error)
	Extend() (bool, error)
	Value() string
}

// NewMutex returns redsync's Mutex for name over one pool per client.
// tries bounds Lock's tries (redsync's retry delay stays its default).
func NewMutex(clients []*goredislib.Client, name string, tries int) Mutex {
	pools := make([]redis.Pool, len(clients))
	for i, c := range clients {
		pools[i] = goredis.NewPool(c)
	}
	return redsync.New(pools...).NewMutex(name, redsync.WithTries(tries))
}

// Wait returns at once: redsync's operations have no requests left in
// flight when they return.
func Wait() {}
