package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// A child is the command redlock runs, the leader of a process group of
// its own, so that a signal reaches everything it started (a pipeline of
// sh -c, say) and none of redlock's siblings.
type child struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the command has exited and err is set
	err  error         // cmd.Wait's
}

// startChild starts argv with env added to redlock's environment. A
// command that cannot be started is an exitError: exitNotFound or
// exitCannotRun, as a shell reports them.
func startChild(argv []string, env []string) (*child, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	// The files themselves, not copies through pipes: the command writes
	// where redlock would, and Wait has no copying to wait for.
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return nil, exitf(exitNotFound, "%s: command not found (%v)", argv[0], err)
		}
		return nil, exitf(exitCannotRun, "%s: cannot run the command: %v", argv[0], err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// signalGroup sends sig to the command's process group. A group with
// nobody left in it is no error.
func (c *child) signalGroup(sig syscall.Signal) error {
	err := signalProcessGroup(c.cmd.Process.Pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// exitCode is the command's exit status once it has exited, 128+N when a
// signal N killed it.
func (c *child) exitCode() int {
	state := c.cmd.ProcessState
	if state == nil {
		return exitCannotRun
	}
	if code := state.ExitCode(); code >= 0 {
		return code
	}
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return exitSignal(ws.Signal())
	}
	return exitCannotRun
}

// supervision is how a child is watched over while it runs under a lock.
type supervision struct {
	held   context.Context  // cancelled when the lock is lost
	sigs   <-chan os.Signal // signals redlock receives, passed on to the command
	grace  time.Duration    // from SIGTERM to SIGKILL once the lock is lost
	stderr io.Writer
	quiet  bool
}

// outcome is how a supervised command ended.
type outcome struct {
	code     int  // the command's exit status
	lost     bool // the lock was lost while it ran
	signaled bool // redlock received a signal and passed it on
}

// supervise waits for the command to exit, passing on the signals of
// s.sigs to its process group. When s.held is cancelled (the lock is
// lost), it sends the group SIGTERM at once and SIGKILL after s.grace.
func (c *child) supervise(s supervision) outcome {
	var kill <-chan time.Time
	var out outcome
	held := s.held.Done()
	for {
		select {
		case <-c.done:
			if out.lost {
				// Nothing the command started may go on without the
				// lock: what is left of its group goes now.
				_ = c.signalGroup(syscall.SIGKILL)
			}
			out.code = c.exitCode()
			return out
		case sig := <-s.sigs:
			out.signaled = true
			if num, ok := sig.(syscall.Signal); ok {
				if err := c.signalGroup(num); err != nil {
					fmt.Fprintf(s.stderr, "redlock: passing %v on to the command: %v\n", sig, err)
				}
			}
		case <-held:
			held, out.lost = nil, true
			fmt.Fprintf(s.stderr, "redlock: %v; sending SIGTERM to the command, SIGKILL in %v\n", context.Cause(s.held), s.grace)
			if err := c.signalGroup(syscall.SIGTERM); err != nil {
				fmt.Fprintf(s.stderr, "redlock: SIGTERM: %v\n", err)
			}
			timer := time.NewTimer(s.grace)
			defer timer.Stop()
			kill = timer.C
		case <-kill:
			kill = nil
			if !s.quiet {
				fmt.Fprintf(s.stderr, "redlock: the command is still running %v after SIGTERM; sending SIGKILL\n", s.grace)
			}
			if err := c.signalGroup(syscall.SIGKILL); err != nil {
				fmt.Fprintf(s.stderr, "redlock: SIGKILL: %v\n", err)
			}
		}
	}
}
