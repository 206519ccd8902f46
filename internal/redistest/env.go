package redistest

// StartServersWithEnv is StartServersWithArgs for servers whose processes
// get environment variables of their own on top of the caller's: env(i)
// gives server i's, as "KEY=value" strings (a library to preload, say). A
// restarted server gets them again.
func StartServersWithEnv(n int, env func(i int) []string, args ...string) ([]*Server, func(), error) {
	return startServers(n, func(i int) []func(*Server) {
		return []func(*Server){withArgs(args...), withEnv(env(i)...)}
	})
}

// withEnv is a newServer option that adds environment variables to the
// server's processes.
func withEnv(env ...string) func(*Server) {
	return func(s *Server) {
		s.env = append(s.env, env...)
	}
}
