// Package peers implements keyvalue bench's scenarios with the libraries
// people use today, for the side-by-side table: go-redis/cache, scs's
// redisstore, bsm/redislock, go-redsync/redsync and valkey-go's valkeylock.
// Where a library cannot do a scenario (no tags, no flush), it has no
// entry and the table shows "—". Peers only run against a plain
// standalone server (no TLS, database 0); elsewhere they are skipped.
package peers

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/alexedwards/scs/redisstore"
	"github.com/bsm/redislock"
	rediscache "github.com/go-redis/cache/v9"
	"github.com/go-redsync/redsync/v4"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"
	"github.com/gomodule/redigo/redis"
	"github.com/keyvalue-go/keyvalue/cmd/keyvalue/internal/benchrun"
	"github.com/keyvalue-go/keyvalue/session"
	goredislib "github.com/redis/go-redis/v9"
	"github.com/valkey-io/valkey-go"
	"github.com/valkey-io/valkey-go/valkeylock"
)

// All returns every peer.
func All() []benchrun.Peer {
	return []benchrun.Peer{goRedisCache(), scsRedisstore(), redisLock(), redSync(), valkeyLock()}
}

func goRedis(env *benchrun.Env) (*goredislib.Client, error) {
	if !env.Plain {
		return nil, benchrun.ErrSkip
	}
	return goredislib.NewClient(&goredislib.Options{Addr: env.Cfg.Addrs[0], Username: env.Cfg.Username, Password: env.Cfg.Password, PoolSize: 64, TLSConfig: env.TLS}), nil
}

