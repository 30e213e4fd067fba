package servertest

import (
	"strings"
	"testing"
)

func TestTopologiesStart(t *testing.T) {
	t.Run("standalone", func(t *testing.T) {
		s := Standalone(t)
		if r, err := s.Do("PING"); err != nil || r != "PONG" {
			t.Fatalf("PING = %q, %v", r, err)
		}
		s.Kill()
		if s.Running() {
			t.Fatal("still running after Kill")
		}
		if err := s.Restart(); err != nil {
			t.Fatal(err)
		}
		if r, err := s.Do("PING"); err != nil || r != "PONG" {
			t.Fatalf("PING after restart = %q, %v", r, err)
		}
	})
	t.Run("mtls", func(t *testing.T) {
		c := NewCerts(t)
		s := Standalone(t, WithTLS(c, true))
		if r, err := s.Do("PING"); err != nil || r != "PONG" {
			t.Fatalf("PING = %q, %v", r, err)
		}
	})
	t.Run("cluster", func(t *testing.T) {
		c := Cluster(t, 3)
		r, err := c.Nodes[0].Do("CLUSTER", "INFO")
		if err != nil || !strings.Contains(r, "cluster_state:ok") {
			t.Fatalf("CLUSTER INFO = %q, %v", r, err)
		}
	})
}
