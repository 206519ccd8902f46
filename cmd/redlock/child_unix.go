//go:build unix

package main

import "syscall"

// signalProcessGroup sends sig to the process group pgid.
func signalProcessGroup(pgid int, sig syscall.Signal) error {
	return syscall.Kill(-pgid, sig)
}

// errPlatform is what keeps run and elect from working here: nothing.
var errPlatform error
