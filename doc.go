// Package keyvalue is the connection factory of keyvalue: one Config and
// a lazily connected valkey-go client, which the cache, session and lock
// packages take.
//
// # Configuring
//
// A Config comes from Go code or from one of four loaders: a URL
// (LoadURL), a YAML or JSON file (LoadFile) or document (LoadBytes), or
// the environment (LoadEnv). The loaders fill any Document: a Config, or a
// struct embedding it, such as cache.Config, which declares named caches
// beside the connection in the same file, URL or environment. All share
// the same keys; unknown keys and invalid values are errors that name the
// key:
//
//	redis://[[user]:password@]host[:port][/db][?key=value...]
//	rediss://...                                   TLS (valkey://, valkeys:// alike)
//	redis+sentinel://s1:26379,s2,s3/MASTER[/db]    Sentinel discovery
//	redis+cluster://seed1:6379,seed2               Cluster
//	unix:///run/valkey.sock[?db=N]                 a Unix socket
//
//	KEYVALUE_URL=rediss://app:pw@cache:6380 KEYVALUE_TLS_CA_FILE=/run/tls/ca.crt
//
// # Connecting
//
// Open does no network I/O. The first command dials; concurrent first
// commands share that dial; a failed dial is retried with exponential
// backoff and jitter (Config.Retry), bounded by the command's context.
// There is no process-wide state: every Open returns an independent
// client, and Close closes that one (within a second, whatever the servers
// do; blocking commands in flight end with ErrClosed). Share a connection
// by passing the client: eleven caches built on one client cost one
// client's connections (cache.Open groups declared caches that way).
//
// A Client implements valkey.Client: pass it wherever valkey-go clients are
// accepted, and build commands with B() as usual.
//
// # Credentials and certificates that rotate
//
// Secrets are read for every new connection, so they rotate without a
// restart: Config.PasswordFile is read again on each dial (a Kubernetes
// secret replaced on disk), Config.Credentials (a CredentialsProvider) is
// called on each dial, and the TLS files (certificate, key, CA) are
// loaded again when one of them changed, checked with a stat per dial; a
// half-written set (a new certificate before its key) keeps the previous
// one in use and is logged once. Connections open at the rotation keep
// working until they close; a connection killed by the server (CLIENT
// KILL after a rotation) is replaced with the new secret. Credentials
// whose ReauthAt is set are sent again (AUTH) on the open connections at
// that time: short-lived tokens. In Sentinel mode the sentinels have
// their own credentials (SentinelConfig.Credentials, or Username and
// Password) and TLS files.
//
// The module github.com/keyvalue-go/keyvalue/examples/cloudauth has
// providers for AWS IAM (ElastiCache, MemoryDB) and Microsoft Entra ID
// (Azure), as recipes to copy; the cloud SDKs stay out of this module.
//
// # Permissions
//
// A server that refuses a command for the connection's ACL user (NOPERM)
// makes it fail with a *PermissionError matching ErrNoPermission, which
// names the command, the key and what the user lacks; it is never
// retried. What each component needs is listed by its Permissions
// function (cache.Permissions, session.Permissions, lock.Permissions,
// ConnectionPermissions); ACLRules turns them into an ACL SETUSER rule
// list, and keyvalue acl prints it (keyvalue doctor checks a user with ACL
// DRYRUN).
//
// # Guarantees
//
//   - Failures to connect are *ConnectError values that match ErrUnreachable,
//     ErrTLS, ErrAuth, ErrUnknownMaster, ErrRejected or ErrServerVersion
//     with errors.Is, and carry a hint saying what to change. Only
//     ErrUnreachable is retried: the others need a configuration change.
//   - Servers older than Redis 7.0 (MinRedisVersion) or Valkey 7.2
//     (MinValkeyVersion) are refused when the client connects, with an
//     error naming the server's version and the minimum (one INFO server
//     on the first connection; a user whose ACL forbids INFO is not
//     checked).
//   - Certificate verification is on unless tls.insecure_skip_verify is set,
//     which is logged as a warning on every Open. TLS 1.2 is the minimum.
//   - In Sentinel mode the client follows +switch-master events, and a
//     watcher asks the sentinels for the primary every
//     sentinel.refresh_interval (5s, with a deadline) and replaces a client
//     left on the old one, so neither a missed event nor a primary that
//     hangs instead of dying pins it (see sentinel.go).
//   - Servers that refuse CLIENT TRACKING (some managed services and
//     proxies) are detected at connect time; the client continues without
//     client-side caching and logs it once.
//   - Only read-only commands are retried by valkey-go after a network
//     error, with the same backoff (once only after a timeout); writes are
//     never sent twice.
//
// # Bounds
//
// How long a call can take when the network to the server drops packets
// without closing connections (a partition, a frozen server), in terms of
// the configuration: io (io_timeout, default 10s), dial (dial_timeout,
// default 5s), hc (health_check_interval, default 1s). A call that gets no
// answer fails with a *ConnectError matching ErrUnreachable that says so
// ("no answer from ...: no reply within io_timeout"), never with a bare
// timeout, and the caller's context, if it ends sooner, ends it sooner.
// Measured through a Toxiproxy "timeout" toxic (internal/netfaults) with
// io 1s, dial 2s, hc 500ms:
//
//	call                                  bound                       measured
//	a write (Set, a script)               io                          1.01 s
//	a read (Get; retried once)            2·io + dial                 2.02 s
//	a connection going silent             2·hc + io                   1.79 s (its local copies
//	                                                                  are dropped with it)
//	the first command of a new client     retry.max_attempts · dial
//	                                      + the backoff between them
//	a blocking wait (BLPOP) at Close      at once (ErrClosed)
//	a command in flight at Close          io                          a waiting Lock renewing its
//	                                                                  place: 0.16 s
//
// Each component's doc adds its own: what holds, and how long its callers
// wait, under each fault.
package keyvalue
