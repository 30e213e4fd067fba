// Package servertest starts real redis-server / valkey-server and sentinel
// processes for tests: standalone, TLS and mTLS, primary + replica + three
// sentinels, and a three-primary cluster. Every server listens on a free
// 127.0.0.1 port, is stopped in t.Cleanup, and has its log tail printed when
// the test failed. When the binaries are missing the test fails with one
// line saying what to install.
package servertest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue/internal/localserver"
)

// Server is a running server process.
type Server = localserver.Server

// Option adjusts a standalone server.
type Option func(*localserver.Options) error

// WithTLS makes the server accept TLS only, with certificates from c; when
// mutual is true clients must present a certificate signed by c's CA.
func WithTLS(c *Certs, mutual bool) Option {
	return func(o *localserver.Options) error {
		o.TLS = c.ServerFiles(mutual)
		var err error
		o.PingTLS, err = c.ClientTLS()
		return err
	}
}

// WithExpiredTLS makes the server accept TLS only, presenting a
// certificate from c's CA that has expired.
func WithExpiredTLS(c *Certs) Option {
	return func(o *localserver.Options) error {
		o.TLS = &localserver.TLSFiles{CertFile: c.ExpiredServerCertFile, KeyFile: c.ExpiredServerKeyFile, CAFile: c.CAFile}
		o.PingTLS = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // readiness check of a test server with an expired certificate
		return nil
	}
}

// WithArgs appends server command-line arguments, e.g. "--requirepass", "s3cret".
func WithArgs(args ...string) Option {
	return func(o *localserver.Options) error { o.Args = append(o.Args, args...); return nil }
}

// WithPort makes the server listen on a given port (e.g. one reserved earlier).
func WithPort(port int) Option {
	return func(o *localserver.Options) error { o.Port = port; return nil }
}

// WithName labels the server in logs.
func WithName(name string) Option {
	return func(o *localserver.Options) error { o.Name = name; return nil }
}

// Start starts one server with the options and registers its cleanup.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	o := localserver.Options{Dir: t.TempDir(), Name: "standalone"}
	for _, f := range opts {
		if err := f(&o); err != nil {
			t.Fatalf("servertest: %v", err)
		}
	}
	return start(t, o)
}

// Standalone starts a plain standalone server.
func Standalone(t testing.TB, opts ...Option) *Server {
	t.Helper()
	return Start(t, opts...)
}

// ACLEnv names the variable that runs the suites under a least-privilege
// user (make test-acl): its value is the ACL rules keyvalue acl prints
// (without "ACL SETUSER USER"), given to ACLUser on every data server
// started here; kvtest.Open then connects as that user.
const ACLEnv = "KV_TEST_ACL"

// ACLUser and ACLPassword are the least-privilege user of ACLEnv.
const (
	ACLUser     = "keyvalue-test"
	ACLPassword = "keyvalue-test-secret"
)

// ACLRules returns ACLEnv's rules, or "" when the suites run as the
// default user.
func ACLRules() string { return os.Getenv(ACLEnv) }

// UserArgs are the server arguments that create ACLUser with ACLEnv's
// rules (they survive a restart), or nil.
func UserArgs() []string {
	rules := ACLRules()
	if rules == "" {
		return nil
	}
	return append(append([]string{"--user", ACLUser}, strings.Fields(rules)...), ">"+ACLPassword)
}

func start(t testing.TB, o localserver.Options) *Server {
	t.Helper()
	if len(o.Sentinel) == 0 {
		o.Args = append(o.Args, UserArgs()...)
	}
	s, err := localserver.Start(o)
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("servertest: log tail of %s (%s):\n%s", s.Name(), s.Addr(), s.LogTail(30))
		}
		s.Stop()
	})
	return s
}

