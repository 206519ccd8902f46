package redistest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// clusterSlots is the number of hash slots of a Redis Cluster.
const clusterSlots = 16384

// clusterAttempts is how many times StartCluster starts a cluster that
// does not form in time.
const clusterAttempts = 3

// Cluster is a Redis Cluster of masters without replicas, each a Server
// started in cluster mode on 127.0.0.1, with every hash slot assigned.
type Cluster struct {
	// Masters are the cluster's nodes; Masters[i] serves the i-th of
	// len(Masters) equal ranges of slots.
	Masters []*Server

	busPorts []int // busPorts[i] is the cluster bus port of Masters[i]
}

// StartCluster starts a Redis Cluster of the given number of masters and
// returns once every node says cluster_state:ok and knows every other node
// (about 2 s: a master waits that long after its start before it accepts
// writes). The nodes are stopped in t.Cleanup. Like Start, it skips the test
// when redis-server is not installed (or fails it with
// REDSYNC_REQUIRE_REDIS=1).
//
// The cluster has no replicas, so a killed master takes its slots down with
// it; a restarted master rejoins with its slots (it keeps its nodes.conf),
// empty.
func StartCluster(t testing.TB, masters int) *Cluster {
	t.Helper()
	bin := requireBinary(t)
	// A cluster that does not form in time (seen once in CI, on a loaded
	// machine: a node stayed at cluster_state:fail for 15 s) is started
	// anew, on new ports.
	var c *Cluster
	var err error
	for attempt := 1; attempt <= clusterAttempts; attempt++ {
		if c, err = newCluster(bin, masters); err == nil {
			break
		}
		if attempt < clusterAttempts {
			t.Logf("%v; starting the cluster anew", err)
		}
	}
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("%v", err)
		}
	})
	return c
}

// Addrs returns the addresses of the masters, in order: the seed addresses
// for a cluster client.
func (c *Cluster) Addrs() []string {
	return Addrs(c.Masters)
}

// Close stops every node (see Server.Close). Calling it more than once is
// harmless.
func (c *Cluster) Close() error {
	var errs []error
	for _, s := range c.Masters {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// newCluster starts the nodes one after the other and forms the cluster; on
// error nothing is left running.
func newCluster(bin string, masters int) (*Cluster, error) {
	if masters < 1 || masters > clusterSlots {
		return nil, fmt.Errorf("redistest: a cluster needs 1 to %d masters, not %d", clusterSlots, masters)
	}
	c := &Cluster{}
	for i := 0; i < masters; i++ {
		// The bus port is chosen here, not left at port+10000, which is
		// beyond 65535 for much of the ephemeral port range.
		bus, err := freePort()
		if err != nil {
			_ = c.Close()
			return nil, err
		}
		s, err := newServer(bin, withArgs(
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf", // in the server's directory
			"--cluster-port", strconv.Itoa(bus),
			"--cluster-announce-ip", "127.0.0.1",
		))
		if err != nil {
			_ = c.Close()
			return nil, err
		}
		c.Masters = append(c.Masters, s)
		c.busPorts = append(c.busPorts, bus)
	}
	if err := c.form(); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// form assigns the slots, introduces every node to the first, and waits
// until every node sees the whole cluster ok.
func (c *Cluster) form() error {
	n := len(c.Masters)
	for i, s := range c.Masters {
		first, last := i*clusterSlots/n, (i+1)*clusterSlots/n-1
		if err := do(s, "cluster", "addslotsrange", first, last); err != nil {
			return err
		}
	}
	for i := 1; i < n; i++ {
		if err := do(c.Masters[0], "cluster", "meet", "127.0.0.1", c.Masters[i].Port(), c.busPorts[i]); err != nil {
			return err
		}
	}
	for _, s := range c.Masters {
		client := s.NewClient()
		err := waitFor("cluster node "+s.Addr(), func(ctx context.Context) error {
			info, err := client.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			want := map[string]string{
				"cluster_state":       "ok",
				"cluster_slots_ok":    strconv.Itoa(clusterSlots),
				"cluster_known_nodes": strconv.Itoa(n),
			}
			var wrong []string
			for _, field := range []string{"cluster_state", "cluster_slots_ok", "cluster_known_nodes"} {
				if got, _ := infoField(info, field); got != want[field] {
					wrong = append(wrong, fmt.Sprintf("%s:%s, want %s", field, got, want[field]))
				}
			}
			if len(wrong) > 0 {
				return fmt.Errorf("CLUSTER INFO says %s", strings.Join(wrong, "; "))
			}
			return nil
		})
		_ = client.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// do sends one command to s on a client of its own and returns its error.
func do(s *Server, args ...any) error {
	client := s.NewClient()
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if err := client.Do(ctx, args...).Err(); err != nil {
		return fmt.Errorf("redistest: %s on %s: %w", strings.TrimSpace(fmt.Sprintln(args...)), s.Addr(), err)
	}
	return nil
}
