package redsync

import (
	"strconv"
	"time"
)

// checkNow is the local clock Check compares the servers' clocks with; a
// test shifts it to make a server's clock look off.
var checkNow = time.Now

// clockSamples is how many times Check reads a server's clock; the reading
// with the shortest round trip counts.
const clockSamples = 3

// checkClock compares the server's clock with this host's.
func (p *serverProbe) checkClock() {
	var (
		found               bool
		server, sent, recvd time.Time
	)
	for i := 0; i < clockSamples; i++ {
		before := checkNow()
		reply, err := p.ask("TIME")
		after := checkNow()
		if err != nil {
			p.failed("TIME", err, FindingUnverified)
			return
		}
		t, ok := parseTime(reply)
		if !ok {
			p.rep.add(FindingUnverified, nil, "TIME replied %v, not seconds and microseconds: the clock was not checked", reply)
			return
		}
		if !found || after.Sub(before) < recvd.Sub(sent) {
			found, server, sent, recvd = true, t, before, after
		}
	}
	rtt := recvd.Sub(sent)
	p.rep.RTT = rtt
	p.rep.ClockOffset = server.Sub(sent.Add(rtt / 2))
	// The server read its clock between sent and recvd: the offset is at
	// least lo and at most hi.
	lo, hi := server.Sub(recvd), server.Sub(sent)
	switch drift := p.needs.drift; {
	case lo > drift:
		p.rep.add(FindingClockSkew, nil, "the server's clock is at least %v ahead of this host's, more than the drift allowance of %v (the expiry times the drift factor): keep the clocks in sync (NTP)",
			lo.Round(time.Millisecond), drift)
	case hi < -drift:
		p.rep.add(FindingClockSkew, nil, "the server's clock is at least %v behind this host's, more than the drift allowance of %v (the expiry times the drift factor): keep the clocks in sync (NTP)",
			(-hi).Round(time.Millisecond), drift)
	}
}

// parseTime returns the time of a TIME reply: seconds and microseconds.
func parseTime(reply any) (time.Time, bool) {
	parts, ok := reply.([]any)
	if !ok || len(parts) != 2 {
		return time.Time{}, false
	}
	var n [2]int64
	for i, part := range parts {
		switch v := part.(type) {
		case int64:
			n[i] = v
		default:
			s, ok := replyString(v)
			if !ok {
				return time.Time{}, false
			}
			var err error
			if n[i], err = strconv.ParseInt(s, 10, 64); err != nil {
				return time.Time{}, false
			}
		}
	}
	return time.Unix(n[0], n[1]*1000), true
}
