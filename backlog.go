package redsync

import "github.com/quorumlock/redsync/internal/quorum"

// nodeState tells whether a server is backlogged: many requests sent to it
// and none answered within the per-server deadline (see quorum.NodeState).
// Rounds spare a backlogged server the requests that are not needed (see
// round's skip): an acquire or extension not sent cannot set anything
// there.
type nodeState = quorum.NodeState

// backlogMin is the number of requests waiting for a server from which it
// may count as backlogged (see ErrBacklogged).
const backlogMin = quorum.BacklogMin
