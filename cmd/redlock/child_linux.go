//go:build linux

package main

import "syscall"

// childProcAttr puts the command in a process group of its own and has
// the kernel SIGKILL it when redlock dies without stopping it (a SIGKILL
// of redlock, say): a command must not run on without the lock kept alive.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
