// Package netfaults puts a fault-injecting TCP proxy (Toxiproxy, run
// in-process) between keyvalue's clients and the servers the test harness
// starts, and holds the scenarios that need one: a network that drops
// packets without closing connections (a cut), a partition that leaves a
// primary and one client on the minority side, slow and narrow links. It
// is its own module, so that Toxiproxy never enters the library's
// go.mod; it supports tests only.
package netfaults

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	_ "github.com/Shopify/toxiproxy/v2/toxics" // registers the toxics
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Proxy forwards a local address to an upstream server, with faults
// switched on and off by the test.
type Proxy struct {
	p  *toxiproxy.Proxy
	mu sync.Mutex
	n  int
}

var (
	serverOnce sync.Once
	server     *toxiproxy.ApiServer
)

// apiServer is the one in-process Toxiproxy the proxies belong to (it only
// keeps their registry and logger; it does not listen).
func apiServer() *toxiproxy.ApiServer {
	serverOnce.Do(func() {
		server = toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	})
	return server
}

// New starts a proxy on a free 127.0.0.1 port to upstream (host:port); it
// is stopped when the test ends.
func New(t testing.TB, upstream string) *Proxy {
	t.Helper()
	p := toxiproxy.NewProxy(apiServer(), fmt.Sprintf("%s-%s", t.Name(), upstream), "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatalf("netfaults: start a proxy to %s: %v", upstream, err)
	}
	t.Cleanup(p.Stop)
	return &Proxy{p: p}
}

// Addr is the address clients dial instead of the upstream's.
func (p *Proxy) Addr() string { return p.p.Listen }

// add adds a toxic on both directions and returns a function that removes it.
func (p *Proxy) add(kind, attrs string) func() {
	p.mu.Lock()
	p.n++
	name := fmt.Sprintf("%s-%d", kind, p.n)
	p.mu.Unlock()
	for _, stream := range []string{"upstream", "downstream"} {
		js := fmt.Sprintf(`{"name":%q,"type":%q,"stream":%q,"toxicity":1,"attributes":%s}`, name+"-"+stream, kind, stream, attrs)
		if _, err := p.p.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
			panic(fmt.Sprintf("netfaults: add %s: %v", js, err))
		}
	}
	return func() {
		for _, stream := range []string{"upstream", "downstream"} {
			_ = p.p.Toxics.RemoveToxic(context.Background(), name+"-"+stream)
		}
	}
}

// Cut stops forwarding bytes in both directions without closing any
// connection, established or new (a partition that drops packets): the
// returned function heals it.
func (p *Proxy) Cut() (heal func()) { return p.add("timeout", `{"timeout":0}`) }

// Latency delays every chunk by d in each direction (a round trip costs
// 2·d more), ± jitter.
func (p *Proxy) Latency(d, jitter time.Duration) (undo func()) {
	return p.add("latency", fmt.Sprintf(`{"latency":%d,"jitter":%d}`, d.Milliseconds(), jitter.Milliseconds()))
}

// Bandwidth caps each direction at kbps kilobytes per second.
func (p *Proxy) Bandwidth(kbps int) (undo func()) {
	return p.add("bandwidth", fmt.Sprintf(`{"rate":%d}`, kbps))
}

// Reset closes every connection with a TCP reset after d.
func (p *Proxy) Reset(d time.Duration) (undo func()) {
	return p.add("reset_peer", fmt.Sprintf(`{"timeout":%d}`, d.Milliseconds()))
}
