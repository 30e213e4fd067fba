package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

func newCacheCmd(ep *endpointFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "Flush, garbage-collect and inspect a named cache",
		Long: `Operate on one named cache (the NAME in its keys kv:{c:NAME}:...). Options declared
for it under caches.NAME in --config or KEYVALUE_* apply; undeclared names use defaults.
Everything uses SCAN and UNLINK in batches: the server keeps serving while it runs.`,
	}
	var tags []string
	var yes bool
	flush := &cobra.Command{
		Use:   "flush NAME",
		Short: "Remove every entry of a cache, or only those with the given --tag values",
		Long: `Remove every entry of a cache, or with --tag only the entries carrying one of the tags.
A whole-cache flush asks for confirmation on a terminal; elsewhere it needs --yes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("tag") && len(tags) == 0 {
				return errors.New("--tag is empty: name the tags to flush (or leave --tag out to flush the whole cache)")
			}
			return withBackend(cmd, ep, args[0], func(ctx context.Context, b *cache.Backend, out io.Writer) error {
				start := time.Now()
				if len(tags) > 0 {
					n, err := b.FlushByTags(ctx, tags...)
					if err != nil {
						return err
					}
					fmt.Fprintf(out, "cache %s: flushed %d entries tagged %v in %s\n", b.Name(), n, tags, time.Since(start).Round(time.Microsecond))
					return nil
				}
				if err := confirm(cmd, yes, fmt.Sprintf("Remove every entry of cache %s (keys %s*)?", b.Name(), b.Prefix()), true); err != nil {
					return err
				}
				bar := spinner(cmd.ErrOrStderr(), "flushing "+b.Name())
				n, err := b.Flush(ctx, func(done int) { _ = bar.Set(done) })
				_ = bar.Finish()
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "cache %s: removed %d keys in %s\n", b.Name(), n, time.Since(start).Round(time.Microsecond))
				return nil
			})
		},
	}
	flush.Flags().StringSliceVar(&tags, "tag", nil, "flush only entries with this tag (repeatable, or comma-separated)")
	flush.Flags().BoolVarP(&yes, "yes", "y", false, "flush the whole cache without asking")

	gc := &cobra.Command{
		Use:   "gc NAME",
		Short: "Remove ids of expired entries from the cache's tag sets",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withBackend(cmd, ep, args[0], func(ctx context.Context, b *cache.Backend, out io.Writer) error {
				start := time.Now()
				bar := spinner(cmd.ErrOrStderr(), "collecting garbage in "+b.Name())
				st, err := b.CollectGarbage(ctx, func(done int) { _ = bar.Set(done) })
				_ = bar.Finish()
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "cache %s: visited %d tag indexes, removed %d stale memberships, %d indexes emptied, in %s\n", b.Name(), st.Indexes, st.RemovedMembers, st.IndexesRemoved, time.Since(start).Round(time.Microsecond))
				if st.Skipped > 0 {
					fmt.Fprintf(out, "cache %s: skipped %d keys that are not tag indexes (wrong type); see the log above\n", b.Name(), st.Skipped)
				}
				return nil
			})
		},
	}

	stats := &cobra.Command{
		Use:   "stats NAME",
		Short: "Count a cache's entries and tags and estimate its memory",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withBackend(cmd, ep, args[0], func(ctx context.Context, b *cache.Backend, out io.Writer) error {
				bar := spinner(cmd.ErrOrStderr(), "scanning "+b.Name())
				st, err := b.Stats(ctx, func(done int) { _ = bar.Set(done) })
				_ = bar.Finish()
				if err != nil {
					return err
				}
				r := report{out}
				r.line("cache", "%s (keys %s*)", b.Name(), b.Prefix())
				r.line("entries", "%d", st.Entries)
				r.line("tags", "%d", st.Tags)
				r.line("keys", "%d", st.Keys)
				r.line("memory", "~%s (MEMORY USAGE of %d sampled keys)", humanBytes(st.MemoryBytes), st.Sampled)
				return nil
			})
		},
	}
	cmd.AddCommand(flush, gc, stats)
	return cmd
}

// withBackend resolves the endpoint and opens the named cache with its
// declared options (the defaults when the configuration declares none).
// A throwaway local server is not useful here, so an endpoint must be
// given.
func withBackend(cmd *cobra.Command, ep *endpointFlags, name string, fn func(context.Context, *cache.Backend, io.Writer) error) error {
	e, err := ep.resolveRequired(cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	defer e.close()
	cfg := e.cfg
	cfg.Caches = map[string]cache.Spec{name: e.cfg.Caches[name]}
	group, err := cache.Open(cfg)
	if err != nil {
		return err
	}
	defer group.Close()
	b, err := group.Backend(name)
	if err != nil {
		return err
	}
	ctx, cancel := ep.context(cmd)
	defer cancel()
	return fn(ctx, b, cmd.OutOrStdout())
}

func spinner(w io.Writer, what string) *progressbar.ProgressBar {
	if !isTerminal(w) {
		w = io.Discard // no spinner in logs; the summary line follows
	}
	return progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionSetItsString("keys"),
		progressbar.OptionShowIts(),
		progressbar.OptionShowCount(),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSpinnerType(14),
	)
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
