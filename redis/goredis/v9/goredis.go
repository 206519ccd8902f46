// Package goredis keeps the import path of redsync's go-redis v9 adapter
// (github.com/go-redsync/redsync/v4/redis/goredis/v9) working after that
// prefix is rewritten to github.com/quorumlock/redsync: it only forwards to
// github.com/quorumlock/redsync/redis/goredis.
//
// It exists for the migration; new code should import
// github.com/quorumlock/redsync/redis/goredis instead.
package goredis

import (
	redsyncredis "github.com/quorumlock/redsync/redis"
	adapter "github.com/quorumlock/redsync/redis/goredis"
	"github.com/redis/go-redis/v9"
)

// NewPool returns a redsync Pool whose connections send their commands
// through delegate. It is github.com/quorumlock/redsync/redis/goredis.NewPool;
// see that package for how contexts and timeouts apply.
func NewPool(delegate redis.UniversalClient) redsyncredis.Pool {
	return adapter.NewPool(delegate)
}

// NewPoolWithOptions is
// github.com/quorumlock/redsync/redis/goredis.NewPoolWithOptions.
func NewPoolWithOptions(delegate redis.UniversalClient, opts ...Option) redsyncredis.Pool {
	return adapter.NewPoolWithOptions(delegate, opts...)
}

// Option is github.com/quorumlock/redsync/redis/goredis.Option.
type Option = adapter.Option

// WithBatching is github.com/quorumlock/redsync/redis/goredis.WithBatching.
func WithBatching(on bool) Option {
	return adapter.WithBatching(on)
}
