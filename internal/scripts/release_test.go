package scripts

import (
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

const (
	lockKey    = "lock"
	queueKey   = "lock:q"
	entriesKey = "lock:w"
)

// fleetKeys are the keys of Release and AcquireQueued in these tests.
var fleetKeys = []string{lockKey, queueKey, entriesKey, fenceKey}

// queue queues value with ticket and lease through AcquireQueued, which
// must not acquire.
func (s *server) queue(value string, ticket int64, lease time.Duration) {
	s.t.Helper()
	got, err := ParseAcquireAfterWait(s.run(AcquireQueued, fleetKeys, value, int64(7000), ticket, lease.Milliseconds(), "", int64(0)))
	if err != nil {
		s.t.Fatal(err)
	}
	if got.Acquired {
		s.t.Fatalf("%s acquired the lock instead of queueing", value)
	}
}

// queued returns the values queued, in order.
func (s *server) queued() []string {
	s.t.Helper()
	values, err := s.rdb.ZRange(s.ctx, queueKey, 0, -1).Result()
	if err != nil {
		s.t.Fatal(err)
	}
	return values
}

// del deletes key.
func (s *server) hset(key, field, value string) {
	s.t.Helper()
	if err := s.rdb.HSet(s.ctx, key, field, value).Err(); err != nil {
		s.t.Fatal(err)
	}
}

func (s *server) del(key string) {
	s.t.Helper()
	if err := s.rdb.Del(s.ctx, key).Err(); err != nil {
		s.t.Fatal(err)
	}
}

// subscribe subscribes to channel until the test ends and returns the
// payloads of its messages, once the server confirmed the subscription.
func (s *server) subscribe(channel string) <-chan string {
	s.t.Helper()
	return s.listen(s.rdb.Subscribe(s.ctx, channel))
}

// sSubscribe is subscribe for a sharded channel (SSUBSCRIBE).
func (s *server) sSubscribe(channel string) <-chan string {
	s.t.Helper()
	return s.listen(s.rdb.SSubscribe(s.ctx, channel))
}

// pSubscribe is subscribe for a pattern (PSUBSCRIBE): it hears what is
// PUBLISHed on the channels the pattern matches, but PUBSUB NUMSUB does
// not count it.
func (s *server) pSubscribe(pattern string) <-chan string {
	s.t.Helper()
	return s.listen(s.rdb.PSubscribe(s.ctx, pattern))
}

// listen returns the payloads of ps's messages once the server confirmed
// its subscription, and closes ps when the test ends.
func (s *server) listen(ps *goredis.PubSub) <-chan string {
	s.t.Helper()
	s.t.Cleanup(func() { _ = ps.Close() })
	if _, err := ps.Receive(s.ctx); err != nil {
		s.t.Fatal(err)
	}
	payloads := make(chan string, 8)
	go func() {
		for msg := range ps.Channel() {
			payloads <- msg.Payload
		}
	}()
	return payloads
}

func TestReleaseOnRedis(t *testing.T) {
	s := newServer(t)
	tests := []struct {
		name      string
		held      string // the key's value before, "" for missing
		waiters   []string
		dead      string // a waiter queued first, whose lease ends before the release
		oom       bool
		runOver   bool // the server has handed over for longer than the run
		want      ReleaseReply
		wantValue string // the key's value after, "" for deleted
		wantQueue []string
	}{
		{name: "missing", want: ReleaseMissing},
		{name: "other value", held: "other", waiters: []string{"a"}, want: ReleaseOtherValue, wantValue: "other", wantQueue: []string{"a"}},
		{name: "nobody queues", held: "mine", want: ReleaseReleased},
		{name: "hands to the first waiter", held: "mine", waiters: []string{"a", "b"}, want: ReleaseHanded, wantValue: "a", wantQueue: []string{"b"}},
		{name: "skips a waiter whose lease ended", held: "mine", dead: "d", waiters: []string{"a"}, want: ReleaseHanded, wantValue: "a"},
		{name: "only dead waiters", held: "mine", dead: "d", want: ReleaseReleased},
		{name: "a run of hand-overs ends with a free key", held: "mine", waiters: []string{"a"}, runOver: true, want: ReleaseReleased, wantQueue: []string{"a"}},
		{name: "a waiter that gives up leaves the queue", held: "other", waiters: []string{"mine", "a"}, want: ReleaseOtherValue, wantValue: "other", wantQueue: []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := s.in(t)
			s.flush()
			channel := "channel{" + lockKey + "}:" + tt.name
			s.set(lockKey, "holder", time.Minute) // the waiters queue behind it
			if tt.dead != "" {
				s.queue(tt.dead, 1, time.Millisecond)
			}
			for i, w := range tt.waiters {
				s.queue(w, int64(10+i), time.Minute)
			}
			if tt.held != "" {
				s.set(lockKey, tt.held, time.Minute)
			} else {
				s.del(lockKey)
			}
			if tt.runOver {
				s.hset(entriesKey, "redsync:run", "0")
			}
			messages := s.sSubscribe(channel)
			time.Sleep(5 * time.Millisecond) // the dead waiter's lease ends
			if tt.oom {
				defer s.outOfMemory()()
			}
			got, err := ParseRelease(s.run(Release, fleetKeys, "mine", "classic:"+tt.name, int64(1000), int64(30), channel))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("reply %d, want %d", got, tt.want)
			}
			value, ttl := s.get(lockKey)
			if value != tt.wantValue {
				t.Errorf("the key holds %q, want %q", value, tt.wantValue)
			}
			if got == ReleaseHanded && (ttl <= 0 || ttl > 7*time.Second) {
				t.Errorf("the waiter's key lives %v, want its own expiry, 7 s", ttl)
			}
			if q := s.queued(); strings.Join(q, ",") != strings.Join(tt.wantQueue, ",") {
				t.Errorf("queued %q, want %q", q, tt.wantQueue)
			}
			switch got {
			case ReleaseHanded:
				msg := <-messages
				waited, value, ok := strings.Cut(strings.TrimPrefix(msg, "h"), ":")
				if ms, err := strconv.Atoi(waited); !ok || err != nil || ms < 0 || ms > 10000 || value != tt.wantValue || msg[0] != 'h' {
					t.Errorf("announced %q, want h<waited ms>:%s", msg, tt.wantValue)
				}
			case ReleaseReleased:
				if msg := <-messages; msg != "" {
					t.Errorf("announced %q, want an empty message", msg)
				}
			}
		})
	}
}

