package session_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue"
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
