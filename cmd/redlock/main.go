// Command redlock runs a program under a lock held on a quorum of Redis
// servers (Redlock), so that it runs once across a fleet of machines: a
// cron job that must run once per fleet, a deploy step that must not
// overlap another, a worker that only the leader runs.
//
//	redlock run   -addrs h1:6379,h2:6379,h3:6379 -name nightly-report -try -- ./report.sh --full
//	redlock elect -addrs ... -name billing-leader -value "$(hostname)" -respawn -- ./billing-worker
//	redlock check -addrs ...
//	redlock status -addrs ... -name nightly-report
//
// The lock is this module's Mutex, kept alive while the program runs
// (Mutex.KeepAlive); when it is lost, the program's process group is sent
// SIGTERM at once and SIGKILL after -grace. `redlock -h` lists the flags,
// the environment and the exit codes; README.md ("From the shell") has a
// crontab line.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	goredislib "github.com/redis/go-redis/v9"
)

func main() {
	// go-redis logs failed dials; redlock says itself what failed.
	goredislib.SetLogger(silentLogger{})
	os.Exit(redlock(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// redlock runs the command line args (without the program name) and
// returns the exit status.
func redlock(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	case "run":
		err = runCommand(ctx, args[1:], stdout, stderr)
	case "elect":
		err = electCommand(ctx, args[1:], stdout, stderr)
	case "check":
		err = checkCommand(ctx, args[1:], stdout, stderr)
	case "status":
		err = statusCommand(ctx, args[1:], stdout, stderr)
	default:
		err = usageErrorf("unknown command %q: want run, elect, check or status (redlock -h tells more)", args[0])
	}
	return exitStatus(err, stderr)
}

// exitStatus prints err, if it has anything to say, and returns the exit
// status it stands for.
func exitStatus(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var e *exitError
	if !errors.As(err, &e) {
		fmt.Fprintf(stderr, "redlock: %v\n", err)
		return exitUsage
	}
	if e.msg != "" {
		fmt.Fprintf(stderr, "redlock: %s\n", e.msg)
	}
	return e.code
}

// silentLogger drops go-redis' log lines.
type silentLogger struct{}

func (silentLogger) Printf(context.Context, string, ...any) {}
