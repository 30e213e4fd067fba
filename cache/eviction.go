package cache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyvalue-go/keyvalue/internal/scan"
	"github.com/valkey-io/valkey-go"
)

// ErrEvictionPolicy is returned (wrapped, naming the policy) by Set on a
// server whose maxmemory-policy may evict a tag index: allkeys-lru,
// allkeys-lfu or allkeys-random. Under such a policy the server may drop
// an index while entries it lists stay, and a flush by that tag would miss
// them. Fix it on the server (maxmemory-policy noeviction, or a volatile-*
// policy: only keys with an expiry are evicted then, and indexes have
// none), or accept the risk with Options.AllowEvictingPolicy.
var ErrEvictionPolicy = errors.New("the server's eviction policy can evict tag indexes")

// policyRecheck is how long a policy reading is trusted.
const policyRecheck = time.Minute

// policyCheck remembers the last reading of the servers' eviction policy.
// Sets read it without locking; the reading that expires is renewed by one
// caller under mu while the others keep using the previous one.
type policyCheck struct {
	mu   sync.Mutex
	last atomic.Pointer[policyReading]
}

// policyReading is one reading of the policy.
type policyReading struct {
	until  time.Time
	policy string // an unsafe policy, "" if all are safe
}

// checkPolicy returns an error matching ErrEvictionPolicy when a primary
// may evict tag indexes and the cache does not allow it. It reads INFO
// memory (which works where CONFIG is disabled) on first use and then at
// most once a minute; if INFO cannot be read it logs that and lets writes
// through.
func (b *Backend) checkPolicy(ctx context.Context) error {
	if b.opts.AllowEvictingPolicy {
		return nil
	}
	r := b.policy.last.Load()
	if r == nil || time.Now().After(r.until) {
		r = b.readPolicy(ctx)
	}
	if r.policy != "" {
		return fmt.Errorf("cache %s: %w: maxmemory-policy is %s, which may evict a tag index while its entries stay; set maxmemory-policy to noeviction or a volatile-* policy, or set Options.AllowEvictingPolicy to accept this", b.name, ErrEvictionPolicy, r.policy)
	}
	return nil
}

// readPolicy renews the reading, once for all callers that found it expired.
func (b *Backend) readPolicy(ctx context.Context) *policyReading {
	b.policy.mu.Lock()
	defer b.policy.mu.Unlock()
	if r := b.policy.last.Load(); r != nil && !time.Now().After(r.until) {
		return r // another caller renewed it meanwhile
	}
	unsafe, err := UnsafeEvictionPolicy(ctx, b.c)
	if err != nil {
		b.log.Warn("cache: cannot read the server's maxmemory-policy; not checking it", "cache", b.name, "error", err)
	}
	r := &policyReading{until: time.Now().Add(policyRecheck), policy: unsafe}
	b.policy.last.Store(r)
	return r
}

// EvictionPolicies returns the maxmemory-policy of each primary c writes
// to (one for a standalone or Sentinel client), from INFO memory.
func EvictionPolicies(ctx context.Context, c valkey.Client) ([]string, error) {
	nodes, err := scan.Primaries(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	out := make([]string, 0, len(nodes))
	for _, n := range nodes {
		info, err := n.Do(ctx, n.B().Info().Section("memory").Build()).ToString()
		if err != nil {
			return nil, fmt.Errorf("cache: INFO memory: %w", err)
		}
		policy := ""
		for line := range strings.SplitSeq(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "maxmemory_policy:"); ok {
				policy = v
			}
		}
		if policy == "" {
			return nil, errors.New("cache: INFO memory has no maxmemory_policy")
		}
		out = append(out, policy)
	}
	return out, nil
}

// UnsafeEvictionPolicy returns the first allkeys-* policy among the
// primaries of c, or "" when every primary's policy keeps tag indexes
// (noeviction or volatile-*: indexes have no expiry, so volatile policies
// never evict them).
func UnsafeEvictionPolicy(ctx context.Context, c valkey.Client) (string, error) {
	policies, err := EvictionPolicies(ctx, c)
	if err != nil {
		return "", err
	}
	for _, p := range policies {
		if strings.HasPrefix(p, "allkeys-") {
			return p, nil
		}
	}
	return "", nil
}
