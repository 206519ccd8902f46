package redistest

import (
	"os/exec"
	"slices"
	"testing"
)

// A server's environment cannot be read back from /proc: redis-server
// writes its process title over it. What reaches the process is what
// configure puts on its command, at every start.
func TestWithEnvAddsToTheCallersEnvironment(t *testing.T) {
	t.Setenv("REDISTEST_CALLER", "kept")
	s := &Server{}
	withEnv("REDISTEST_SERVER=1")(s)
	cmd := exec.Command("redis-server")
	if err := s.configure(cmd); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"REDISTEST_CALLER=kept", "REDISTEST_SERVER=1"} {
		if !slices.Contains(cmd.Env, want) {
			t.Errorf("the server's environment lacks %s", want)
		}
	}
	plain := exec.Command("redis-server")
	if err := (&Server{}).configure(plain); err != nil {
		t.Fatal(err)
	}
	if plain.Env != nil {
		t.Errorf("a server without an environment of its own gets %d variables, want the caller's (nil)", len(plain.Env))
	}
}
