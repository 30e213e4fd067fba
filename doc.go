// Package keyvalue is the connection factory of keyvalue: one Config, one
// lazy and shared valkey-go client per endpoint, used by the cache, session
// and lock packages.
//
// # Configuring
//
// A Config comes from Go code, a URL (ParseURL), a YAML or JSON file
// (LoadConfigFile) or the environment (ConfigFromEnv). All four share the
// same keys; unknown keys and invalid values are errors that name the key:
//
//	redis://[[user]:password@]host[:port][/db][?key=value...]
//	rediss://...                                   TLS (valkey://, valkeys:// alike)
//	redis+sentinel://s1:26379,s2,s3/MASTER[/db]    Sentinel discovery
//	redis+cluster://seed1:6379,seed2               Cluster
//
//	KEYVALUE_URL=rediss://app:pw@cache:6380 KEYVALUE_TLS_CA_FILE=/run/tls/ca.crt
//
// # Connecting
//
// Open does no network I/O. The first command dials; concurrent first
// commands share that dial; a failed dial is retried with exponential
// backoff and jitter (Config.Retry), bounded by the command's context.
// Handles opened with an equal Config share one underlying valkey-go
// client, so eleven caches on one server cost one client; the client closes
// with the last handle.
//
// A Client implements valkey.Client: pass it wherever valkey-go clients are
// accepted, and build commands with B() as usual.
//
// # Guarantees
//
//   - Failures to connect are *ConnectError values that match ErrUnreachable,
//     ErrTLS, ErrAuth or ErrUnknownMaster with errors.Is, and carry a hint
//     saying what to change. TLS, authentication and unknown-master errors
//     are not retried: only a configuration change helps.
//   - Certificate verification is on unless tls.insecure_skip_verify is set,
//     which is logged as a warning on every Open. TLS 1.2 is the minimum.
//   - In Sentinel mode the client follows +switch-master events and
//     re-checks the topology every sentinel.refresh_interval (5s), so a missed
//     event cannot pin it to a demoted primary.
//   - Servers that refuse CLIENT TRACKING (some managed services and
//     proxies) are detected at connect time; the client continues without
//     client-side caching and logs it once.
//   - Only read-only commands are retried by valkey-go after a network
//     error, with the same backoff; writes are never sent twice.
package keyvalue
