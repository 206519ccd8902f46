package redistest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The servers of a topology (cluster.go, sentinel.go) are ordinary Servers
// whose command line gets more than the defaults: a config file first and
// extra options last. Pause, Kill, Restart and Close work on them as on any
// other Server; a restarted node gets the same options again (and, for a
// cluster node, keeps its identity through its nodes.conf).

const (
	// formTimeout bounds how long a topology may take to form once its
	// servers run. A cluster master waits 2 s after its start before it
	// declares the cluster ok.
	formTimeout = 15 * time.Second
	// formPoll is the pause between checks while a topology forms.
	formPoll = 20 * time.Millisecond
)

// configure completes the command line of a server process: s.conf, when
// set, becomes a config file given as the first argument (the only place
// redis-server looks for one), and s.extraArgs follow the defaults. The
// config file is written anew at every start, so that a restarted server
// starts from the same configuration even where redis-server rewrote it (a
// sentinel does). s.env, when set, is added to the caller's environment.
func (s *Server) configure(cmd *exec.Cmd) error {
	if s.conf != "" {
		path := filepath.Join(s.dir, "redis.conf")
		if err := os.WriteFile(path, []byte(s.conf), 0o600); err != nil {
			return fmt.Errorf("redistest: %w", err)
		}
		cmd.Args = append([]string{cmd.Args[0], path}, cmd.Args[1:]...)
	}
	cmd.Args = append(cmd.Args, s.extraArgs...)
	if len(s.env) > 0 {
		cmd.Env = append(os.Environ(), s.env...)
	}
	return nil
}

// withArgs is a newServer option that appends redis-server options.
func withArgs(args ...string) func(*Server) {
	return func(s *Server) {
		s.extraArgs = append(s.extraArgs, args...)
	}
}

// withConf is a newServer option that gives the server a config file with
// the given content.
func withConf(conf string) func(*Server) {
	return func(s *Server) {
		s.conf = conf
	}
}

// requireBinary returns the redis-server binary, or skips (or fails, with
// REDSYNC_REQUIRE_REDIS=1) the test as Start does.
func requireBinary(t testing.TB) string {
	t.Helper()
	bin, err := findBinary()
	if err != nil {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("redistest: %v (%s=1 is set, so this is an error)", err, EnvRequire)
		}
		t.Skipf("redistest: %v (set %s=1 to make this an error)", err, EnvRequire)
	}
	return bin
}

// waitFor calls check every formPoll until it returns nil, and returns its
// last error if formTimeout passes first. what names the wait in the error.
func waitFor(what string, check func(ctx context.Context) error) error {
	deadline := time.Now().Add(formTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		err := check(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redistest: %s: not ready after %v: %w", what, formTimeout, err)
		}
		time.Sleep(formPoll)
	}
}

// infoField returns the value of field in the text of an INFO reply.
func infoField(info, field string) (string, bool) {
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return v, true
		}
	}
	return "", false
}
