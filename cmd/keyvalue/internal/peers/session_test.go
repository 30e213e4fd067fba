package peers_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/alexedwards/scs/redisstore"
	"github.com/gomodule/redigo/redis"
	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/cmd/keyvalue/internal/naive"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
	"github.com/keyvalue-go/keyvalue/session"
)

// sessionPeers sets up keyvalue's store, the naive store and scs's
// redisstore (redigo) on one fresh server.
func sessionPeers(b *testing.B) (*session.Store, *naive.Sessions, *redisstore.RedisStore) {
	s := servertest.Standalone(b)
	kv, err := keyvalue.Open(keyvalue.Config{Addrs: []string{s.Addr()}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(kv.Close)
	st, err := session.New(kv, session.Options{Prefix: "bench", Key: []byte("0123456789abcdef0123456789abcdef"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	pool := &redis.Pool{MaxIdle: 64, Dial: func() (redis.Conn, error) { return redis.Dial("tcp", s.Addr()) }}
	b.Cleanup(func() { pool.Close() })
	return st, naive.NewSessions(kv, "naive:sess:"), redisstore.New(pool)
}

func BenchmarkSessionGetAll500(b *testing.B) {
	st, nv, rs := sessionPeers(b)
	ctx := context.Background()
	data := []byte(`{"user":"42","cart":[1,2,3]}`)
	exp := time.Now().Add(time.Hour)
	for range 500 {
		if _, err := st.Create(ctx, session.Record{Bytes: data}); err != nil {
			b.Fatal(err)
		}
		id := session.NewID()
		_ = nv.Set(ctx, id, data, time.Hour)
		_ = rs.Commit(id, data, exp)
	}
	b.Run("naive", func(b *testing.B) {
		for b.Loop() {
			if m, err := nv.GetAll(ctx); err != nil || len(m) != 500 {
				b.Fatal(len(m), err)
			}
		}
	})
	b.Run("scs-redisstore", func(b *testing.B) {
		for b.Loop() {
			if m, err := rs.All(); err != nil || len(m) != 500 {
				b.Fatal(len(m), err)
			}
		}
	})
	b.Run("keyvalue", func(b *testing.B) {
		for b.Loop() {
			if r, err := st.GetAll(ctx); err != nil || len(r) != 500 {
				b.Fatal(len(r), err)
			}
		}
	})
}

func BenchmarkSessionRenew(b *testing.B) {
	st, nv, _ := sessionPeers(b)
	ctx := context.Background()
	data := []byte(`{"user":"42"}`)
	b.Run("naive", func(b *testing.B) {
		id := session.NewID()
		_ = nv.Set(ctx, id, data, time.Hour)
		for b.Loop() {
			next := session.NewID()
			if err := nv.Renew(ctx, id, next, time.Hour); err != nil {
				b.Fatal(err)
			}
			id = next
		}
	})
	b.Run("keyvalue", func(b *testing.B) {
		rec, _ := st.Create(ctx, session.Record{Bytes: data})
		id := rec.ID
		for b.Loop() {
			next, err := st.Renew(ctx, id)
			if err != nil {
				b.Fatal(err)
			}
			id = next
		}
	})
}

func BenchmarkSessionGetSet(b *testing.B) {
	st, _, rs := sessionPeers(b)
	data := []byte(`{"user":"42","cart":[1,2,3]}`)
	id := session.NewID()
	exp := time.Now().Add(time.Hour)
	_ = rs.Commit(id, data, exp)
	_ = st.SCS().Commit(id, data, exp)
	// Both stores through scs's interface, so the calls are the same.
	stores := []struct {
		name string
		s    interface {
			Find(string) ([]byte, bool, error)
			Commit(string, []byte, time.Time) error
		}
	}{{"scs-redisstore", rs}, {"keyvalue", st.SCS()}}
	for _, op := range []string{"get", "set"} {
		for _, parallel := range []bool{false, true} {
			for _, im := range stores {
				call := func() error {
					if op == "get" {
						_, _, err := im.s.Find(id)
						return err
					}
					return im.s.Commit(id, data, exp)
				}
				name := op
				if parallel {
					name += "-parallel-64"
				}
				b.Run(name+"/"+im.name, func(b *testing.B) {
					if !parallel {
						for b.Loop() {
							if err := call(); err != nil {
								b.Fatal(err)
							}
						}
						return
					}
					b.SetParallelism(32) // 2 CPUs x 32 = 64 goroutines
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := call(); err != nil {
								b.Error(err)
								return
							}
						}
					})
				})
			}
		}
	}
}