// ReservePort returns a free loopback port nothing listens on yet.
func ReservePort(t testing.TB) int {
	t.Helper()
	p, err := localserver.FreePort(false)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// WaitFor polls cond every 20ms until it returns nil or timeout passes; the
// last error fails the test.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if err = cond(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("servertest: %s not reached within %s: %v", what, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// SentinelSet is a primary, one replica and three sentinels monitoring them
// under the master name Master.
type SentinelSet struct {
	Master    string
	Primary   *Server
	Replica   *Server
	Sentinels []*Server
}

// SentinelAddrs returns the sentinels' host:port addresses.
func (s *SentinelSet) SentinelAddrs() []string { return addrs(s.Sentinels) }

// addrs returns the servers' host:port addresses.
func addrs(servers []*Server) []string {
	out := make([]string, len(servers))
	for i, x := range servers {
		out[i] = x.Addr()
	}
	return out
}

// MasterAddr asks the first live sentinel for the current master address.
func (s *SentinelSet) MasterAddr() (string, error) {
	var lastErr error = errors.New("no sentinel running")
	for _, x := range s.Sentinels {
		if !x.Running() {
			continue
		}
		r, err := x.Do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", s.Master)
		if err != nil {
			lastErr = err
			continue
		}
		hp := strings.Split(r, "\n")
		if len(hp) != 2 {
			lastErr = fmt.Errorf("unexpected reply %q", r)
			continue
		}
		return hp[0] + ":" + hp[1], nil
	}
	return "", lastErr
}

// Sentinel starts a primary, a replica and three sentinels with a 1s
// down-after period, and waits until the sentinels know each other and the
// replica is in sync.
func Sentinel(t testing.TB) *SentinelSet {
	t.Helper()
	return sentinelSet(t, nil, nil)
}

// SentinelVia is Sentinel with the replica and the sentinels reaching the
// primary at via(primary's address) — a proxy the test can cut to split
// the primary from the rest (clients may reach it another way).
func SentinelVia(t testing.TB, via func(addr string) string) *SentinelSet {
	t.Helper()
	return sentinelSet(t, nil, via)
}

// SentinelTLS is Sentinel with TLS everywhere: the primary, the replica
// (replicating over TLS) and the sentinels (to clients and to the servers
// they monitor) all use certificates from certs; clients need no
// certificate of their own.
func SentinelTLS(t testing.TB, certs *Certs) *SentinelSet {
	t.Helper()
	return sentinelSet(t, certs, nil)
}

func sentinelSet(t testing.TB, certs *Certs, via func(string) string) *SentinelSet {
	t.Helper()
	var tlsOpt []Option
	if certs != nil {
		tlsOpt = []Option{WithTLS(certs, false)}
	}
	set := &SentinelSet{Master: "kvmaster"}
	set.Primary = Start(t, append(tlsOpt, WithName("primary"))...)
	primaryHost, primaryPort := localserver.Host, strconv.Itoa(set.Primary.Port())
	if via != nil {
		var err error
		if primaryHost, primaryPort, err = net.SplitHostPort(via(set.Primary.Addr())); err != nil {
			t.Fatal(err)
		}
	}
	set.Replica = Start(t, append(tlsOpt, WithName("replica"), WithArgs("--replicaof", primaryHost, primaryPort))...)
	dir := t.TempDir()
	for i := range 3 {
		cfg := []string{
			fmt.Sprintf("sentinel monitor %s %s %s 2", set.Master, primaryHost, primaryPort),
			fmt.Sprintf("sentinel down-after-milliseconds %s 1000", set.Master),
			fmt.Sprintf("sentinel failover-timeout %s 10000", set.Master),
			fmt.Sprintf("sentinel parallel-syncs %s 1", set.Master),
		}
		o := localserver.Options{Dir: dir, Name: fmt.Sprintf("sentinel-%d", i+1), Sentinel: cfg}
		if certs != nil {
			if err := WithTLS(certs, false)(&o); err != nil {
				t.Fatal(err)
			}
		}
		set.Sentinels = append(set.Sentinels, start(t, o))
	}
	WaitFor(t, 20*time.Second, "replica in sync", func() error {
		r, err := set.Replica.Do("INFO", "replication")
		if err != nil {
			return err
		}
		if !strings.Contains(r, "master_link_status:up") {
			return errors.New("master link not up")
		}
		return nil
	})
	for _, s := range set.Sentinels {
		WaitFor(t, 20*time.Second, "sentinels know each other and the replica", func() error {
			r, err := s.Do("SENTINEL", "MASTER", set.Master)
			if err != nil {
				return err
			}
			f := fields(r)
			if f["num-other-sentinels"] != "2" || f["num-slaves"] != "1" {
				return fmt.Errorf("sentinel %s: other-sentinels=%s slaves=%s", s.Name(), f["num-other-sentinels"], f["num-slaves"])
			}
			return nil
		})
	}
	return set
}

// currentPrimary returns the server the sentinels name as primary, and its address.
func (s *SentinelSet) currentPrimary(t testing.TB) (*Server, string) {
	t.Helper()
	addr, err := s.MasterAddr()
	if err != nil {
		t.Fatal(err)
	}
	if s.Replica.Addr() == addr {
		return s.Replica, addr
	}
	return s.Primary, addr
}

// KillPrimary kills the current primary (SIGKILL) and waits until the
// sentinels name a different master; it returns the new master's address
// and how long promotion took.
func (s *SentinelSet) KillPrimary(t testing.TB) (string, time.Duration) {
	t.Helper()
	victim, old := s.currentPrimary(t)
	start := time.Now()
	victim.Kill()
	var addr string
	WaitFor(t, 60*time.Second, "sentinel promotion", func() error {
		a, err := s.MasterAddr()
		if err != nil {
			return err
		}
		if a == old {
			return errors.New("master unchanged")
		}
		addr = a
		return nil
	})
	return addr, time.Since(start)
}

// FreezePrimary suspends the current primary (SIGSTOP; it keeps its
// sockets open but answers nothing) and returns it, with the time the
// freeze began. The test thaws it (Thaw) when it wants it back; the
// cleanup does too.
func (s *SentinelSet) FreezePrimary(t testing.TB) (*Server, time.Time) {
	t.Helper()
	victim, _ := s.currentPrimary(t)
	if err := victim.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = victim.Thaw() })
	return victim, time.Now()
}

