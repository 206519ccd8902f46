package suite

import (
	"testing"

	goredislib "github.com/redis/go-redis/v9"
)

// A mixed fleet: during a migration, services on redsync v4 and on this
// library lock the same names on the same servers. peerName is the other
// library (side files): this library on the redsync side, redsync v4 on
// this library's side.

// peerClients returns clients of the peer on f's servers.
func peerClients(t *testing.T, f *fleet) []*goredislib.Client {
	t.Helper()
	clients := make([]*goredislib.Client, len(f.servers))
	for i, s := range f.servers {
		clients[i] = s.NewClient()
		c := clients[i]
		t.Cleanup(func() { _ = c.Close() })
	}
	t.Cleanup(settlePeers) // before the clients close
	return clients
}

func TestMixedFleetExcludesEachOther(t *testing.T) {
	f := newFleet(t, 3)
	peers := peerClients(t, f)
	name := uniqueName(t)

	m := f.rs.NewMutex(name)
	if err := m.Lock(); err != nil {
		t.Fatal(err)
	}
	p := newPeer(peers, name, 1)
	if err := p.TryLock(); err == nil {
		t.Fatalf("%s's TryLock succeeded while %s held the lock", peerName, side)
	}
	if ok, err := m.Unlock(); !ok || err != nil {
		t.Fatalf("Unlock = %v, %v", ok, err)
	}
	settle(f.rs)
	if err := p.TryLock(); err != nil {
		t.Fatalf("%s's TryLock after %s's Unlock: %v", peerName, side, err)
	}
	if _, taken := takenNodes(f.rs.NewMutex(name).TryLock()); !taken {
		t.Errorf("%s's TryLock while %s held the lock was not refused with *ErrTaken", side, peerName)
	}
	if ok, err := p.Extend(); !ok || err != nil {
		t.Errorf("%s's Extend = %v, %v", peerName, ok, err)
	}
	if ok, err := p.Unlock(); !ok || err != nil {
		t.Fatalf("%s's Unlock = %v, %v", peerName, ok, err)
	}
	settlePeers()
	if on := f.withKey(t, name); len(on) != 0 {
		t.Errorf("after both released, the key is on %v", on)
	}
}

func TestMixedFleetWaitersGetTheLockFromTheOtherLibrary(t *testing.T) {
	t.Run("ThisSideWaits", func(t *testing.T) {
		f := newFleet(t, 3)
		name := uniqueName(t)
		p := newPeer(peerClients(t, f), name, 1)
		if err := p.Lock(); err != nil {
			t.Fatal(err)
		}
		m := f.rs.NewMutex(name)
		locked := make(chan error, 1)
		go func() { locked <- m.Lock() }()
		pause(100)
		if ok, err := p.Unlock(); !ok || err != nil {
			t.Fatalf("%s's Unlock = %v, %v", peerName, ok, err)
		}
		if err := within(t, "Lock", func() error { return <-locked }); err != nil {
			t.Fatalf("%s's Lock after %s's Unlock: %v", side, peerName, err)
		}
		if ok, err := m.Unlock(); !ok || err != nil {
			t.Fatalf("Unlock = %v, %v", ok, err)
		}
	})
	t.Run("PeerWaits", func(t *testing.T) {
		f := newFleet(t, 3)
		name := uniqueName(t)
		m := f.rs.NewMutex(name)
		if err := m.Lock(); err != nil {
			t.Fatal(err)
		}
		p := newPeer(peerClients(t, f), name, 32)
		locked := make(chan error, 1)
		go func() { locked <- p.Lock() }()
		pause(100)
		if ok, err := m.Unlock(); !ok || err != nil {
			t.Fatalf("Unlock = %v, %v", ok, err)
		}
		if err := within(t, peerName+"'s Lock", func() error { return <-locked }); err != nil {
			t.Fatalf("%s's Lock after %s's Unlock: %v", peerName, side, err)
		}
		if ok, err := p.Unlock(); !ok || err != nil {
			t.Fatalf("%s's Unlock = %v, %v", peerName, ok, err)
		}
	})
}
