package admin

import (
	"context"
	"time"

	"github.com/keyvalue-go/keyvalue/cache"
)

// survey is what a background walk of a cache found.
type survey struct {
	Started, Ended time.Time
	Stats          cache.Stats
	Indexes        []cache.TagIndex // largest first
	Complete       bool             // the index walk saw every index
	err            error
	done           chan struct{} // closed when the survey ends
}

// Bounds of a survey: how long it may run, how many tag indexes it
// lists, and how long a page view waits for a survey it started (so a
// small cache shows its figures at once).
const (
	surveyTimeout    = 2 * time.Minute
	surveyMaxIndexes = 10000
	surveyWait       = 100 * time.Millisecond
)

// surveys is what a page view knows of a cache's surveys.
type surveys struct {
	latest  *survey // the latest that succeeded; nil before the first
	failed  *survey // the latest, if it failed
	running *survey // the one under way, if any
}

// current returns the cache's surveys, starting one when the latest
// ended longer than every ago (at most one runs per cache).
func (v *cacheView) current(every time.Duration, now time.Time) surveys {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.on == nil && (v.last == nil || now.Sub(v.last.Ended) >= every) {
		v.on = &survey{Started: now, done: make(chan struct{})}
		go v.run(v.on)
	}
	st := surveys{latest: v.s, running: v.on}
	if v.last != nil && v.last.err != nil {
		st.failed = v.last
	}
	return st
}

// run walks the cache for s. It is bounded by surveyTimeout and detached
// from the request that started it: a survey of a large cache outlives
// the page view, and the next view shows it.
func (v *cacheView) run(s *survey) {
	ctx, cancel := context.WithTimeout(context.Background(), surveyTimeout)
	defer cancel()
	s.Stats, s.err = v.b.Stats(ctx, nil)
	if s.err == nil {
		s.Indexes, s.Complete, s.err = v.b.TagIndexes(ctx, surveyMaxIndexes)
	}
	s.Ended = time.Now()
	v.mu.Lock()
	if s.err == nil {
		v.s = s
	}
	v.last, v.on = s, nil
	v.mu.Unlock()
	close(s.done)
}
