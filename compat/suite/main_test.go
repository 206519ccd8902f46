// Package suite is the compat suite: black-box tests of redsync v4's public
// behaviour, written against redsync's import paths
// (github.com/go-redsync/redsync/v4/...) and run twice, as they are against
// redsync v4.18.1 (go test in compat/) and against this library once
// compat/run.sh has rewritten the import prefix with the README's one-liner
// (built with -tags quorumlock). Every assertion holds on both sides,
// except where docs/differences.md ("What differs from redsync v4 on
// purpose") says the libraries differ: there the test asserts each side's
// behaviour, and the side files (side_redsync_test.go,
// side_quorumlock_test.go) give what only one library has.
//
// The tests start real redis-server processes (internal/redistest), three
// or five per test.
package suite

import (
	"context"
	"testing"

	goredislib "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// go-redis logs every failed dial; the tests that stop servers cause
	// many, and check the errors they care about themselves.
	goredislib.SetLogger(quiet{})
	goleak.VerifyTestMain(m)
}

// quiet is a go-redis logger that logs nothing.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}