// ClusterSet is a cluster of primaries with slots split evenly.
type ClusterSet struct {
	Nodes []*Server
}

// Addrs returns the nodes' host:port addresses (seed addresses for a client).
func (c *ClusterSet) Addrs() []string { return addrs(c.Nodes) }

// Cluster starts n primaries (n >= 3 for a real cluster), splits the 16384
// slots among them, joins them and waits until every node reports
// cluster_state:ok.
func Cluster(t testing.TB, n int) *ClusterSet {
	t.Helper()
	if n < 1 {
		n = 3
	}
	c := &ClusterSet{}
	dir := t.TempDir()
	for i := range n {
		c.Nodes = append(c.Nodes, start(t, localserver.Options{Dir: dir, Name: fmt.Sprintf("node-%d", i+1), Cluster: true}))
	}
	per := 16384 / n
	for i, node := range c.Nodes {
		lo, hi := i*per, (i+1)*per-1
		if i == n-1 {
			hi = 16383
		}
		if _, err := node.Do("CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(lo), strconv.Itoa(hi)); err != nil {
			t.Fatalf("servertest: cluster addslots on %s: %v", node.Addr(), err)
		}
	}
	for _, node := range c.Nodes[1:] {
		if _, err := c.Nodes[0].Do("CLUSTER", "MEET", localserver.Host, strconv.Itoa(node.Port())); err != nil {
			t.Fatalf("servertest: cluster meet: %v", err)
		}
	}
	for _, node := range c.Nodes {
		WaitFor(t, 30*time.Second, "cluster_state:ok on "+node.Addr(), func() error {
			r, err := node.Do("CLUSTER", "INFO")
			if err != nil {
				return err
			}
			f := fields(strings.ReplaceAll(r, ":", "\n"))
			// cluster-require-full-coverage is off, so "ok" alone does not
			// mean this node already knows every other primary's slots.
			if f["cluster_state"] != "ok" || f["cluster_known_nodes"] != strconv.Itoa(n) || f["cluster_slots_assigned"] != "16384" {
				return fmt.Errorf("state=%s known=%s slots=%s", f["cluster_state"], f["cluster_known_nodes"], f["cluster_slots_assigned"])
			}
			// Every node must see every primary's slots at a full address,
			// or a client reading the slot map from it would miss slots.
			slots, err := node.Do("CLUSTER", "SHARDS")
			if err != nil {
				return err
			}
			if c := strings.Count(slots, "\nip\n"+localserver.Host+"\n"); c < n {
				return fmt.Errorf("CLUSTER SHARDS lists %d of %d nodes with an address", c, n)
			}
			// Clients (valkey-go) ignore nodes whose health is not online.
			if c := strings.Count(slots, "\nhealth\nonline"); c < n {
				return fmt.Errorf("CLUSTER SHARDS lists %d of %d nodes online", c, n)
			}
			return nil
		})
	}
	c.waitEpochsSettled(t)
	return c
}

