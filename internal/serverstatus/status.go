// Package serverstatus gathers what keyvalue doctor and the admin page's
// Server view report about the server behind a client: topology, TLS,
// server version and role, latency, client-side caching, the eviction
// policy's verdict for tagged caches, and memory. Both render the same
// lines, so the two never disagree.
package serverstatus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/valkey-io/valkey-go"
)

// Line is one finding: a short name and what was found.
type Line struct {
	Name  string
	Value string
	// Failed marks a problem (doctor exits non-zero; the page shows it
	// red); Warn a risk that does not stop keyvalue (shown amber).
	Failed, Warn bool
}

// Check reports on the server behind c (connected with cfg, normalized),
// measuring latency with pings PINGs (at least 1). It stops after a line
// that makes the rest meaningless (INFO refused), which is then the last
// and failed.
func Check(ctx context.Context, c *keyvalue.Client, cfg keyvalue.Config, pings int) []Line {
	var out []Line
	add := func(failed bool, name, format string, args ...any) {
		out = append(out, Line{Name: name, Value: fmt.Sprintf(format, args...), Failed: failed})
	}
	nodes := slices.Sorted(maps.Keys(c.Nodes()))
	switch cfg.Mode {
	case keyvalue.ModeSentinel:
		add(false, "master", "%s (name %q, resolved through the sentinels)", strings.Join(nodes, ","), cfg.Sentinel.Master)
	case keyvalue.ModeCluster:
		add(false, "nodes", "%d: %s", len(nodes), strings.Join(nodes, " "))
	}

	if cfg.TLS.Enabled && len(nodes) > 0 {
		lines, err := tlsLines(ctx, cfg.TLS, nodes[0])
		if err != nil {
			add(true, "tls", "FAILED: %v", err)
		}
		out = append(out, lines...)
	} else if !cfg.TLS.Enabled {
		add(false, "tls", "off (plaintext)")
	}

	info, err := c.Do(ctx, c.B().Info().Section("server").Build()).ToString()
	if err != nil {
		add(true, "server", "FAILED: INFO server: %v", err)
		return out
	}
	f := InfoFields(info)
	product, version := "redis", f["redis_version"]
	if v, ok := f["valkey_version"]; ok {
		product, version = "valkey", v
	} else if f["server_name"] == "valkey" {
		product = "valkey"
	}
	mode := f["redis_mode"]
	if mode == "" {
		mode = f["server_mode"] // Valkey 8 says server_mode unless extended-redis-compatibility is on
	}
	if mode == "" {
		mode = "unknown (INFO server names none)"
	}
	add(false, "server", "%s %s (server mode %s)", product, version, mode)
	// An older server fails the connect, naming the minimum.
	add(false, "supported", "yes (keyvalue needs Redis %s or later, or Valkey %s or later)", keyvalue.MinRedisVersion, keyvalue.MinValkeyVersion)
	add(false, "client mode", "%s", cfg.Mode)

	if role, err := c.Do(ctx, c.B().Role().Build()).ToArray(); err == nil && len(role) > 0 {
		name, _ := role[0].ToString()
		add(false, "role", "%s", name)
	} else if err != nil {
		add(false, "role", "unknown: %v", err)
	}
	if cfg.Mode == keyvalue.ModeCluster {
		ci, err := c.Do(ctx, c.B().ClusterInfo().Build()).ToString()
		switch {
		case errors.Is(err, keyvalue.ErrNoPermission):
			add(false, "cluster", "not checked: the user may not run CLUSTER INFO")
		case err != nil:
			add(true, "cluster", "FAILED: %v", err)
		default:
			cf := InfoFields(ci)
			add(cf["cluster_state"] != "ok", "cluster", "state %s, %s slots assigned, %s known nodes", cf["cluster_state"], cf["cluster_slots_assigned"], cf["cluster_known_nodes"])
		}
	}

	if lat, err := PingLatency(ctx, c, pings); err != nil {
		add(true, "latency", "FAILED: %v", err)
	} else {
		add(false, "latency", "%d PINGs: min %s, median %s, max %s", len(lat), lat[0], lat[len(lat)/2], lat[len(lat)-1])
	}
	add(false, "client cache", "%s", clientCache(ctx, c))
	verdict, unsafe := eviction(ctx, c)
	add(false, "eviction", "%s", verdict)
	out[len(out)-1].Warn = unsafe
	add(false, "memory", "%s", memory(ctx, c))
	return out
}

