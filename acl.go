package keyvalue

import (
	"slices"
	"strconv"
	"strings"
)

// Permissions are what a part of keyvalue needs from the server's access
// control (ACL): the keys it touches and the commands it sends, its
// scripts' commands included (the server checks what a script calls as
// if the client had sent it). The packages that own a key layout say
// theirs (cache.Permissions, session.Permissions, lock.Permissions);
// ConnectionPermissions is what every connection needs. ACLRules turns
// them into an ACL SETUSER rule list; the CLI's keyvalue acl prints it and
// keyvalue doctor checks a user against them with ACL DRYRUN.
type Permissions struct {
	// Component names the part: "connection", "cache pages", ...
	Component string
	// KeyPatterns are ACL key patterns (globs, without the "~") covering
	// every key the part touches.
	KeyPatterns []string
	// Commands are the commands the part sends, each with arguments as it
	// sends them (keys under KeyPatterns), for ACL DRYRUN.
	Commands []Command
}

// Command is one command with example arguments: Name is lower-case, a
// subcommand after '|' as ACL rules write it ("client|tracking").
type Command struct {
	Name string
	Args []string
}

// Cmd builds a Command; args are the arguments after the command (and
// subcommand) name.
func Cmd(name string, args ...string) Command { return Command{Name: name, Args: args} }

// Words returns the command as sent: "client|tracking" with arguments
// ON OPTIN is CLIENT TRACKING ON OPTIN.
func (c Command) Words() []string {
	name, sub, _ := strings.Cut(c.Name, "|")
	out := []string{strings.ToUpper(name)}
	if sub != "" {
		out = append(out, strings.ToUpper(sub))
	}
	return append(out, c.Args...)
}

// ConnectionPermissions are what every connection of cfg needs: HELLO,
// PING (health checks), INFO (the server's version, checked on the first
// dial), CLIENT SETNAME, CLIENT TRACKING and CACHING with MULTI/EXEC
// (client-side caching; without them the client carries on without
// caching), CLIENT UNBLOCK (a cancelled blocking wait), SELECT, the
// scripts' loading (SCRIPT LOAD, EVALSHA), and a Cluster's topology
// (CLUSTER SLOTS or SHARDS, ASKING during a slot migration).
// CLIENT SETINFO, which valkey-go sends and whose refusal it ignores, is
// left out: Redis 7.0 does not know it, and an ACL rule naming an unknown
// command makes the whole ACL SETUSER fail there.
func ConnectionPermissions(cfg Config) Permissions {
	p := Permissions{Component: "connection", Commands: []Command{
		Cmd("hello", "3"),
		Cmd("ping"),
		Cmd("info", "server"),
		Cmd("client|unblock", "1"),
		Cmd("script|load", "return 1"),
		Cmd("evalsha", strings.Repeat("0", 40), "0"),
	}}
	if cfg.ClientName != "" {
		p.Commands = append(p.Commands, Cmd("client|setname", cfg.ClientName))
	}
	if !cfg.ClientCache.Disable {
		// valkey-go reads a cached key as MULTI, CLIENT CACHING YES, the
		// read, PTTL, EXEC (tracking in OPTIN mode); PTTL is in the
		// permissions of the components whose keys are read so.
		p.Commands = append(p.Commands, Cmd("client|tracking", "ON", "OPTIN"), Cmd("client|caching", "YES"),
			Cmd("multi"), Cmd("exec"))
	}
	if cfg.DB != 0 {
		p.Commands = append(p.Commands, Cmd("select", strconv.Itoa(cfg.DB)))
	}
	if cfg.FollowRedirects {
		p.Commands = append(p.Commands, Cmd("client|capa", "redirect"))
	}
	// A Cluster's topology, and ASKING for a slot being migrated; granted
	// in every mode, so that one user serves a deployment that moves to a
	// Cluster.
	p.Commands = append(p.Commands, Cmd("cluster|slots"), Cmd("cluster|shards"), Cmd("asking"))
	if cfg.Mode == ModeCluster && cfg.ReadFromReplicas {
		p.Commands = append(p.Commands, Cmd("readonly"))
	}
	return p
}

// ACLRules returns the rules of an ACL SETUSER (what follows the user
// name) that allow what perms need and nothing else:
//
//	on resetkeys resetchannels -@all ~kv:{c:pages}:* ... +get +set ...
//
// The user's passwords are left as they are: add ">password" to the line,
// or set them separately. Commands and patterns appear once, sorted.
func ACLRules(perms ...Permissions) string {
	var keys, cmds []string
	for _, p := range perms {
		keys = append(keys, p.KeyPatterns...)
		for _, c := range p.Commands {
			cmds = append(cmds, c.Name)
		}
	}
	slices.Sort(keys)
	slices.Sort(cmds)
	rules := []string{"on", "resetkeys", "resetchannels", "-@all"}
	for _, k := range slices.Compact(keys) {
		rules = append(rules, "~"+k)
	}
	for _, c := range slices.Compact(cmds) {
		rules = append(rules, "+"+c)
	}
	return strings.Join(rules, " ")
}