// ClusterWithReplicas is a cluster of primaries with one replica each,
// every node announcing (to its peers and to clients) the addresses via
// gives for its client port and its bus port: proxies the test can cut. A
// node's failure is detected within 2 s (cluster-node-timeout 2000) and its
// replica may take over however stale (cluster-replica-validity-factor 0).
type ClusterWithReplicas struct {
	Primaries []*Server
	Replicas  []*Server // Replicas[i] replicates Primaries[i]
	// Announced maps a node's own address to the address it announces.
	Announced map[string]string
}

// Seeds are the announced addresses of every node (seed addresses for a client).
func (c *ClusterWithReplicas) Seeds() []string {
	var out []string
	for _, n := range append(slices.Clone(c.Primaries), c.Replicas...) {
		out = append(out, c.Announced[n.Addr()])
	}
	return out
}

// ClusterVia starts n primaries with one replica each (see
// ClusterWithReplicas), splits the slots among the primaries and waits
// until every node is known, every replica in sync and the cluster ok.
func ClusterVia(t testing.TB, n int, via func(addr string) string) *ClusterWithReplicas {
	t.Helper()
	c := &ClusterWithReplicas{Announced: map[string]string{}}
	dir := t.TempDir()
	busOf := map[string]string{}
	startNode := func(name string) *Server {
		port, err := localserver.FreePort(true)
		if err != nil {
			t.Fatal(err)
		}
		addr := net.JoinHostPort(localserver.Host, strconv.Itoa(port))
		data := via(addr)
		bus := via(net.JoinHostPort(localserver.Host, strconv.Itoa(port+10000)))
		_, dataPort, _ := net.SplitHostPort(data)
		_, busPort, _ := net.SplitHostPort(bus)
		s := start(t, localserver.Options{Dir: dir, Name: name, Port: port, Cluster: true, Args: []string{
			"--cluster-announce-port", dataPort, "--cluster-announce-bus-port", busPort,
			"--cluster-node-timeout", "2000", "--cluster-replica-validity-factor", "0"}})
		c.Announced[s.Addr()], busOf[s.Addr()] = data, busPort
		return s
	}
	for i := range n {
		c.Primaries = append(c.Primaries, startNode(fmt.Sprintf("primary-%d", i+1)))
	}
	for i := range n {
		c.Replicas = append(c.Replicas, startNode(fmt.Sprintf("replica-%d", i+1)))
	}
	per := 16384 / n
	for i, node := range c.Primaries {
		lo, hi := i*per, (i+1)*per-1
		if i == n-1 {
			hi = 16383
		}
		if _, err := node.Do("CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(lo), strconv.Itoa(hi)); err != nil {
			t.Fatalf("servertest: cluster addslots on %s: %v", node.Addr(), err)
		}
	}
	all := append(slices.Clone(c.Primaries), c.Replicas...)
	for _, node := range all[1:] {
		host, port, _ := net.SplitHostPort(c.Announced[node.Addr()])
		if _, err := all[0].Do("CLUSTER", "MEET", host, port, busOf[node.Addr()]); err != nil {
			t.Fatalf("servertest: cluster meet: %v", err)
		}
	}
	WaitFor(t, 30*time.Second, "every node known", func() error {
		for _, node := range all {
			r, err := node.Do("CLUSTER", "INFO")
			if err != nil {
				return err
			}
			if f := fields(strings.ReplaceAll(r, ":", "\n")); f["cluster_known_nodes"] != strconv.Itoa(2*n) {
				return fmt.Errorf("%s knows %s nodes", node.Name(), f["cluster_known_nodes"])
			}
		}
		return nil
	})
	for i, r := range c.Replicas {
		id := NodeID(t, c.Primaries[i])
		WaitFor(t, 30*time.Second, "replica attached", func() error {
			_, err := r.Do("CLUSTER", "REPLICATE", id)
			return err
		})
	}
	for _, node := range all {
		WaitFor(t, 30*time.Second, "cluster ok with its replicas on "+node.Name(), func() error {
			r, err := node.Do("CLUSTER", "INFO")
			if err != nil {
				return err
			}
			if f := fields(strings.ReplaceAll(r, ":", "\n")); f["cluster_state"] != "ok" || f["cluster_slots_assigned"] != "16384" {
				return fmt.Errorf("state=%s slots=%s", f["cluster_state"], f["cluster_slots_assigned"])
			}
			shards, err := node.Do("CLUSTER", "SHARDS")
			if err != nil {
				return err
			}
			if c := strings.Count(shards, "\nhealth\nonline"); c < 2*n {
				return fmt.Errorf("CLUSTER SHARDS lists %d of %d nodes online", c, 2*n)
			}
			return nil
		})
	}
	for _, r := range c.Replicas {
		WaitFor(t, 30*time.Second, "replica in sync", func() error {
			info, err := r.Do("INFO", "replication")
			if err != nil {
				return err
			}
			if !strings.Contains(info, "master_link_status:up") {
				return errors.New("master link not up")
			}
			return nil
		})
	}
	return c
}

