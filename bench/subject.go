package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// A subject is one library on N servers, with go-redis clients of its own
// so that no library's connections or queued commands affect another's.
type subject struct {
	lib     library
	label   string // the row's name: the library, and any non-default option
	n       int
	clients []*redis.Client
	locker  locker
}

// openSubject makes lib's locker over new clients on the first n servers.
// The caller closes it.
func (e *env) openSubject(lib library, n int, opts lockOptions, label string) *subject {
	if label == "" {
		label = lib.name
	}
	clients := e.fleet.clients(n)
	return &subject{lib: lib, label: label, n: n, clients: clients, locker: lib.open(clients, opts)}
}

// close closes the subject's clients.
func (s *subject) close() {
	closeClients(s.clients)
}

// key returns a key name for the subject in the given scenario, unique to
// the library, its label and N.
func (s *subject) key(scenario string, parts ...any) string {
	label := strings.NewReplacer(" ", "", "(", "", ")", "").Replace(s.label)
	k := fmt.Sprintf("bench:%s:%s:N%d", scenario, label, s.n)
	for _, p := range parts {
		k += fmt.Sprintf(":%v", p)
	}
	return k
}

// warmup locks and unlocks m ops times, so that connections are dialed and
// scripts are loaded before anything is measured.
func warmup(ctx context.Context, m mutex, ops int) error {
	for i := 0; i < ops; i++ {
		err := m.lock(ctx)
		if errors.Is(err, errNotAcquired) {
			// The floor that returns at quorum cleans up nothing: a
			// straggling SET of an earlier warm-up Lock may have landed
			// after its release and hold servers until it expires. The
			// connections are warm all the same.
			continue
		}
		if err != nil {
			return fmt.Errorf("warm-up Lock: %w", err)
		}
		if err := m.unlock(ctx); err != nil {
			return fmt.Errorf("warm-up Unlock: %w", err)
		}
	}
	return nil
}

// closeSubjects closes every subject.
func closeSubjects(subjects []*subject) {
	for _, s := range subjects {
		s.close()
	}
}

// findSubject returns the index of the subject labelled label on n
// servers, or false when there is none.
func findSubject(subjects []*subject, label string, n int) (int, bool) {
	for i, s := range subjects {
		if s.label == label && s.n == n {
			return i, true
		}
	}
	return 0, false
}
