package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/keyvalue-go/keyvalue/lock"
	"github.com/keyvalue-go/keyvalue/session"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/valkey-io/valkey-go"
)

// componentFlags name the parts of keyvalue a deployment uses, for the
// ACL rules they need.
type componentFlags struct {
	caches, shardedCaches, sessions, lockNames []string
	locks                                      bool
}

func (f *componentFlags) register(fs *pflag.FlagSet) {
	fs.StringArrayVar(&f.caches, "cache", nil, "a cache name (repeatable; a glob such as '*' for every cache); caches declared in --config are added")
	fs.StringArrayVar(&f.shardedCaches, "sharded-cache", nil, "a cache in sharded mode (repeatable)")
	fs.StringArrayVar(&f.sessions, "sessions", nil, "a session store's prefix (repeatable; '*' for every store)")
	fs.BoolVar(&f.locks, "locks", false, "locks, any name")
	fs.StringArrayVar(&f.lockNames, "lock", nil, "one lock name (repeatable), instead of --locks")
}

// errNoComponents: nothing to derive rules from.
var errNoComponents = errors.New("name what the application uses: --cache NAME, --sharded-cache NAME, --sessions PREFIX, --locks or --lock NAME (caches declared in --config count too)")

// permissions are what the named components need on a connection of cfg.
// With none named (and no declared cache) it returns errNoComponents,
// unless all is set: then every component, any name.
func (f *componentFlags) permissions(cfg cache.Config, all bool) ([]keyvalue.Permissions, error) {
	var perms []keyvalue.Permissions
	for _, name := range slices.Sorted(maps.Keys(cfg.Caches)) {
		perms = append(perms, cache.Permissions(name, cfg.Caches[name].Sharded))
	}
	for _, name := range f.caches {
		perms = append(perms, cache.Permissions(name, false))
	}
	for _, name := range f.shardedCaches {
		perms = append(perms, cache.Permissions(name, true))
	}
	for _, p := range f.sessions {
		perms = append(perms, session.Permissions(p))
	}
	switch {
	case f.locks:
		perms = append(perms, lock.Permissions())
	case len(f.lockNames) > 0:
		perms = append(perms, lock.Permissions(f.lockNames...))
	}
	if len(perms) == 0 {
		if !all {
			return nil, errNoComponents
		}
		perms = []keyvalue.Permissions{cache.Permissions("*", false), cache.Permissions("*", true), session.Permissions("*"), lock.Permissions()}
	}
	return append([]keyvalue.Permissions{keyvalue.ConnectionPermissions(cfg.Config)}, perms...), nil
}

func newACLCmd(ep *endpointFlags) *cobra.Command {
	var (
		comps componentFlags
		user  string
	)
	cmd := &cobra.Command{
		Use:   "acl",
		Short: "Print the ACL SETUSER line a least-privilege user of keyvalue needs",
		Long: `acl prints the ACL SETUSER command that gives a user exactly what the named
parts of keyvalue need: their key patterns and the commands they and their scripts
send (plus what every connection needs: HELLO, PING, INFO, CLIENT TRACKING, ...).
The user's passwords are left as they are: append >PASSWORD to set one.

The connection settings (--url, --config, KEYVALUE_*) are read but no server is
contacted; caches declared in --config are included. keyvalue doctor checks a
user against the same rules with ACL DRYRUN.`,
		Example: `  keyvalue acl --user app --cache pages --sessions fe --locks
  keyvalue acl --user app --config /etc/app/keyvalue.yaml --locks
  keyvalue acl --user app --cache pages | valkey-cli -x ...`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if user == "" || strings.ContainsAny(user, " \t\r\n") {
				return fmt.Errorf("--user %q: name the ACL user (no spaces)", user)
			}
			cfg, err := ep.configOnly()
			if err != nil {
				return err
			}
			perms, err := comps.permissions(cfg, false)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ACL SETUSER %s %s\n", user, keyvalue.ACLRules(perms...))
			return nil
		},
	}
	comps.register(cmd.Flags())
	cmd.Flags().StringVar(&user, "user", "", "the ACL user to print the line for (required)")
	return cmd
}

// aclCheck is the outcome of checking a user against what components
// need with ACL DRYRUN.
type aclCheck struct {
	user    string
	checked int
	// missing are the rules the user lacks, in the order found, each with
	// the commands it blocks.
	missing []*missingRule
}

// missingRule is one rule the user lacks: "+zadd", or a key pattern.
type missingRule struct {
	rule, component, example, reply string
	blocked                         int
}

// checkACL asks the server, with ACL DRYRUN (Redis 7, Valkey), whether
// user may run every command perms need. A user that may not run ACL
// DRYRUN itself cannot be checked this way: the error says so.
func checkACL(ctx context.Context, c valkey.Client, user string, perms []keyvalue.Permissions) (aclCheck, error) {
	out := aclCheck{user: user}
	seen := map[string]bool{}
	byRule := map[string]*missingRule{}
	for _, p := range perms {
		for _, cmd := range p.Commands {
			words := cmd.Words()
			line := strings.Join(words, " ")
			if seen[line] {
				continue
			}
			seen[line] = true
			out.checked++
			reply, err := c.Do(ctx, c.B().Arbitrary("ACL", "DRYRUN").Args(append([]string{user}, words...)...).Build()).ToString()
			if err != nil {
				if errors.Is(err, keyvalue.ErrNoPermission) {
					return out, fmt.Errorf("the connection's user may not run ACL DRYRUN, so it cannot check %q: run doctor as an admin user with --acl-user %s", user, user)
				}
				return out, fmt.Errorf("ACL DRYRUN %s %s: %w", user, line, err)
			}
			if reply == "OK" {
				continue
			}
			rule := ruleOf(cmd, p, reply)
			m := byRule[rule]
			if m == nil {
				m = &missingRule{rule: rule, component: p.Component, example: line, reply: reply}
				byRule[rule] = m
				out.missing = append(out.missing, m)
			}
			m.blocked++
		}
	}
	return out, nil
}

// ruleOf names the rule a refused command lacks: its component's key
// patterns when the server refused a key, else the command.
func ruleOf(cmd keyvalue.Command, p keyvalue.Permissions, reply string) string {
	if strings.Contains(reply, "key") && len(p.KeyPatterns) > 0 {
		return "~" + strings.Join(p.KeyPatterns, " ~")
	}
	return "+" + cmd.Name
}

// aclReport prints doctor's ACL lines and reports whether they pass.
func aclReport(ctx context.Context, r report, w io.Writer, c valkey.Client, user string, perms []keyvalue.Permissions) bool {
	chk, err := checkACL(ctx, c, user, perms)
	if err != nil {
		r.line("acl", "NOT CHECKED: %v", err)
		return true // not a failure of the deployment: doctor could not look
	}
	if len(chk.missing) == 0 {
		r.line("acl", "user %q may run all %d commands the checked components send", user, chk.checked)
		return true
	}
	rules := "rules"
	if len(chk.missing) == 1 {
		rules = "rule"
	}
	r.line("acl", "FAILED: user %q lacks %d %s for the checked components:", user, len(chk.missing), rules)
	for _, m := range chk.missing {
		what := m.component + ": " + m.example
		if m.blocked > 1 {
			what = fmt.Sprintf("%d commands of %s, e.g. %s", m.blocked, m.component, m.example)
		}
		fmt.Fprintf(w, "%-15s   %s (%s): %s\n", "", m.rule, what, m.reply)
	}
	fmt.Fprintf(w, "%-15s %s\n", "", "grant them with the line keyvalue acl prints for the same components (ACL SETUSER "+user+" ...)")
	return false
}