// waitEpochsSettled waits until every node reports the same, distinct
// config epochs for all primaries. Nodes started together begin with
// colliding epochs that gossip resolves a moment later; a slot handed over
// before that can be claimed back by its old owner with an equal or newer
// epoch, and the new owner then deletes the slot's keys as "dirty" (seen
// with Valkey 8.0).
func (c *ClusterSet) waitEpochsSettled(t testing.TB) {
	t.Helper()
	WaitFor(t, 30*time.Second, "cluster config epochs settled", func() error {
		var first string
		for _, n := range c.Nodes {
			nodes, err := n.Do("CLUSTER", "NODES")
			if err != nil {
				return err
			}
			view, err := primaryEpochs(nodes)
			if err != nil {
				return fmt.Errorf("%s: %w", n.Addr(), err)
			}
			if first == "" {
				first = view
			} else if view != first {
				return fmt.Errorf("%s sees epochs %s, another node %s", n.Addr(), view, first)
			}
		}
		return nil
	})
}

// primaryEpochs returns the primaries' "id=epoch" pairs of a CLUSTER NODES
// reply, sorted, or an error while two primaries share an epoch.
func primaryEpochs(nodes string) (string, error) {
	var pairs []string
	seen := map[string]string{}
	for line := range strings.SplitSeq(nodes, "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || !strings.Contains(f[2], "master") {
			continue
		}
		if other, dup := seen[f[6]]; dup {
			return "", fmt.Errorf("primaries %.8s and %.8s share config epoch %s", other, f[0], f[6])
		}
		seen[f[6]] = f[0]
		pairs = append(pairs, f[0]+"="+f[6])
	}
	slices.Sort(pairs)
	return strings.Join(pairs, ","), nil
}

// fields turns a flattened "k\nv\nk\nv" or "k\r\nv" reply into a map.
func fields(r string) map[string]string {
	parts := strings.Fields(r)
	m := make(map[string]string, len(parts)/2)
	for i := 0; i+1 < len(parts); i += 2 {
		m[parts[i]] = parts[i+1]
	}
	return m
}

// NodeID returns a cluster node's id.
func NodeID(t testing.TB, s *Server) string {
	t.Helper()
	id, err := s.Do("CLUSTER", "MYID")
	if err != nil {
		t.Fatalf("servertest: CLUSTER MYID on %s: %v", s.Addr(), err)
	}
	return strings.TrimSpace(id)
}

// Owner returns the node that serves slot, as the first node sees it.
func (c *ClusterSet) Owner(t testing.TB, slot int) *Server {
	t.Helper()
	byID := map[string]*Server{}
	for _, n := range c.Nodes {
		byID[NodeID(t, n)] = n
	}
	nodes, err := c.Nodes[0].Do("CLUSTER", "NODES")
	if err != nil {
		t.Fatalf("servertest: CLUSTER NODES: %v", err)
	}
	if s := byID[slotOwner(nodes, slot)]; s != nil {
		return s
	}
	t.Fatalf("servertest: no owner found for slot %d", slot)
	return nil
}

