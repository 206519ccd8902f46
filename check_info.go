package redsync

import (
	"fmt"
	"strconv"
	"strings"
)

// versionNeed is the oldest Redis version that runs what a lock sends,
// and what needs it.
type versionNeed struct {
	version [3]int
	what    string
}

// baseVersion runs every lock: SET with NX and PX came in 2.6.12.
var baseVersion = versionNeed{[3]int{2, 6, 12}, "every lock (SET with NX and PX, and scripts)"}

// scriptsVersion returns the version the scripts need, with hand-off on
// and with fencing on a single server. Before Redis 3.2 a script may not
// write after a command whose result varies (PUBSUB NUMSUB in the
// hand-over, TIME in the single-server fenced acquire), and
// redis.replicate_commands, which lifts that, came in 3.2.
func scriptsVersion(handoff, fencingAlone bool) versionNeed {
	switch {
	case handoff:
		return versionNeed{[3]int{3, 2, 0}, "the hand-over of WithHandoff (on by default)"}
	case fencingAlone:
		return versionNeed{[3]int{3, 2, 0}, "WithFencing on a single server"}
	}
	return baseVersion
}

// inspect reads INFO and checks the server's identity, role, memory
// policy, persistence and version. It reports whether the other checks
// are worth making.
func (p *serverProbe) inspect() bool {
	reply, err := p.ask("INFO")
	if err != nil {
		code, isReply := errorCode(err)
		if !isReply || code == "NOAUTH" || code == "WRONGPASS" {
			p.failed("INFO", err, FindingRefused)
			return false
		}
		p.failed("INFO", err, FindingUnverified)
		return true
	}
	text, _ := replyString(reply)
	info := parseInfo(text)
	if info["redis_mode"] == "sentinel" {
		p.rep.add(FindingRefused, nil, "the pool reaches a Sentinel, not a server that holds keys: give it the primary (with go-redis, a failover client)")
		return false
	}
	var missing []string
	field := func(name string) string {
		v, ok := info[name]
		if !ok {
			missing = append(missing, name)
		}
		return v
	}
	p.rep.RunID = field("run_id")
	p.rep.Version = field("redis_version")
	p.rep.Role = field("role")
	p.checkVersion()
	p.checkRole(info)
	p.checkMemory(field("maxmemory"), field("maxmemory_policy"), info["maxmemory_human"])
	if aof := field("aof_enabled"); aof == "0" {
		p.reportPersistence()
	}
	if len(missing) > 0 {
		p.rep.add(FindingUnverified, nil, "the INFO reply has no %s: what they tell was not checked (is it Redis?)", strings.Join(missing, ", "))
	}
	return true
}

// checkVersion reports a server older than the lock's scripts need.
func (p *serverProbe) checkVersion() {
	if p.rep.Version == "" {
		return
	}
	got, ok := parseVersion(p.rep.Version)
	if !ok {
		p.rep.add(FindingUnverified, nil, "the redis_version %q is not a version: the scripts' needs were not checked", p.rep.Version)
		return
	}
	for _, need := range []versionNeed{baseVersion, p.needs.version} {
		if versionLess(got, need.version) {
			p.rep.add(FindingOldVersion, nil, "Redis %s is older than %d.%d.%d, which %s needs", p.rep.Version,
				need.version[0], need.version[1], need.version[2], need.what)
			return
		}
	}
}

// checkRole reports a replica, and a server a failover can replace.
func (p *serverProbe) checkRole(info map[string]string) {
	switch {
	case p.rep.Role == "slave":
		p.rep.add(FindingReplica, nil, "the server is a replica of %s:%s: it refuses the lock's writes, or takes them without passing them on; give the pool its primary",
			info["master_host"], info["master_port"])
	case info["cluster_enabled"] == "1":
		p.rep.add(FindingFailover, nil, "the server is a Redis Cluster node: the pool counts as one server, and a failover to a replica that had not received a lock's key loses the lock")
	case p.rep.Role == "master" && info["connected_slaves"] != "" && info["connected_slaves"] != "0":
		p.rep.add(FindingFailover, nil, "the server has %s replica(s): the pool counts as one server, and a failover (Sentinel's, say) to a replica that had not received a lock's key loses the lock",
			info["connected_slaves"])
	}
}

// checkMemory reports a memory limit with an evicting policy.
func (p *serverProbe) checkMemory(maxmemory, policy, human string) {
	if maxmemory == "" || maxmemory == "0" || policy == "" || policy == "noeviction" {
		return
	}
	if human == "" {
		human = maxmemory + " bytes"
	}
	which := "evicts any key, held locks' included,"
	switch {
	case policy == "volatile-ttl":
		which = "evicts keys with an expiry, the shortest-lived first: lock keys before most others,"
	case strings.HasPrefix(policy, "volatile-"):
		which = "evicts keys with an expiry, as every lock key has,"
	}
	p.rep.add(FindingEviction, nil, "maxmemory is %s with maxmemory-policy %s: the server %s when memory runs out, and a second holder takes an evicted lock; set maxmemory-policy noeviction (writes then fail instead)",
		human, policy, which)
}

// reportPersistence reports a server whose restart forgets keys, saying
// whether RDB snapshots keep some of them when CONFIG tells.
func (p *serverProbe) reportPersistence() {
	var what string
	save, ok := p.config("save")
	switch {
	case !ok:
		what = "appendonly is off: a restarted server loses the keys set since its last RDB snapshot (or all, without snapshots), held locks among them"
	case strings.TrimSpace(save) == "":
		what = `appendonly is off and no RDB snapshot is configured (save ""): a restarted server comes back empty, without the locks it held`
	default:
		what = fmt.Sprintf("appendonly is off (RDB snapshots only, save %q): a restarted server loses the keys set since its last snapshot, held locks among them", save)
	}
	p.rep.add(FindingNoPersistence, nil, "%s; keep a restarted server out for the longest expiry (the restart rule), or set appendonly yes with appendfsync always", what)
}

// config returns the value of a setting by CONFIG GET, when the Conn is a
// Doer and the server allows it (CONFIG may be renamed away, or refused
// by an ACL).
func (p *serverProbe) config(name string) (string, bool) {
	if p.doer == nil {
		return "", false
	}
	reply, err := p.doer.Do("CONFIG", "GET", name)
	if err != nil {
		return "", false
	}
	switch v := reply.(type) {
	case []any:
		for i := 0; i+1 < len(v); i += 2 {
			if k, _ := replyString(v[i]); k == name {
				return replyString(v[i+1])
			}
		}
	case map[string]any:
		return replyString(v[name])
	case map[any]any:
		return replyString(v[name])
	}
	return "", false
}

// parseInfo returns the fields of an INFO reply.
func parseInfo(text string) map[string]string {
	fields := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" || line[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[k] = v
		}
	}
	return fields
}

// parseVersion parses "major.minor.patch" (a missing part is 0).
func parseVersion(s string) ([3]int, bool) {
	var v [3]int
	parts := strings.Split(s, ".")
	if len(parts) > 3 {
		return v, false
	}
	for i, part := range parts {
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 {
			return v, false
		}
		v[i] = n
	}
	return v, true
}

// versionLess reports whether a is older than b.
func versionLess(a, b [3]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}