// TestReleaseChoosesItsChannels checks which channels carry a release:
// the sharded one where the server has SPUBLISH, the classic one where it
// has not (a server before Redis 7, made here by renaming SPUBLISH away),
// where there is no sharded channel, or while a connection of the server
// subscribes to the classic channel.
func TestReleaseChoosesItsChannels(t *testing.T) {
	servers := map[bool]*server{true: newServer(t), false: newServerWithArgs(t, "--rename-command", "SPUBLISH", "")}
	tests := []struct {
		name              string
		spublish          bool // the server has SPUBLISH
		sharded           bool // the script is given a sharded channel
		classicListener   bool // a connection subscribes to the classic channel
		wantSharded, want bool // the sharded, the classic channel carries it
	}{
		{name: "sharded", spublish: true, sharded: true, wantSharded: true},
		{name: "sharded, and a classic listener", spublish: true, sharded: true, classicListener: true, wantSharded: true, want: true},
		{name: "no sharded channel", spublish: true, want: true},
		{name: "no SPUBLISH", sharded: true, want: true},
		{name: "no SPUBLISH, a classic listener", sharded: true, classicListener: true, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := servers[tt.spublish].in(t)
			s.flush()
			classic, sharded := "released:"+tt.name, "released{"+lockKey+"}"
			s.set(lockKey, "mine", time.Minute)
			heardClassic := s.pSubscribe("released:*") // uncounted by NUMSUB
			if tt.classicListener {
				s.subscribe(classic)
			}
			var heardSharded <-chan string
			if tt.spublish {
				heardSharded = s.sSubscribe(sharded)
			}
			arg := ""
			if tt.sharded {
				arg = sharded
			}
			if got, err := ParseRelease(s.run(Release, fleetKeys, "mine", classic, int64(1000), int64(30), arg)); err != nil || got != ReleaseReleased {
				t.Fatalf("reply %d, %v", got, err)
			}
			// A message published after the script's reaches each
			// connection after what the script published.
			if err := s.rdb.Publish(s.ctx, classic, "end").Err(); err != nil {
				t.Fatal(err)
			}
			got := heardBeforeEnd(t, heardClassic)
			gotSharded := false
			if tt.spublish {
				if err := s.rdb.SPublish(s.ctx, sharded, "end").Err(); err != nil {
					t.Fatal(err)
				}
				gotSharded = heardBeforeEnd(t, heardSharded)
			}
			if gotSharded != tt.wantSharded || got != tt.want {
				t.Errorf("heard on the sharded channel %v, on the classic %v; want %v, %v", gotSharded, got, tt.wantSharded, tt.want)
			}
		})
	}
}