// slotOwner returns the id of the primary that serves slot in a CLUSTER
// NODES reply, "" if none.
func slotOwner(nodes string, slot int) string {
	for line := range strings.SplitSeq(nodes, "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || !strings.Contains(f[2], "master") {
			continue
		}
		for _, r := range f[8:] {
			lo, hi, found := strings.Cut(r, "-")
			if !found {
				hi = lo
			}
			l, err1 := strconv.Atoi(lo)
			h, err2 := strconv.Atoi(hi)
			if err1 == nil && err2 == nil && l <= slot && slot <= h {
				return f[0]
			}
		}
	}
	return ""
}

// BeginMigration puts slot in the migrating state on from and the
// importing state on to, as redis-cli --cluster reshard does first.
func (c *ClusterSet) BeginMigration(t testing.TB, slot int, from, to *Server) {
	t.Helper()
	if _, err := to.Do("CLUSTER", "SETSLOT", strconv.Itoa(slot), "IMPORTING", NodeID(t, from)); err != nil {
		t.Fatalf("servertest: SETSLOT IMPORTING: %v", err)
	}
	if _, err := from.Do("CLUSTER", "SETSLOT", strconv.Itoa(slot), "MIGRATING", NodeID(t, to)); err != nil {
		t.Fatalf("servertest: SETSLOT MIGRATING: %v", err)
	}
}

// MigrateKeys moves keys of a migrating slot from one node to another.
func (c *ClusterSet) MigrateKeys(t testing.TB, from, to *Server, keys ...string) {
	t.Helper()
	if len(keys) == 0 {
		return
	}
	args := append([]string{"MIGRATE", localserver.Host, strconv.Itoa(to.Port()), "", "0", "5000", "KEYS"}, keys...)
	if _, err := from.Do(args...); err != nil {
		t.Fatalf("servertest: MIGRATE %v: %v", keys, err)
	}
}

// FinishMigration moves the slot's remaining keys and assigns the slot to
// its new owner on every node.
func (c *ClusterSet) FinishMigration(t testing.TB, slot int, from, to *Server) {
	t.Helper()
	for range 1000 {
		r, err := from.Do("CLUSTER", "GETKEYSINSLOT", strconv.Itoa(slot), "100")
		if err != nil {
			t.Fatalf("servertest: GETKEYSINSLOT: %v", err)
		}
		keys := strings.Fields(r)
		if len(keys) == 0 {
			break
		}
		c.MigrateKeys(t, from, to, keys...)
	}
	// The new owner takes a new, highest epoch when it is given the slot;
	// that only wins over the old owner's claim once epochs agree.
	c.waitEpochsSettled(t)
	id := NodeID(t, to)
	for _, n := range append([]*Server{to, from}, c.Nodes...) {
		if _, err := n.Do("CLUSTER", "SETSLOT", strconv.Itoa(slot), "NODE", id); err != nil {
			t.Fatalf("servertest: SETSLOT NODE on %s: %v", n.Addr(), err)
		}
	}
	// Every node must see the new owner, with nothing left migrating, before
	// a client can rely on the slot map it reads from any of them.
	for _, n := range c.Nodes {
		WaitFor(t, 10*time.Second, fmt.Sprintf("node %s sees slot %d on its new owner", n.Addr(), slot), func() error {
			nodes, err := n.Do("CLUSTER", "NODES")
			if err != nil {
				return err
			}
			if strings.Contains(nodes, "["+strconv.Itoa(slot)+"-") {
				return fmt.Errorf("slot %d still migrating or importing", slot)
			}
			if slotOwner(nodes, slot) != id {
				return fmt.Errorf("slot %d not yet on %s", slot, to.Addr())
			}
			return nil
		})
	}
}

// MoveSlot migrates a whole slot with its keys.
func (c *ClusterSet) MoveSlot(t testing.TB, slot int, from, to *Server) {
	t.Helper()
	c.BeginMigration(t, slot, from, to)
	c.FinishMigration(t, slot, from, to)
}
