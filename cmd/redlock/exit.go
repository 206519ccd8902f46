package main

import (
	"fmt"
	"syscall"
)

// The exit codes of redlock's own, beside the command's (see usage). They
// sit below the shell's 126 (found but not runnable), 127 (not found) and
// 128+N (killed by signal N), which mean here what they mean to a shell,
// and apart from timeout(1)'s 124 and the 125 that timeout, env and nohup
// use for a failure of their own: here bad usage. flock -n exits 1 when
// the lock is taken, which cannot be told from a command's own failure;
// these can.
const (
	exitNotAcquired = 121 // another holder has the lock: -try, or -wait ran out
	exitLost        = 122 // the lock was lost while the command ran
	exitUnreachable = 123 // fewer than a quorum of servers answered, or they refused
	exitUsage       = 125 // a flag, the name or the command line is wrong
	exitCannotRun   = 126 // the command was found but cannot be run
	exitNotFound    = 127 // the command was not found
	exitFindings    = 1   // check: something is wrong
)

// exitSignal is the exit status for signal sig, as a shell reports a
// command killed by it.
func exitSignal(sig syscall.Signal) int {
	return 128 + int(sig)
}

// An exitError ends redlock with code, after printing msg (when not
// empty) on stderr.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string {
	if e.msg == "" {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.msg
}

// exitf returns an exitError with code and a message.
func exitf(code int, format string, args ...any) error {
	return &exitError{code: code, msg: fmt.Sprintf(format, args...)}
}

// usageErrorf returns an exitError for bad usage.
func usageErrorf(format string, args ...any) error {
	return exitf(exitUsage, format, args...)
}