// heardBeforeEnd reports whether payloads carries an empty message (a
// release's) before "end".
func heardBeforeEnd(t *testing.T, payloads <-chan string) bool {
	t.Helper()
	heard := false
	for p := range payloads {
		if p == "end" {
			return heard
		}
		heard = heard || p == ""
	}
	t.Fatal("the subscription ended")
	return false
}

func TestAcquireQueuedOnRedis(t *testing.T) {
	s := newServer(t)
	acquire := func(s *server, value string, ticket int64) AcquireReply {
		s.t.Helper()
		got, err := ParseAcquireAfterWait(s.run(AcquireQueued, fleetKeys, value, int64(7000), ticket, int64(60000), "", int64(0)))
		if err != nil {
			s.t.Fatal(err)
		}
		return got
	}
	t.Run("free", func(t *testing.T) {
		s := s.in(t)
		s.flush()
		if got := acquire(s, "a", 1); !got.Acquired {
			t.Errorf("%+v, want acquired", got)
		}
	})
	t.Run("held: queues in ticket order", func(t *testing.T) {
		s := s.in(t)
		s.flush()
		s.set(lockKey, "holder", time.Minute)
		for _, w := range []struct {
			value  string
			ticket int64
		}{{"c", 30}, {"a", 10}, {"b", 20}, {"a", 10}} {
			if got := acquire(s, w.value, w.ticket); got.Acquired || got.TTL <= 0 {
				t.Errorf("%s: %+v, want refused with the key's TTL", w.value, got)
			}
		}
		if q := s.queued(); strings.Join(q, ",") != "a,b,c" {
			t.Errorf("queued %q", q)
		}
	})
	t.Run("free, but a live waiter is ahead", func(t *testing.T) {
		s := s.in(t)
		s.flush()
		s.set(lockKey, "holder", time.Minute)
		acquire(s, "a", 10)
		s.del(lockKey)
		if got := acquire(s, "b", 20); got.Acquired || got.TTL != -1 {
			t.Errorf("b: %+v, want refused, TTL unknown", got)
		}
		if got := acquire(s, "a", 10); !got.Acquired {
			t.Errorf("a: %+v, want acquired", got)
		}
		if q := s.queued(); strings.Join(q, ",") != "b" {
			t.Errorf("queued %q, want b alone", q)
		}
	})
	t.Run("free, in an outsiders' window", func(t *testing.T) {
		s := s.in(t)
		s.flush()
		s.set(lockKey, "mine", time.Minute)
		acquire(s, "a", 10)
		s.hset(entriesKey, "redsync:run", "0")
		if got, err := ParseRelease(s.run(Release, fleetKeys, "mine", "ch", int64(1000), int64(5000), "")); err != nil || got != ReleaseReleased {
			t.Fatalf("release: %v, %v; want the key left free", got, err)
		}
		if got := acquire(s, "a", 10); got.Acquired || got.TTL <= 0 || got.TTL > 5*time.Second {
			t.Errorf("a: %+v, want refused with the window's time left", got)
		}
		if set, err := s.rdb.SetNX(s.ctx, lockKey, "outsider", time.Minute).Result(); err != nil || !set {
			t.Errorf("SET NX: %v, %v; want the key for a Lock that does not queue", set, err)
		}
	})
	t.Run("handed already: refreshed", func(t *testing.T) {
		s := s.in(t)
		s.flush()
		s.set(lockKey, "a", time.Second)
		if got := acquire(s, "a", 10); !got.Acquired {
			t.Errorf("%+v, want acquired", got)
		}
		if _, ttl := s.get(lockKey); ttl <= time.Second {
			t.Errorf("the key lives %v, want the expiry again", ttl)
		}
	})
}

