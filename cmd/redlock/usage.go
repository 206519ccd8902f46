package main

// usage is what redlock -h prints. README.md ("From the shell") shows it,
// and a test keeps the two the same.
const usage = `redlock runs a command under a lock held on a quorum of Redis servers
(Redlock), so that it runs once across a fleet of machines.

Usage:
  redlock run    -name NAME [-wait D | -try] [flags] -- command [args...]
  redlock elect  -name NAME [-value V] [-respawn] [flags] -- command [args...]
  redlock check  [flags]
  redlock status -name NAME [flags]

  run     waits for the lock, runs the command while keeping the lock
          alive, and releases it when the command ends
  elect   campaigns to lead NAME, and runs the command while leading; with
          -respawn, campaigns again when the command exits
  check   checks the servers against what the lock assumes, as a table
  status  shows per server who holds NAME and for how long, its fencing
          counter, the waiters listening and the fleet queue's length

Servers: -addrs host:port,... (or $REDLOCK_ADDRS), one per independent
server; -user NAME with the password in $REDLOCK_PASSWORD (never a flag);
-db N; -tls, with -cacert FILE, -cert FILE and -key FILE.

The command gets $REDLOCK_NAME, $REDLOCK_UNTIL (when the lock expires
unless extended, as it stood at the start, RFC 3339) and, with -fencing,
$REDLOCK_TOKEN. It runs in a process group of its own: when the lock is
lost, the group is sent SIGTERM at once and SIGKILL after -grace; SIGINT,
SIGTERM and SIGHUP sent to redlock are passed on to it. The lock is
released when the command ends, however it ends.

Exit status (run, elect):
  121    not acquired: another holder has the lock (-try, or -wait ran out)
  122    the lock was lost while the command ran
  123    servers unreachable or refusing: no quorum answered
  125    bad usage: a flag, the name or the command line is wrong
  126    the command cannot be run
  127    the command was not found
  128+N  redlock got signal N while waiting, or the command was killed by N
  other  the command's own exit status
check exits 0 when nothing is wrong and 1 when something is; status exits
0 when a quorum answered; both exit 123 and 125 as above.

"redlock COMMAND -h" lists the flags of COMMAND.
`
