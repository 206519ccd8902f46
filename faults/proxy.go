//go:build linux

package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

// faultProxies is one toxiproxy proxy in front of each server, run in this
// process; the clients reach the servers only through them, so that toxics
// (latency, cut links) apply to every connection, new and established.
type faultProxies struct {
	api     *toxiproxy.ApiServer
	proxies []*toxiproxy.Proxy
}

// startProxies starts a proxy on a free 127.0.0.1 port for each upstream
// address.
func startProxies(upstreams []string) (*faultProxies, error) {
	p := &faultProxies{api: toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())}
	for i, upstream := range upstreams {
		proxy := toxiproxy.NewProxy(p.api, fmt.Sprintf("server-%d", i), "127.0.0.1:0", upstream)
		if err := proxy.Start(); err != nil {
			p.close()
			return nil, fmt.Errorf("faults: starting the proxy for %s: %w", upstream, err)
		}
		p.proxies = append(p.proxies, proxy)
	}
	return p, nil
}

// addrs returns the proxies' addresses, in the order of the upstreams.
func (p *faultProxies) addrs() []string {
	out := make([]string, len(p.proxies))
	for i, proxy := range p.proxies {
		out[i] = proxy.Listen
	}
	return out
}

// A toxic is one toxiproxy toxic on one direction of a proxy's links.
type toxic struct {
	Name   string         `json:"name"`
	Type   string         `json:"type"`   // "latency", "timeout", ...
	Stream string         `json:"stream"` // "upstream" (to the server) or "downstream" (to the client)
	Attrs  map[string]any `json:"attributes"`
}

// add puts t on proxy i, for its connections open now and to come.
func (p *faultProxies) add(i int, t toxic) error {
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	if _, err := p.proxies[i].Toxics.AddToxicJson(bytes.NewReader(b)); err != nil {
		return fmt.Errorf("faults: adding toxic %s to proxy %d: %w", t.Name, i, err)
	}
	return nil
}

// remove takes the toxic named name off proxy i. Removing a timeout toxic
// closes the connections it held.
func (p *faultProxies) remove(i int, name string) error {
	if err := p.proxies[i].Toxics.RemoveToxic(context.Background(), name); err != nil {
		return fmt.Errorf("faults: removing toxic %s from proxy %d: %w", name, i, err)
	}
	return nil
}

// reset removes every toxic.
func (p *faultProxies) reset() {
	for _, proxy := range p.proxies {
		proxy.Toxics.ResetToxics(context.Background())
	}
}

// close stops every proxy and closes its connections.
func (p *faultProxies) close() {
	for _, proxy := range p.proxies {
		proxy.Stop()
	}
}
