package session_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/keyvalue-go/keyvalue/session"
)

// TestPageCountRemoveRef: an operator pages through sessions, sees their
// references (never their ids), and revokes one by reference.
func TestPageCountRemoveRef(t *testing.T) {
	t.Parallel()
	_, _, st := setup(t, session.Options{})
	ids := map[string]string{} // ref -> id
	for i := range 25 {
		user := []string{"alice", "bob"}[i%2]
		rec, err := st.Create(ctx(t), session.Record{UserID: user})
		if err != nil {
			t.Fatal(err)
		}
		if rec.Ref == "" || strings.Contains(rec.Ref, rec.ID) {
			t.Fatalf("Create: Ref %q", rec.Ref)
		}
		ids[rec.Ref] = rec.ID
	}
	if n, err := st.Count(ctx(t)); err != nil || n != 25 {
		t.Fatalf("Count = %d, %v", n, err)
	}
	seen := map[string]bool{}
	for offset := 0; offset < 30; offset += 10 {
		page, total, err := st.Page(ctx(t), offset, 10)
		if err != nil || total != 25 || len(page) != min(10, 25-offset) {
			t.Fatalf("Page(%d) = %d records, total %d, %v", offset, len(page), total, err)
		}
		for _, r := range page {
			if _, ok := ids[r.Ref]; !ok || seen[r.Ref] || r.ID != ids[r.Ref] {
				t.Errorf("Page(%d) lists ref %q (id %q): unknown or listed twice", offset, r.Ref, r.ID)
			}
			seen[r.Ref] = true
		}
	}
	if len(seen) != 25 {
		t.Errorf("pages listed %d sessions, want 25", len(seen))
	}

	// Revoke one of alice's by reference: gone, and gone from her list.
	alice, err := st.GetAllByUser(ctx(t), "alice")
	if err != nil || len(alice) != 13 {
		t.Fatalf("GetAllByUser = %d, %v", len(alice), err)
	}
	victim := alice[0]
	if ok, err := st.RemoveRef(ctx(t), victim.Ref); !ok || err != nil {
		t.Fatalf("RemoveRef = %v, %v", ok, err)
	}
	if _, err := st.Get(ctx(t), victim.ID); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Get after RemoveRef: %v", err)
	}
	if after, _ := st.GetAllByUser(ctx(t), "alice"); len(after) != 12 {
		t.Errorf("alice has %d sessions after RemoveRef, want 12", len(after))
	}
	if n, _ := st.Count(ctx(t)); n != 24 {
		t.Errorf("Count after RemoveRef = %d, want 24", n)
	}
	if ok, err := st.RemoveRef(ctx(t), victim.Ref); ok || err != nil {
		t.Errorf("second RemoveRef = %v, %v; want false, nil", ok, err)
	}

	// Bad input: what a user sees, and nothing removed.
	for _, tc := range []struct {
		ref, want string
	}{
		{victim.ID, "session: invalid session reference"},
		{strings.ToUpper(alice[1].Ref), "use a Record.Ref (64 lower-case hex digits) from a listing"},
	} {
		if _, err := st.RemoveRef(ctx(t), tc.ref); !errors.Is(err, session.ErrInvalidRef) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("RemoveRef(%.10q...) = %v; want ErrInvalidRef saying %q", tc.ref, err, tc.want)
		}
	}
	for _, tc := range [][2]int{{-1, 10}, {0, 0}, {0, 1001}} {
		_, _, err := st.Page(ctx(t), tc[0], tc[1])
		if err == nil || !strings.Contains(err.Error(), "use an offset of 0 or more and a limit of 1 to 1000") {
			t.Errorf("Page(%d, %d) = %v", tc[0], tc[1], err)
		}
	}
	if n, _ := st.Count(ctx(t)); n != 24 {
		t.Errorf("Count after bad input = %d, want 24", n)
	}
}
