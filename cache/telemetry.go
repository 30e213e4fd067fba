package cache

import (
	"errors"
)

// counterDescriptions are the cache's counters (keyvalue.cache.NAME).
var counterDescriptions = map[string]string{
	"hits":           "Reads that found an entry.",
	"misses":         "Reads that found no entry (or, in degraded mode, could not reach the server).",
	"local_hits":     "Reads served by the local read cache (Options.LocalCacheTTL).",
	"stale_served":   "Reads that returned a stale entry within its grace while it was recomputed.",
	"recomputes":     "Computations of missing, stale or early-refreshed entries by GetOrSet.",
	"refused_writes": "Computed values not stored because a flush of their tags came after their computation began.",
	"dropped_writes": "Writes dropped in degraded mode because the server could not be reached.",
}

// classify names the cache's own errors for the error.type attribute.
func classify(err error) string {
	var input *InputError
	switch {
	case errors.As(err, &input):
		return "invalid_input"
	case errors.Is(err, ErrCorrupt):
		return "corrupt"
	case errors.Is(err, ErrUnavailable):
		return "unavailable"
	case errors.Is(err, ErrEvictionPolicy):
		return "eviction_policy"
	}
	return ""
}

// notMiss is err unless it is a miss, which is an answer, not a failure.
func notMiss(err error) error {
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}