func TestParseReleaseRefusesOtherReplies(t *testing.T) {
	for _, reply := range []any{int64(3), int64(-2), "OK", nil, 1, []byte("1")} {
		_, err := ParseRelease(reply)
		if err == nil {
			t.Errorf("ParseRelease(%#v) gave no error", reply)
		}
	}
	_, err := ParseRelease(int64(3))
	wantError(t, err, "redsync: unexpected reply 3 to the release script")
	for want := ReleaseMissing; want <= ReleaseHanded; want++ {
		if got, err := ParseRelease(int64(want)); got != want || err != nil {
			t.Errorf("ParseRelease(%d) = %d, %v", want, got, err)
		}
	}
}

func TestFencedWaitersQueueAndAreHandedAFloor(t *testing.T) {
	s := newServer(t)
	acquire := func(s *server, value string, ticket int64, mode string) any {
		s.t.Helper()
		return s.run(AcquireQueued, fleetKeys, value, int64(7000), ticket, int64(60000), mode, int64(60000))
	}
	t.Run("free: the counter and the clock", func(t *testing.T) {
		s := s.in(t)
		s.flush()
		s.set(fenceKey, "41", 0)
		got, err := ParseFencedAcquire(acquire(s, "a", 1, "f"))
		if err != nil || !got.Acquired || got.Counter != 41 || got.Clock == 0 {
			t.Errorf("%+v, %v; want acquired with counter 41 and a clock", got, err)
		}
	})
	t.Run("free on a single server: the token, stored", func(t *testing.T) {
		s := s.in(t)
		s.flush()
		s.set(fenceKey, "99999999999999999", 0)
		got, err := ParseFencedAcquire(acquire(s, "a", 1, "1"))
		if err != nil || !got.Acquired || got.Stored != 100000000000000000 {
			t.Errorf("%+v, %v; want the token one past the counter, stored", got, err)
		}
		if v, _ := s.get(fenceKey); v != "100000000000000000" {
			t.Errorf("the counter holds %q", v)
		}
	})
	t.Run("a counter key in use", func(t *testing.T) {
		s := s.in(t)
		s.flush()
		if err := s.rdb.HSet(s.ctx, fenceKey, "f", "v").Err(); err != nil {
			t.Fatal(err)
		}
		got, err := ParseFencedAcquire(acquire(s, "a", 1, "f"))
		if err != nil || !got.NotCounter {
			t.Errorf("%+v, %v; want refused, counter key in use", got, err)
		}
		if v, _ := s.get(lockKey); v != "" {
			t.Errorf("the key holds %q", v)
		}
	})
	t.Run("handed over: the floor announced", func(t *testing.T) {
		s := s.in(t)
		s.flush()
		s.set(lockKey, "mine", time.Minute)
		s.set(fenceKey, "9000000000000000", 0) // beyond the clock
		if got, err := ParseFencedAcquire(acquire(s, "a", 10, "f")); err != nil || got.Acquired || got.TTL <= 0 {
			t.Fatalf("%+v, %v; want queued", got, err)
		}
		messages := s.subscribe("ch")
		if got, err := ParseRelease(s.run(Release, fleetKeys, "mine", "ch", int64(1000), int64(30))); err != nil || got != ReleaseHanded {
			t.Fatalf("release: %v, %v; want handed", got, err)
		}
		msg := <-messages
		head, value, _ := strings.Cut(msg, ":")
		waited, floor, ok := strings.Cut(strings.TrimPrefix(head, "f"), ",")
		if msg[0] != 'f' || !ok || value != "a" || floor != "9000000000000001" {
			t.Errorf("announced %q, want f<waited>,9000000000000001:a", msg)
		}
		if ms, err := strconv.Atoi(waited); err != nil || ms < 0 {
			t.Errorf("waited %q", waited)
		}
		if got, err := ParseFencedAcquire(acquire(s, "a", 10, "f")); err != nil || !got.Acquired || got.Counter != 9000000000000000 {
			t.Errorf("%+v, %v; want held, with the counter", got, err)
		}
	})
}