// tlsLines dials addr with the configured TLS settings and describes the
// session.
func tlsLines(ctx context.Context, t keyvalue.TLSConfig, addr string) ([]Line, error) {
	conf, err := t.ClientConfig()
	if err != nil {
		return nil, err
	}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: conf}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	st := c.(*tls.Conn).ConnectionState()
	verified := "verified"
	if conf.InsecureSkipVerify {
		verified = "NOT VERIFIED (insecure_skip_verify)"
	}
	out := []Line{{Name: "tls", Value: tls.VersionName(st.Version) + ", " + tls.CipherSuiteName(st.CipherSuite)}}
	if len(st.PeerCertificates) > 0 {
		leaf := st.PeerCertificates[0]
		names := slices.Clone(leaf.DNSNames)
		for _, ip := range leaf.IPAddresses {
			names = append(names, ip.String())
		}
		out = append(out, Line{Name: "server cert", Value: fmt.Sprintf("CN=%s for %s, issued by %s, expires %s (in %d days), %s", leaf.Subject.CommonName, strings.Join(names, ","),
			leaf.Issuer.CommonName, leaf.NotAfter.Format(time.DateOnly), int(time.Until(leaf.NotAfter).Hours()/24), verified)})
	}
	if len(conf.Certificates) > 0 {
		out = append(out, Line{Name: "client cert", Value: "presented (mTLS)"})
	} else {
		out = append(out, Line{Name: "client cert", Value: "none"})
	}
	return out, nil
}

// PingLatency sends n PINGs one after the other and returns their round
// trips, sorted.
func PingLatency(ctx context.Context, c valkey.Client, n int) ([]time.Duration, error) {
	n = max(n, 1)
	out := make([]time.Duration, 0, n)
	for range n {
		t0 := time.Now()
		if err := c.Do(ctx, c.B().Ping().Build()).Error(); err != nil {
			return nil, err
		}
		out = append(out, time.Since(t0).Round(time.Microsecond))
	}
	slices.Sort(out)
	return out, nil
}

// clientCache checks client-side caching by reading one key twice through
// DoCache: the second read is a local hit when tracking works.
func clientCache(ctx context.Context, c *keyvalue.Client) string {
	if !c.ClientSideCaching() {
		return "unavailable (disabled in the config, or the server refused CLIENT TRACKING)"
	}
	key := "kv:doctor:csc-probe"
	for range 2 {
		res := c.DoCache(ctx, c.B().Get().Key(key).Cache(), 5*time.Second)
		if err := res.Error(); errors.Is(err, keyvalue.ErrNoPermission) {
			return "enabled; not probed: the ACL user may not read " + key + " (only keyvalue's own keys)"
		} else if err != nil && !valkey.IsValkeyNil(err) {
			return "error: " + err.Error()
		}
		if res.IsCacheHit() {
			return "available (RESP3 CLIENT TRACKING; a repeated read was served locally)"
		}
	}
	return "enabled, but a repeated read was not served locally"
}

// InfoFields parses "key:value" lines of INFO-style replies (RESP3 may
// deliver them as verbatim strings with a "txt:" prefix).
func InfoFields(s string) map[string]string {
	s = strings.TrimPrefix(s, "txt:")
	m := map[string]string{}
	for line := range strings.SplitSeq(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			m[k] = v
		}
	}
	return m
}

// eviction gives the servers' maxmemory-policy and what it means for
// tagged caches (the same verdict cache.Backend.Set applies), and whether
// it is unsafe.
func eviction(ctx context.Context, c valkey.Client) (string, bool) {
	policies, err := cache.EvictionPolicies(ctx, c)
	if err != nil {
		return "unknown: " + err.Error(), false
	}
	slices.Sort(policies)
	policies = slices.Compact(policies)
	unsafe, _ := cache.UnsafeEvictionPolicy(ctx, c)
	if unsafe != "" {
		return fmt.Sprintf("maxmemory-policy %s: UNSAFE for tagged caches (the server may evict a tag index while its entries stay); cache writes are refused unless Options.AllowEvictingPolicy is set; use noeviction or a volatile-* policy", strings.Join(policies, ",")), true
	}
	return fmt.Sprintf("maxmemory-policy %s: safe for tagged caches (tag indexes have no expiry and are never evicted)", strings.Join(policies, ",")), false
}

// memory summarizes INFO memory of the node c sends INFO to (the first
// primary of a Cluster).
func memory(ctx context.Context, c valkey.Client) string {
	info, err := c.Do(ctx, c.B().Info().Section("memory").Build()).ToString()
	if err != nil {
		return "unknown: " + err.Error()
	}
	f := InfoFields(info)
	limit := f["maxmemory_human"]
	if f["maxmemory"] == "0" || limit == "" {
		limit = "no limit (maxmemory 0)"
	}
	s := fmt.Sprintf("%s used (peak %s), maxmemory %s", f["used_memory_human"], f["used_memory_peak_human"], limit)
	if r := f["mem_fragmentation_ratio"]; r != "" {
		s += ", fragmentation ratio " + r
	}
	return s
}
