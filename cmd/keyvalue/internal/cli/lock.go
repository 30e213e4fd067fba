package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/lock"
	"github.com/spf13/cobra"
)

func newLockCmd(ep *endpointFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lock",
		Short: "List, inspect and force-release distributed locks",
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List locks with their state (SCAN, never KEYS)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withLocker(cmd, ep, func(ctx context.Context, l *lock.Locker, out io.Writer) error {
				names, err := l.Names(ctx)
				if err != nil {
					return err
				}
				if len(names) == 0 {
					fmt.Fprintln(out, "no locks")
					return nil
				}
				fmt.Fprintf(out, "%-30s %-10s %8s %8s %8s %8s\n", "NAME", "STATE", "TTL", "READERS", "WAITING", "FENCE")
				bad := 0
				for _, n := range names {
					i, err := l.Inspect(ctx, n)
					if err != nil {
						// One broken lock (a key of the wrong type) must not hide the others.
						bad++
						fmt.Fprintf(out, "%-30s %-10s %v\n", cell(n), "UNREADABLE", err)
						continue
					}
					fmt.Fprintf(out, "%-30s %-10s %8s %8d %8d %8d\n", cell(n), state(i), i.TTL.Round(1e6), i.Readers, i.WaitingWriters+i.WaitingReaders, i.Fence)
				}
				if bad > 0 {
					return fmt.Errorf("%d of %d locks could not be read (see UNREADABLE above)", bad, len(names))
				}
				return nil
			})
		},
	}
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a lock's holder, TTL, readers, waiters and fencing counter",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withLocker(cmd, ep, func(ctx context.Context, l *lock.Locker, out io.Writer) error {
				i, err := l.Inspect(ctx, args[0])
				if err != nil {
					return err
				}
				r := report{out}
				r.line("lock", "%s (keys kv:{l:%s}*)", i.Name, i.Name)
				r.line("state", "%s", state(i))
				if i.Holder != "" {
					r.line("holder", "lease %s, %s left", i.Holder, i.TTL.Round(1e6))
				}
				r.line("readers", "%d", i.Readers)
				r.line("waiting", "%d writers, %d readers", i.WaitingWriters, i.WaitingReaders)
				r.line("fence", "%d (last token handed out)", i.Fence)
				return nil
			})
		},
	}
	var force, yes bool
	release := &cobra.Command{
		Use:   "release NAME --force",
		Short: "Drop a lock's holders (when they are known to be gone) and wake a waiter",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force {
				return errors.New("release takes the lock away from whoever holds it: add --force to do that")
			}
			return withLocker(cmd, ep, func(ctx context.Context, l *lock.Locker, out io.Writer) error {
				i, err := l.Inspect(ctx, args[0])
				if err != nil {
					return err
				}
				if !i.Held() {
					fmt.Fprintf(out, "lock %s is not held\n", i.Name)
					return nil
				}
				if err := confirm(cmd, yes, fmt.Sprintf("lock %s is %s. Release it?", i.Name, state(i)), false); err != nil {
					return fmt.Errorf("not released: %w", err)
				}
				if err := l.ForceRelease(ctx, i.Name); err != nil {
					return err
				}
				fmt.Fprintf(out, "lock %s released\n", i.Name)
				return nil
			})
		},
	}
	release.Flags().BoolVar(&force, "force", false, "required: confirms that holders are taken away")
	release.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	cmd.AddCommand(list, show, release)
	return cmd
}

func state(i lock.Info) string {
	switch {
	case i.Holder != "":
		return "exclusive"
	case i.Readers > 0:
		return fmt.Sprintf("shared(%d)", i.Readers)
	}
	return "free"
}

func withLocker(cmd *cobra.Command, ep *endpointFlags, fn func(context.Context, *lock.Locker, io.Writer) error) error {
	return withClient(cmd, ep, func(ctx context.Context, client *keyvalue.Client, cfg keyvalue.Config) error {
		return fn(ctx, lock.New(client, lock.Options{Logger: cfg.Logger}), cmd.OutOrStdout())
	})
}
