package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/session"
	"github.com/spf13/cobra"
)

// sessionFlags choose the store.
type sessionFlags struct {
	prefix, keyFile  string
	previousKeyFiles []string
}

func newSessionCmd(ep *endpointFlags) *cobra.Command {
	var sf sessionFlags
	cmd := &cobra.Command{
		Use:   "session",
		Short: "List, revoke and garbage-collect sessions of a session store",
		Long: `Operate on the session store with --prefix (keys kv:{s:PREFIX}:...). --key-file names
the file holding the store's secret key (the application's session.Options.Key); it is
needed to find sessions by id and to tell ids apart.`,
	}
	cmd.PersistentFlags().StringVar(&sf.prefix, "prefix", "", "the store's prefix (required)")
	cmd.PersistentFlags().StringVar(&sf.keyFile, "key-file", "", "file with the store's secret key (required)")
	cmd.PersistentFlags().StringArrayVar(&sf.previousKeyFiles, "previous-key-file", nil, "file with a previous key the store still accepts (repeatable; session.Options.PreviousKeyFiles)")

	var user string
	list := &cobra.Command{
		Use:   "list",
		Short: "List live sessions (expiry index + MGET; never KEYS)",
		Long: `List live sessions, or a user's with --user. Each is named by its REF (session.Record.Ref:
a keyed hash of the id, which is not a credential and can be shown and pasted) — give it to
'session revoke --ref' to end that session. Session ids are never printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, ep, sf, func(ctx context.Context, st *session.Store, out io.Writer) error {
				var recs []session.Record
				var err error
				if user != "" {
					recs, err = st.GetAllByUser(ctx, user)
				} else {
					recs, err = st.GetAll(ctx)
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "%-64s %-16s %-20s %-20s %s\n", "REF", "USER", "CREATED", "EXPIRES", "PERMANENT")
				unreadable := 0
				for _, r := range recs {
					note := ""
					if r.ID == "" {
						note = "  (id unreadable with this key)"
						unreadable++
					}
					fmt.Fprintf(out, "%-64s %-16s %-20s %-20s %v%s\n", r.Ref, cell(r.UserID), r.Created.Format(time.DateTime), r.Expires.Format(time.DateTime), r.Permanent, note)
				}
				fmt.Fprintf(out, "%d sessions\n", len(recs))
				if unreadable > 0 {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: the ids of %d of %d sessions cannot be read with this key: is --key-file the store's key?\n", unreadable, len(recs))
				}
				return nil
			})
		},
	}
	list.Flags().StringVar(&user, "user", "", "only this user's sessions")

	var revokeUser, revokeRef string
	revoke := &cobra.Command{
		Use:   "revoke [--ref REF | --user U | [--] ID]",
		Short: "Remove one session by its REF or id, or every session of a user",
		Long: `Remove one session — by the REF 'session list' and 'session devices' print (--ref), or by
its id — or every session of a user (--user). Session ids may start with '-': put -- before
such an id (keyvalue session revoke -- -AbC...), as with any command.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			given := 0
			for _, set := range []bool{len(args) == 1, revokeUser != "", revokeRef != ""} {
				if set {
					given++
				}
			}
			if given != 1 {
				return errors.New("give one of: --ref REF (from 'session list'), --user U, or a session ID")
			}
			return withStore(cmd, ep, sf, func(ctx context.Context, st *session.Store, out io.Writer) error {
				switch {
				case revokeUser != "":
					n, err := st.RemoveByUser(ctx, revokeUser)
					if err != nil {
						return err
					}
					fmt.Fprintf(out, "revoked %d sessions of user %s\n", n, cell(revokeUser))
					return nil
				case revokeRef != "":
					ok, err := st.RemoveRef(ctx, revokeRef)
					if err != nil {
						return err
					}
					if !ok {
						return fmt.Errorf("no session with ref %s in store %s (already revoked or expired?)", revokeRef, cell(sf.prefix))
					}
					fmt.Fprintf(out, "revoked session %s\n", revokeRef)
					return nil
				}
				ok, err := st.Remove(ctx, args[0])
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("no session %s", short(args[0]))
				}
				fmt.Fprintf(out, "revoked session %s\n", short(args[0]))
				return nil
			})
		},
	}
	revoke.Flags().StringVar(&revokeUser, "user", "", "revoke every session of this user")
	revoke.Flags().StringVar(&revokeRef, "ref", "", "revoke the session with this REF (from 'session list' or 'session devices')")

	gc := &cobra.Command{
		Use:   "gc",
		Short: "Drop expired entries from the session indexes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, ep, sf, func(ctx context.Context, st *session.Store, out io.Writer) error {
				n, err := st.CollectGarbage(ctx)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "dropped %d expired index entries\n", n)
				return nil
			})
		},
	}
	var batch int
	rekey := &cobra.Command{
		Use:   "rekey",
		Short: "Move every session stored under a previous key to the current key",
		Long: `Move every session stored under a key given with --previous-key-file to the key of
--key-file, in pages of --batch index entries (ZSCAN; the server keeps serving between
pages), with the same atomic script a write uses: a session written meanwhile is moved by
that write and nothing is lost. Once a run moves nothing, the previous key can be dropped
from the application's configuration.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(sf.previousKeyFiles) == 0 {
				return errors.New("rekey needs the old key: give it with --previous-key-file (and the new one with --key-file)")
			}
			return withStore(cmd, ep, sf, func(ctx context.Context, st *session.Store, out io.Writer) error {
				stats, err := st.Rekey(ctx, batch, func(s session.RekeyStats) {
					fmt.Fprintf(cmd.ErrOrStderr(), "\rscanned %d, moved %d, skipped %d", s.Scanned, s.Moved, s.Skipped)
				})
				fmt.Fprintln(cmd.ErrOrStderr())
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "moved %d sessions to the current key (%d index entries scanned, %d skipped: renewed stubs, vanished or unreadable records)\n", stats.Moved, stats.Scanned, stats.Skipped)
				return nil
			})
		},
	}
	rekey.Flags().IntVar(&batch, "batch", 500, "index entries per page")

	var devicesUser string
	devices := &cobra.Command{
		Use:   "devices --user U",
		Short: "List a user's sessions (by REF) with their device descriptions and times",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if devicesUser == "" {
				return errors.New("give the user with --user")
			}
			return withStore(cmd, ep, sf, func(ctx context.Context, st *session.Store, out io.Writer) error {
				recs, err := st.GetAllByUser(ctx, devicesUser)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "%-64s %-20s %-20s %s\n", "REF", "CREATED", "LAST SEEN", "DEVICE")
				for _, r := range recs {
					fmt.Fprintf(out, "%-64s %-20s %-20s %s\n", r.Ref, r.Created.Format(time.DateTime), r.Touched.Format(time.DateTime), cell(r.Device))
				}
				fmt.Fprintf(out, "%d sessions of user %s\n", len(recs), cell(devicesUser))
				return nil
			})
		},
	}
	devices.Flags().StringVar(&devicesUser, "user", "", "the user (required)")
	cmd.AddCommand(list, revoke, gc, rekey, devices)
	return cmd
}

// short shows enough of an id to tell sessions apart without printing a
// usable session id.
func short(id string) string {
	if len(id) <= 8 {
		return id
	}
	return id[:8] + "…"
}

func withStore(cmd *cobra.Command, ep *endpointFlags, sf sessionFlags, fn func(context.Context, *session.Store, io.Writer) error) error {
	if sf.prefix == "" || sf.keyFile == "" {
		return errors.New("--prefix and --key-file are required")
	}
	key, err := os.ReadFile(sf.keyFile)
	if err != nil {
		return fmt.Errorf("--key-file: %w", err)
	}
	return withClient(cmd, ep, func(ctx context.Context, client *keyvalue.Client, cfg keyvalue.Config) error {
		st, err := session.New(client, session.Options{Prefix: sf.prefix, Key: bytes.TrimSpace(key), PreviousKeyFiles: sf.previousKeyFiles, Logger: cfg.Logger})
		if err != nil {
			return err
		}
		return fn(ctx, st, cmd.OutOrStdout())
	})
}

// cell prints a value in a table cell: quoted when it holds spaces or
// control characters (a user id with a newline must not break the table).
func cell(s string) string {
	if s == "" || strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == '"' }) < 0 {
		return s
	}
	return strconv.Quote(s)
}
