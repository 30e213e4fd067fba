package benchrun

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/cmd/keyvalue/internal/naive"
	"github.com/keyvalue-go/keyvalue/session"
)

// ---- sessions

var sessionKey = []byte("keyvalue-bench-session-key-32-bytes!")

func openSessions(env *Env, scenario string) (*session.Store, *keyvalue.Client, error) {
	c, err := env.client("")
	if err != nil {
		return nil, nil, err
	}
	st, err := session.New(c, session.Options{Prefix: env.name(scenario, strconv.FormatInt(time.Now().UnixNano(), 36)), Key: sessionKey, Logger: quiet})
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return st, c, nil
}

func getAllN(n int, kv bool) Impl {
	return func(ctx context.Context, env *Env) (Measure, error) {
		data := json.RawMessage(`{"user":"42","cart":[1,2,3]}`)
		if kv {
			st, c, err := openSessions(env, "getall")
			if err != nil {
				return Measure{}, err
			}
			defer c.Close()
			for range env.n(n) {
				if _, err := st.Create(ctx, session.Record{Data: data}); err != nil {
					return Measure{}, err
				}
			}
			start := time.Now()
			recs, err := st.GetAll(ctx)
			took := time.Since(start)
			if want := env.n(n); err == nil && len(recs) != want {
				err = fmt.Errorf("listed %d sessions, want %d", len(recs), want)
			}
			if _, rerr := st.CollectGarbage(ctx); rerr != nil && err == nil {
				err = rerr
			}
			removeAll(ctx, st, recs)
			return Measure{Value: per(took, 1, "ms")}, err
		}
		ns, done, err := naiveSessions(env, "naive-sess")
		if err != nil {
			return Measure{}, err
		}
		defer done()
		for range env.n(n) {
			if err := ns.Set(ctx, session.NewID(), data, time.Hour); err != nil {
				return Measure{}, err
			}
		}
		start := time.Now()
		all, err := ns.GetAll(ctx)
		took := time.Since(start)
		if want := env.n(n); err == nil && len(all) != want {
			err = fmt.Errorf("listed %d sessions, want %d", len(all), want)
		}
		return Measure{Value: per(took, 1, "ms")}, err
	}
}

// naiveSessions opens the baseline session store in a fresh sub-namespace.
func naiveSessions(env *Env, scenario string) (*naive.Sessions, func(), error) {
	if !env.Plain {
		return nil, nil, ErrSkip
	}
	c, err := env.client("")
	if err != nil {
		return nil, nil, err
	}
	return naive.NewSessions(c, env.name(scenario, strconv.FormatInt(time.Now().UnixNano(), 36))+":"), c.Close, nil
}

func removeAll(ctx context.Context, st *session.Store, recs []session.Record) {
	for _, r := range recs {
		_, _ = st.Remove(ctx, r.ID)
	}
}

func renew(kv bool) Impl {
	return func(ctx context.Context, env *Env) (Measure, error) {
		n := env.sizes().renewOps
		if kv {
			st, c, err := openSessions(env, "renew")
			if err != nil {
				return Measure{}, err
			}
			defer c.Close()
			rec, err := st.Create(ctx, session.Record{UserID: "42"})
			if err != nil {
				return Measure{}, err
			}
			id := rec.ID
			start := time.Now()
			for range n {
				if id, err = st.Renew(ctx, id); err != nil {
					return Measure{}, err
				}
			}
			took := time.Since(start)
			_, _ = st.RemoveByUser(ctx, "42")
			return Measure{Value: per(took, n, "µs")}, nil
		}
		ns, done, err := naiveSessions(env, "naive-renew")
		if err != nil {
			return Measure{}, err
		}
		defer done()
		id := session.NewID()
		if err := ns.Set(ctx, id, []byte(`{"user":"42"}`), time.Hour); err != nil {
			return Measure{}, err
		}
		start := time.Now()
		for range n {
			next := session.NewID()
			if err := ns.Renew(ctx, id, next, time.Hour); err != nil {
				return Measure{}, err
			}
			id = next
		}
		return Measure{Value: per(time.Since(start), n, "µs")}, nil
	}
}
