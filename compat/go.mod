module github.com/quorumlock/redsync/compat

go 1.26.0

// internal/redistest (real redis-server processes on free ports) and, for
// the mixed-fleet tests, the library itself.
replace github.com/quorumlock/redsync => ../

// redsync v4.18.1 asks for valkeycompat v1.0.79, which the module proxy
// does not serve; v1.0.77 has the same API.
replace github.com/valkey-io/valkey-go/valkeycompat v1.0.79 => github.com/valkey-io/valkey-go/valkeycompat v1.0.77

require (
	github.com/go-redis/redis/v7 v7.4.1
	github.com/go-redis/redis/v8 v8.11.5
	github.com/go-redsync/redsync/v4 v4.18.1
	github.com/gomodule/redigo v1.9.3
	github.com/quorumlock/redsync v0.0.0-00010101000000-000000000000
	github.com/redis/go-redis/v9 v9.23.0
	github.com/redis/rueidis v1.0.80
	github.com/redis/rueidis/rueidiscompat v1.0.79
	github.com/valkey-io/valkey-go v1.0.80
	github.com/valkey-io/valkey-go/valkeycompat v1.0.79
	go.uber.org/goleak v1.3.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/dgryski/go-rendezvous v0.0.0-20200823014737-9f7001d12a5f // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