func key(env *benchrun.Env, parts ...string) string {
	k := env.NS
	for _, p := range parts {
		k += ":" + p
	}
	return k + ":" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

func goRedisCache() benchrun.Peer {
	return benchrun.Peer{Name: "go-redis/cache", Impls: map[string]benchrun.Impl{
		"bootstrap/11-caches": func(ctx context.Context, env *benchrun.Env) (benchrun.Measure, error) {
			if !env.Plain {
				return benchrun.Measure{}, benchrun.ErrSkip
			}
			start := time.Now()
			var clients []*goredislib.Client
			for range 11 {
				c, _ := goRedis(env)
				_ = rediscache.New(&rediscache.Options{Redis: c})
				clients = append(clients, c)
			}
			took := time.Since(start)
			for _, c := range clients {
				c.Close()
			}
			return benchrun.Measure{Value: float64(took) / 1e3}, nil
		},
		"cache/get-parallel-64": func(ctx context.Context, env *benchrun.Env) (benchrun.Measure, error) {
			c, err := goRedis(env)
			if err != nil {
				return benchrun.Measure{}, err
			}
			defer c.Close()
			cc := rediscache.New(&rediscache.Options{Redis: c})
			k := key(env, "gocache-get")
			if err := cc.Set(&rediscache.Item{Ctx: ctx, Key: k, Value: make([]byte, 512), TTL: time.Hour}); err != nil {
				return benchrun.Measure{}, err
			}
			ops, err := benchrun.Throughput(64, benchrun.ParallelWindow(env), func() error { var v []byte; return cc.Get(ctx, k, &v) })
			if err != nil {
				return benchrun.Measure{}, err
			}
			return benchrun.Measure{Value: ops}, nil
		},
		"cache/stampede-64": func(ctx context.Context, env *benchrun.Env) (benchrun.Measure, error) {
			var caches []*rediscache.Cache
			for range benchrun.StampedeClients {
				c, err := goRedis(env)
				if err != nil {
					return benchrun.Measure{}, err
				}
				defer c.Close()
				caches = append(caches, rediscache.New(&rediscache.Options{Redis: c}))
			}
			k := key(env, "gocache-stampede")
			defer func() { _ = caches[0].Delete(context.Background(), k) }()
			return benchrun.Stampede(benchrun.StampedeClients, func(i int) (bool, error) {
				computed := false
				var v string
				err := caches[i].Once(&rediscache.Item{Ctx: ctx, Key: k, Value: &v, TTL: time.Minute, Do: func(*rediscache.Item) (any, error) {
					computed = true
					time.Sleep(50 * time.Millisecond)
					return "page", nil
				}})
				return computed, err
			})
		},
		"cache/get-local-hit": func(ctx context.Context, env *benchrun.Env) (benchrun.Measure, error) {
			c, err := goRedis(env)
			if err != nil {
				return benchrun.Measure{}, err
			}
			defer c.Close()
			cc := rediscache.New(&rediscache.Options{Redis: c, LocalCache: rediscache.NewTinyLFU(1000, time.Minute)})
			k := key(env, "gocache-local")
			if err := cc.Set(&rediscache.Item{Ctx: ctx, Key: k, Value: make([]byte, 512), TTL: time.Hour}); err != nil {
				return benchrun.Measure{}, err
			}
			n := getOps(env)
			start := time.Now()
			for range n {
				var v []byte
				if err := cc.Get(ctx, k, &v); err != nil {
					return benchrun.Measure{}, err
				}
			}
			return benchrun.Measure{Value: float64(time.Since(start)) / float64(n)}, nil
		},
	}}
}

func getOps(env *benchrun.Env) int {
	switch {
	case env.Tiny:
		return 200
	case env.Quick:
		return 20000
	}
	return 100000
}

func scsRedisstore() benchrun.Peer {
	store := func(env *benchrun.Env) (*redisstore.RedisStore, *redis.Pool, error) {
		if !env.Plain {
			return nil, nil, benchrun.ErrSkip
		}
		pool := &redis.Pool{MaxIdle: 16, Dial: func() (redis.Conn, error) {
			return redis.Dial("tcp", env.Cfg.Addrs[0], redis.DialUsername(env.Cfg.Username), redis.DialPassword(env.Cfg.Password),
				redis.DialUseTLS(env.TLS != nil), redis.DialTLSConfig(env.TLS))
		}}
		return redisstore.NewWithPrefix(pool, key(env, "scs")+":"), pool, nil
	}
	return benchrun.Peer{Name: "scs-redisstore", Impls: map[string]benchrun.Impl{
		"session/getall-500": func(ctx context.Context, env *benchrun.Env) (benchrun.Measure, error) {
			rs, pool, err := store(env)
			if err != nil {
				return benchrun.Measure{}, err
			}
			defer pool.Close()
			want := 500
			if env.Tiny {
				want = 10
			}
			for range want {
				if err := rs.Commit(session.NewID(), []byte(`{"user":"42","cart":[1,2,3]}`), time.Now().Add(time.Hour)); err != nil {
					return benchrun.Measure{}, err
				}
			}
			start := time.Now()
			all, err := rs.All()
			took := time.Since(start)
			if err == nil && len(all) != want {
				err = fmt.Errorf("listed %d sessions, want %d", len(all), want)
			}
			return benchrun.Measure{Value: float64(took) / 1e6}, err
		},
		"session/renew": func(ctx context.Context, env *benchrun.Env) (benchrun.Measure, error) {
			// scs.SessionManager.RenewToken at the store: find, commit under the new token, delete the old.
			rs, pool, err := store(env)
			if err != nil {
				return benchrun.Measure{}, err
			}
			defer pool.Close()
			id := session.NewID()
			exp := time.Now().Add(time.Hour)
			if err := rs.Commit(id, []byte(`{"user":"42"}`), exp); err != nil {
				return benchrun.Measure{}, err
			}
			n := 1000
			if env.Quick {
				n = 200
			}
			if env.Tiny {
				n = 10
			}
			start := time.Now()
			for range n {
				b, _, err := rs.Find(id)
				if err != nil {
					return benchrun.Measure{}, err
				}
				next := session.NewID()
				if err := rs.Commit(next, b, exp); err != nil {
					return benchrun.Measure{}, err
				}
				if err := rs.Delete(id); err != nil {
					return benchrun.Measure{}, err
				}
				id = next
			}
			return benchrun.Measure{Value: float64(time.Since(start)) / float64(n) / 1e3}, nil
		},
	}}
}

// LockerFactory makes a peer's lock on the lock named name (and a function
// releasing its client): two calls with one name contend for one lock.
type LockerFactory func(env *benchrun.Env, name string) (benchrun.Locker, func(), error)

// Lockers are the peer locks by name, for benchmarks outside keyvalue bench.
func Lockers() map[string]LockerFactory {
	return map[string]LockerFactory{"redislock": redisLocker, "redsync": redsyncLocker, "valkeylock": valkeyLocker}
}

// lockPeer builds the two lock scenarios from a locker factory.
func lockPeer(name string, make LockerFactory) benchrun.Peer {
	run := func(measure benchrun.LockMeasure) benchrun.Impl {
		return func(ctx context.Context, env *benchrun.Env) (benchrun.Measure, error) {
			name := key(env, name)
			var lockers [2]benchrun.Locker
			for i := range lockers {
				l, done, err := make(env, name)
				if err != nil {
					return benchrun.Measure{}, err
				}
				defer done()
				lockers[i] = l
			}
			return measure(ctx, env, lockers[0], lockers[1])
		}
	}
	return benchrun.Peer{Name: name, Impls: map[string]benchrun.Impl{
		"lock/handoff":       run(benchrun.HandoffMeasure),
		"lock/contended-8":   run(benchrun.ContendedMeasure),
		"lock/contended-2x4": run(benchrun.ContendedTwoMeasure),
	}}
}

// Polling peers retry every 10ms (redislock's examples use 100ms; redsync's
// default is a random 50-250ms).
func redisLock() benchrun.Peer { return lockPeer("redislock", redisLocker) }

func redisLocker(env *benchrun.Env, name string) (benchrun.Locker, func(), error) {
	c, err := goRedis(env)
	if err != nil {
		return nil, nil, err
	}
	rl, k := redislock.New(c), name
	return benchrun.LockerFunc(func(ctx context.Context) (func() error, error) {
		l, err := rl.Obtain(ctx, k, benchrun.LockTTL, &redislock.Options{RetryStrategy: redislock.LinearBackoff(10 * time.Millisecond)})
		if err != nil {
			return nil, err
		}
		return func() error { return l.Release(ctx) }, nil
	}), func() { c.Close() }, nil
}

func redSync() benchrun.Peer { return lockPeer("redsync", redsyncLocker) }

func redsyncLocker(env *benchrun.Env, name string) (benchrun.Locker, func(), error) {
	c, err := goRedis(env)
	if err != nil {
		return nil, nil, err
	}
	rs, k := redsync.New(goredis.NewPool(c)), name
	return benchrun.LockerFunc(func(ctx context.Context) (func() error, error) {
		m := rs.NewMutex(k, redsync.WithExpiry(benchrun.LockTTL), redsync.WithTries(1<<20), redsync.WithRetryDelay(10*time.Millisecond))
		if err := m.LockContext(ctx); err != nil {
			return nil, err
		}
		return func() error { _, err := m.UnlockContext(ctx); return err }, nil
	}), func() { c.Close() }, nil
}

func valkeyLock() benchrun.Peer { return lockPeer("valkeylock", valkeyLocker) }

func valkeyLocker(env *benchrun.Env, name string) (benchrun.Locker, func(), error) {
	if !env.Plain {
		return nil, nil, benchrun.ErrSkip
	}
	vl, err := valkeylock.NewLocker(valkeylock.LockerOption{
		ClientOption: valkey.ClientOption{InitAddress: env.Cfg.Addrs[:1], Username: env.Cfg.Username, Password: env.Cfg.Password, ForceSingleClient: true, TLSConfig: env.TLS},
		KeyPrefix:    name, KeyMajority: 1, KeyValidity: benchrun.LockTTL,
	})
	if err != nil {
		return nil, nil, err
	}
	return benchrun.LockerFunc(func(ctx context.Context) (func() error, error) {
		_, cancel, err := vl.WithContext(ctx, "l")
		if err != nil {
			return nil, err
		}
		return func() error { cancel(); return nil }, nil
	}), vl.Close, nil
}
