package suite

import (
	"errors"
	"sort"

	"github.com/go-redsync/redsync/v4"
)

// walk calls fn on err and on every error it wraps, joined ones included.
func walk(err error, fn func(error)) {
	if err == nil {
		return
	}
	fn(err)
	switch x := err.(type) {
	case interface{ Unwrap() []error }:
		for _, e := range x.Unwrap() {
			walk(e, fn)
		}
	case interface{ Unwrap() error }:
		walk(x.Unwrap(), fn)
	}
}

// redisErrorNodes returns, in order, the nodes of the *RedisError values
// in err.
func redisErrorNodes(err error) []int {
	var nodes []int
	walk(err, func(e error) {
		if r, ok := e.(*redsync.RedisError); ok {
			nodes = append(nodes, r.Node)
		}
	})
	sort.Ints(nodes)
	return nodes
}

// redisErrorsOf returns the *RedisError values in err.
func redisErrorsOf(err error) []*redsync.RedisError {
	var out []*redsync.RedisError
	walk(err, func(e error) {
		if r, ok := e.(*redsync.RedisError); ok {
			out = append(out, r)
		}
	})
	return out
}

// nodeTakenNodes returns, in order, the nodes of the *ErrNodeTaken values
// in err.
func nodeTakenNodes(err error) []int {
	var nodes []int
	walk(err, func(e error) {
		if r, ok := e.(*redsync.ErrNodeTaken); ok {
			nodes = append(nodes, r.Node)
		}
	})
	sort.Ints(nodes)
	return nodes
}

// takenNodes returns the nodes of the *ErrTaken in err, in order, and
// whether there is one.
func takenNodes(err error) ([]int, bool) {
	var taken *redsync.ErrTaken
	if !errors.As(err, &taken) {
		return nil, false
	}
	return sortedNodes(taken.Nodes), true
}
