//go:build linux

package redistest

import "syscall"

// sysProcAttr puts the server in its own process group, so that signals sent
// to the test's process group (e.g. Ctrl-C) do not reach it, and has the
// kernel SIGKILL it if the test binary dies without cleaning up.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
