//go:build !unix

package main

import (
	"errors"
	"syscall"
)

// errPlatform: run and elect signal process groups, which only Unix
// systems have.
var errPlatform = errors.New("redlock run and elect need a Unix system (process groups)")

func signalProcessGroup(int, syscall.Signal) error { return errPlatform }

func childProcAttr() *syscall.SysProcAttr { return nil }
