package redsync

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/quorumlock/redsync/internal/scripts"
	"github.com/quorumlock/redsync/redis"
)

// checkNeeds is what the lock, configured by Check's options, needs of
// every server.
type checkNeeds struct {
	drift   time.Duration // the largest clock difference allowed
	version versionNeed
}

// serverProbe asks one server what Check needs to know.
type serverProbe struct {
	ctx   context.Context
	pool  redis.Pool
	needs checkNeeds

	conn redis.Conn
	doer redis.Doer // nil: everything goes through Eval of scripts.Check
	rep  ServerReport
}

// run makes every check on the server, and never panics.
func (p *serverProbe) run() (rep ServerReport) {
	defer func() {
		if v := recover(); v != nil {
			rep = ServerReport{Node: p.rep.Node}
			rep.add(FindingUnreachable, fmt.Errorf("panic: %v", v), "the pool panicked: %v", v)
		}
	}()
	conn, err := p.pool.Get(p.ctx)
	if err != nil {
		p.rep.add(FindingUnreachable, err, "the pool gave no connection: %v", err)
		return p.rep
	}
	if conn == nil {
		p.rep.add(FindingUnreachable, nil, "the pool gave a nil connection and no error")
		return p.rep
	}
	defer conn.Close()
	p.conn = conn
	p.doer, _ = conn.(redis.Doer)
	if p.doer == nil {
		// Without a Doer every question is a script: nothing else can
		// be asked of a server that refuses scripts.
		if !p.checkScripts() || !p.inspect() {
			return p.rep
		}
	} else {
		if !p.inspect() {
			return p.rep
		}
		p.checkScripts()
	}
	p.checkClock()
	return p.rep
}

// ask sends a command, or, without a Doer, runs scripts.Check for INFO or
// TIME.
func (p *serverProbe) ask(args ...string) (any, error) {
	if p.doer != nil {
		return p.doer.Do(args...)
	}
	return p.conn.Eval(scripts.Check, strings.ToLower(args[0]))
}

// failed reports a command that failed: a server's error reply as kind
// (with a hint for the usual ones), any other error as unreachable.
func (p *serverProbe) failed(command string, err error, kind FindingKind) {
	code, isReply := errorCode(err)
	if !isReply {
		p.rep.add(FindingUnreachable, err, "the server did not answer %s: %v", command, err)
		return
	}
	hint := ""
	switch {
	case kind == FindingUnverified:
		hint = ": what it tells was not checked"
	case code == "NOAUTH" || code == "WRONGPASS":
		hint = ": give the client the user and password the server asks for"
	case code == "NOPERM":
		hint = ": the ACL user needs EVAL, EVALSHA and the commands the lock's scripts call"
	}
	p.rep.add(kind, err, "the server refused %s (%s)%s", command, strings.TrimSuffix(err.Error(), "."), hint)
}

// errorReplyPattern matches the text of a Redis error reply: a code in
// capitals, then a space ("NOPERM this user has no permissions ...").
var errorReplyPattern = regexp.MustCompile(`^([A-Z][A-Z_]+) `)

// errorCode returns the code of err when it is a server's error reply;
// any other error (a network error, a timeout, ctx's) is not.
func errorCode(err error) (code string, isReply bool) {
	m := errorReplyPattern.FindStringSubmatch(err.Error())
	if m == nil {
		return "", false
	}
	return m[1], true
}

// checkScripts runs scripts.Check by EVAL and by EVALSHA (through Eval,
// without a Doer) and reports whether the server ran it.
func (p *serverProbe) checkScripts() bool {
	if p.doer == nil {
		if _, err := p.conn.Eval(scripts.Check, "time"); err != nil {
			p.failed("EVAL", err, FindingRefused)
			return false
		}
		return true
	}
	for _, args := range [][]string{
		{"EVAL", scripts.Check.Src, "0", "time"},
		{"EVALSHA", scripts.Check.Hash, "0", "time"},
	} {
		_, err := p.doer.Do(args...)
		if err != nil && args[0] == "EVALSHA" && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			// EVALSHA is allowed, and went to a server that had not
			// seen the script: a Cluster client sends a command without
			// keys to any node (go-redis v9.23 no longer to the one the
			// EVAL went to). The lock's scripts have keys, and Eval sends
			// EVAL after a NOSCRIPT.
			err = nil
		}
		if err != nil {
			p.failed(args[0], err, FindingRefused)
			return false
		}
	}
	return true
}

// replyString returns a bulk or status reply as a string.
func replyString(v any) (string, bool) {
	switch s := v.(type) {
	case string:
		return s, true
	case []byte:
		return string(s), true
	}
	return "", false
}
