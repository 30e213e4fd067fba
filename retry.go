package keyvalue

import (
	"math/rand/v2"
	"time"
)

// Delay returns how long to wait before retry number attempt (1 for the
// first retry). prev is the previous delay, used by decorrelated jitter; 0
// derives it from attempt. rng supplies randomness; pass a seeded source for
// reproducible delays, or nil for a shared random source.
//
// Equal jitter: d = min(Cap, Base·2^(attempt-1)); wait d/2 + rand[0, d/2].
// Decorrelated jitter: wait min(Cap, rand[Base, 3·prev]).
func (r RetryConfig) Delay(attempt int, prev time.Duration, rng *rand.Rand) time.Duration {
	base, capd := r.Base, r.Cap
	if base <= 0 {
		base = DefaultRetryBase
	}
	if capd < base {
		capd = max(DefaultRetryCap, base)
	}
	attempt = max(attempt, 1)
	exp := base
	for i := 1; i < attempt && exp < capd; i++ {
		if exp > capd/2 {
			exp = capd // doubling would pass the cap (or overflow)
			break
		}
		exp *= 2
	}
	exp = min(exp, capd)
	intn := rand.Int64N
	if rng != nil {
		intn = rng.Int64N
	}
	switch r.Jitter {
	case JitterDecorrelated:
		if prev <= 0 {
			prev = exp / 2
		}
		hi := capd
		if p := max(prev, base); p < capd/3 {
			hi = 3 * p
		}
		if hi <= base {
			return base
		}
		return base + time.Duration(intn(int64(hi-base)+1))
	default:
		half := exp / 2
		return half + time.Duration(intn(int64(exp-half)+1))
	}
}
