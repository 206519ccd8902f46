//go:build unix && !linux

package redistest

import "syscall"

// sysProcAttr puts the server in its own process group, so that signals sent
// to the test's process group (e.g. Ctrl-C) do not reach it. Unlike on Linux,
// the server is not killed automatically if the test binary dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
