package session_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/kvtest"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
	"github.com/keyvalue-go/keyvalue/session"
)

// BenchmarkCreateWaitReplicas shows what Options.WaitReplicas costs: the
// same write without and with waiting for one replica's acknowledgement.
func BenchmarkCreateWaitReplicas(b *testing.B) {
	primary := servertest.Standalone(b, servertest.WithName("primary"))
	replica := servertest.Standalone(b, servertest.WithName("replica"), servertest.WithArgs("--replicaof", "127.0.0.1", fmt.Sprint(primary.Port())))
	servertest.WaitFor(b, 20*time.Second, "replica in sync", func() error {
		r, err := replica.Do("INFO", "replication")
		if err != nil || !strings.Contains(r, "master_link_status:up") {
			return fmt.Errorf("not in sync: %v", err)
		}
		return nil
	})
	c, err := keyvalue.Open(keyvalue.Config{Addrs: []string{primary.Addr()}, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for _, n := range []int{0, 1} {
		st, err := session.New(c, session.Options{Prefix: fmt.Sprint("w", n), Key: key, WaitReplicas: n, WaitTimeout: time.Second, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("wait-replicas=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := st.Create(context.Background(), session.Record{UserID: "u"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRotation shows what key rotation and the per-user limit cost:
// a Get with one key (GET) and with a previous key configured (MGET of
// both hashes), a Get of a session still under the previous key, and a
// Create with and without MaxSessionsPerUser (at the limit: each Create
// evicts one, after one call that learns which).
func BenchmarkRotation(b *testing.B) {
	s := servertest.Standalone(b)
	c := kvtest.Open(b, keyvalue.Config{Addrs: []string{s.Addr()}, Logger: quiet})
	ctx := context.Background()
	newStore := func(o session.Options) *session.Store {
		o.Prefix, o.Logger = "bench", quiet
		st, err := session.New(c, o)
		if err != nil {
			b.Fatal(err)
		}
		return st
	}
	oldKey := []byte("old3456789abcdef0123456789abcdef")
	one, both := newStore(session.Options{Key: key}), newStore(session.Options{Key: key, PreviousKeys: [][]byte{oldKey}})
	rec, _ := one.Create(ctx, session.Record{UserID: "u"})
	oldRec, _ := newStore(session.Options{Key: oldKey}).Create(ctx, session.Record{UserID: "u"})
	for _, bc := range []struct {
		name string
		st   *session.Store
		id   string
	}{{"get/one-key", one, rec.ID}, {"get/previous-key-configured", both, rec.ID}, {"get/under-previous-key", both, oldRec.ID}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := bc.st.GetWith(ctx, bc.id, session.GetOptions{NoTouch: true}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, limit := range []int{0, 3} {
		st := newStore(session.Options{Key: key, MaxSessionsPerUser: limit})
		b.Run(fmt.Sprintf("create/max-sessions-per-user=%d", limit), func(b *testing.B) {
			for b.Loop() {
				if _, err := st.Create(ctx, session.Record{UserID: fmt.Sprint("limit", limit)}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGetAll lists 500 and 10,000 sessions (the bench's
// session/getall-500 and -10k): one ZRANGE, the MGETs, then decoding;
// profile it with -cpuprofile.
func BenchmarkGetAll(b *testing.B) {
	s := servertest.Standalone(b)
	c := kvtest.Open(b, keyvalue.Config{Addrs: []string{s.Addr()}, Logger: quiet})
	ctx := context.Background()
	for _, n := range []int{500, 10000} {
		st, err := session.New(c, session.Options{Prefix: fmt.Sprint("all", n), Key: key, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		for i := range n {
			if _, err := st.Create(ctx, session.Record{UserID: fmt.Sprint(i % 50), Data: []byte(`{"user":"42","cart":[1,2,3]}`)}); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				recs, err := st.GetAll(ctx)
				if err != nil || len(recs) != n {
					b.Fatalf("GetAll = %d records, %v", len(recs), err)
				}
			}
		})
	}
}

// BenchmarkSCSCommit shows what indexing scs sessions by user costs: a
// commit of the same session (1 KB of data) without SCSUser, with it, and
// a plain SET of the same record (the physical limit of a blind write).
func BenchmarkSCSCommit(b *testing.B) {
	s := servertest.Standalone(b)
	c := kvtest.Open(b, keyvalue.Config{Addrs: []string{s.Addr()}, Logger: quiet})
	st, err := session.New(c, session.Options{Prefix: "scsbench", Key: key, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	codec := scs.GobCodec{}
	data, err := codec.Encode(time.Now().Add(time.Hour), map[string]any{"userID": "42", "cart": strings.Repeat("x", 1000)})
	if err != nil {
		b.Fatal(err)
	}
	expiry := time.Now().Add(time.Hour)
	for _, tc := range []struct {
		name string
		a    *session.SCS
	}{
		{"plain", st.SCS()},
		{"with-user", st.SCS(session.SCSUser(codec, func(v map[string]any) (string, string) { u, _ := v["userID"].(string); return u, "" }))},
	} {
		token := session.NewID()
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if err := tc.a.Commit(token, data, expiry); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("limit-SET", func(b *testing.B) {
		record := strings.Repeat("x", len(data)*4/3+300)
		for b.Loop() {
			if err := c.Do(context.Background(), c.B().Set().Key("kv:{s:scsbench}:limit").Value(record).Px(time.Hour).Build()).Error(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
