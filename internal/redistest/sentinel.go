package redistest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// SentinelMaster is the name under which a Sentinel monitors its master.
const SentinelMaster = "mymaster"

// sentinelDownAfter is how long the sentinel waits for a master that does
// not answer before it considers it down and fails over to the replica.
const sentinelDownAfter = time.Second

// Sentinel is a master, one replica of it and one sentinel process
// monitoring them under the name SentinelMaster, with a quorum of 1.
//
// The sentinel fails over to the replica when the master has not answered
// for a second (killed, or paused that long); replication is asynchronous,
// so writes the replica had not received by then are lost, as in
// production.
type Sentinel struct {
	Master   *Server
	Replica  *Server
	Sentinel *Server // a redis-server started with --sentinel
}

// StartSentinel starts a master, a replica (REPLICAOF the master) and a
// sentinel, and returns once the replica is in sync and the sentinel knows
// the master (and its replica). The processes are stopped in t.Cleanup.
// Like Start, it skips the test when redis-server is not installed (or fails
// it with REDSYNC_REQUIRE_REDIS=1).
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	bin := requireBinary(t)
	s, err := newSentinel(bin)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("%v", err)
		}
	})
	return s
}

// Close stops the three processes (see Server.Close). Calling it more than
// once is harmless.
func (s *Sentinel) Close() error {
	var errs []error
	for _, srv := range []*Server{s.Sentinel, s.Replica, s.Master} {
		if srv != nil {
			errs = append(errs, srv.Close())
		}
	}
	return errors.Join(errs...)
}

// newSentinel starts the three processes; on error nothing is left running.
func newSentinel(bin string) (*Sentinel, error) {
	s := &Sentinel{}
	fail := func(err error) (*Sentinel, error) {
		_ = s.Close()
		return nil, err
	}
	var err error
	// Without a delay before a diskless full sync, the replica is in sync
	// at once instead of after 5 s.
	if s.Master, err = newServer(bin, withArgs("--repl-diskless-sync-delay", "0")); err != nil {
		return fail(err)
	}
	masterPort := strconv.Itoa(s.Master.Port())
	if s.Replica, err = newServer(bin, withArgs("--replicaof", "127.0.0.1", masterPort)); err != nil {
		return fail(err)
	}
	if err := waitInSync(s.Replica); err != nil {
		return fail(err)
	}
	conf := fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]s 1\n"+
		"sentinel down-after-milliseconds %[1]s %[3]d\n"+
		"sentinel failover-timeout %[1]s %[4]d\n",
		SentinelMaster, masterPort, sentinelDownAfter.Milliseconds(), (5 * sentinelDownAfter).Milliseconds())
	if s.Sentinel, err = newServer(bin, withConf(conf), withArgs("--sentinel")); err != nil {
		return fail(err)
	}
	if err := s.waitMonitored(); err != nil {
		return fail(err)
	}
	return s, nil
}

// waitInSync waits until replica reports its link to the master up.
func waitInSync(replica *Server) error {
	client := replica.NewClient()
	defer client.Close()
	return waitFor("replica "+replica.Addr(), func(ctx context.Context) error {
		info, err := client.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if status, _ := infoField(info, "master_link_status"); status != "up" {
			return fmt.Errorf("master_link_status:%s, want up", status)
		}
		return nil
	})
}

// waitMonitored waits until the sentinel has reached the master and learnt
// of the replica from it.
func (s *Sentinel) waitMonitored() error {
	client := redis.NewSentinelClient(&redis.Options{
		Addr:            s.Sentinel.Addr(),
		DialTimeout:     probeTimeout,
		ReadTimeout:     probeTimeout,
		WriteTimeout:    probeTimeout,
		MaxRetries:      -1,
		DisableIdentity: true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	})
	defer client.Close()
	return waitFor("sentinel "+s.Sentinel.Addr(), func(ctx context.Context) error {
		master, err := client.Master(ctx, SentinelMaster).Result()
		if err != nil {
			return err
		}
		if master["flags"] != "master" || master["port"] != strconv.Itoa(s.Master.Port()) || master["num-slaves"] != "1" {
			return fmt.Errorf("SENTINEL MASTER %s: flags=%q port=%q num-slaves=%q, want master, %d, 1",
				SentinelMaster, master["flags"], master["port"], master["num-slaves"], s.Master.Port())
		}
		return nil
	})
}
