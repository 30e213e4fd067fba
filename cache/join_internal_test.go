package cache

import (
	"errors"
	"testing"
)

// TestJoinErrors: a cause that every batch or index got reads once.
func TestJoinErrors(t *testing.T) {
	tryAgain := errors.New("TRYAGAIN Multiple keys request during rehashing of slot")
	other := errors.New("WRONGTYPE Operation against a key holding the wrong kind of value")
	var errs []error
	for _, k := range []string{"kv:{c:p}:i:a", "kv:{c:p}:i:b", "kv:{c:p}:i:c", "kv:{c:p}:i:d", "kv:{c:p}:i:e"} {
		errs = append(errs, &keyError{k, tryAgain})
	}
	errs = append(errs, nil, other, other, &keyError{"kv:{c:p}:i:x", other})
	err := joinErrors(errs...)
	want := "TRYAGAIN Multiple keys request during rehashing of slot (on kv:{c:p}:i:a, kv:{c:p}:i:b, kv:{c:p}:i:c and 2 more); " +
		"WRONGTYPE Operation against a key holding the wrong kind of value (on kv:{c:p}:i:x)"
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
	if !errors.Is(err, tryAgain) || !errors.Is(err, other) {
		t.Error("errors.Is does not see the causes")
	}
	if joinErrors(nil, nil) != nil {
		t.Error("nothing but nils joined to an error")
	}
	if got := joinErrors(other, other).Error(); got != other.Error()+" (2 times)" {
		t.Errorf("got %q", got)
	}
}
