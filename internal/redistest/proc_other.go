//go:build !unix

package redistest

import (
	"errors"
	"os"
	"syscall"
)

// errNoPause is returned by Pause and Resume where SIGSTOP/SIGCONT do not
// exist.
var errNoPause = errors.New("pausing a process is not supported on this OS")

// sysProcAttr returns the default process attributes.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// stopProcess is not supported on this OS.
func stopProcess(*os.Process) error { return errNoPause }

// continueProcess is not supported on this OS.
func continueProcess(*os.Process) error { return errNoPause }
