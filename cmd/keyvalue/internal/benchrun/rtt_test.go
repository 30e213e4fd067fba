package benchrun_test

import (
	"context"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue/cmd/keyvalue/internal/benchrun"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
	"github.com/valkey-io/valkey-go"
)

// TestRTTProxy: a PING through the proxy takes at least the round trip it
// adds (the delay is never skipped, also below the machine's timer
// granularity), and the proxy forwards replies intact.
func TestRTTProxy(t *testing.T) {
	s := servertest.Standalone(t)
	for _, rtt := range []time.Duration{250 * time.Microsecond, time.Millisecond} {
		p, err := benchrun.StartRTTProxy(s.Addr(), rtt)
		if err != nil {
			t.Fatal(err)
		}
		through, direct, err := benchrun.ProxyCost(context.Background(), valkey.ClientOption{ForceSingleClient: true, DisableCache: true}, s.Addr(), p.Addr(), 100)
		p.Stop()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("round trip %s: a PING takes %s through the proxy, %s directly", rtt, through, direct)
		if through < rtt {
			t.Errorf("a PING through a %s proxy took %s", rtt, through)
		}
	}
}
