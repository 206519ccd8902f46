//go:build unix && !linux

package main

import "syscall"

// childProcAttr puts the command in a process group of its own. Unlike on
// Linux, a command whose redlock is killed with SIGKILL goes on running.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
