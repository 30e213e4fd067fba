package keyvalue

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// LoadURL fills doc afresh from a connection URL:
//
//	redis://[[user]:password@]host[:port][/db][?key=value...]
//	rediss://...                      TLS (valkey:// and valkeys:// are the same)
//	redis+sentinel://[[user]:password@]s1[:26379],s2,s3/MASTER[/db][?...]
//	redis+cluster://[[user]:password@]seed1[:6379],seed2[?...]
//	unix://[[user]:password@]/run/valkey.sock[?db=N&...]   a Unix socket (standalone, no TLS)
//
// rediss+sentinel and rediss+cluster (and the valkey spellings) enable TLS
// to the data nodes. Credentials in the URL are the data nodes'; the
// sentinels' are query keys (sentinel_username, sentinel_password), as is
// their TLS (sentinel_tls_enabled=true, sentinel_tls_ca_file=...). Any other
// key may be given as a query parameter by its flat name, set with doc's
// SetKey, e.g. ?tls_ca_file=/run/tls/ca.crt&dial_timeout=2s&client_name=web
// (and, for a cache.Config, caches_pages_compression=zstd). Unknown
// parameters are errors. Reserved characters in the password must be
// percent-encoded.
//
//	var cfg keyvalue.Config
//	err := keyvalue.LoadURL("rediss://app:pw@cache:6380/2", &cfg)
func LoadURL(raw string, doc Document) error {
	reset(doc)
	cfg := doc.connection()
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return cfgErr("url", "%q has no scheme: start it with redis://, rediss://, redis+sentinel:// or redis+cluster://", redactURL(raw))
	}
	if strings.EqualFold(scheme, "unix") {
		return parseUnixURL(raw, rest, doc)
	}
	base, topo, _ := strings.Cut(strings.ToLower(scheme), "+")
	switch base {
	case "redis", "valkey":
	case "rediss", "valkeys":
		cfg.TLS.Enabled = true
	default:
		return cfgErr("url", "scheme %q is not supported: use redis, rediss, valkey or valkeys (optionally +sentinel or +cluster)", scheme)
	}
	defaultPort := "6379"
	switch topo {
	case "":
		cfg.Mode = ModeStandalone
	case "sentinel":
		cfg.Mode, defaultPort = ModeSentinel, "26379"
	case "cluster":
		cfg.Mode = ModeCluster
	default:
		return cfgErr("url", "scheme %q: unknown topology %q (use +sentinel or +cluster)", scheme, topo)
	}

	rest, query, _ := strings.Cut(rest, "?")
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		rest = rest[:i]
	}
	authority, path, _ := strings.Cut(rest, "/")
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		if err := cfg.setUserinfo(authority[:at]); err != nil {
			return err
		}
		authority = authority[at+1:]
	}
	for h := range strings.SplitSeq(authority, ",") {
		if h == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			switch {
			case len(h) > 2 && h[0] == '[' && h[len(h)-1] == ']' && !strings.ContainsAny(h[1:len(h)-1], "[]"):
				h = net.JoinHostPort(h[1:len(h)-1], defaultPort) // an IPv6 literal without a port
			case strings.ContainsAny(h, ":[]"):
				return cfgErr("url", "%q is not a host or host:port (write IPv6 addresses in brackets: [::1]:6379)", h)
			default:
				h = net.JoinHostPort(h, defaultPort)
			}
		}
		cfg.Addrs = append(cfg.Addrs, h)
	}
	if len(cfg.Addrs) == 0 {
		return cfgErr("url", "%q names no host", redactURL(raw))
	}

	segs := []string{}
	for s := range strings.SplitSeq(path, "/") {
		if s != "" {
			segs = append(segs, s)
		}
	}
	if cfg.Mode == ModeSentinel {
		if len(segs) == 0 {
			return cfgErr("url", "sentinel URLs name the master after the hosts: redis+sentinel://host:26379/MASTER[/db]")
		}
		m, err := url.PathUnescape(segs[0])
		if err != nil {
			return cfgErr("url", "master name is not valid percent-encoding")
		}
		cfg.Sentinel.Master, segs = m, segs[1:]
	}
	switch len(segs) {
	case 0:
	case 1:
		db, err := strconv.Atoi(segs[0])
		if err != nil {
			return cfgErr("db", "URL path %q is not a database number", segs[0])
		}
		cfg.DB = db
	default:
		return cfgErr("url", "path %q has too many parts", path)
	}

	return setQuery(doc, query)
}

// setUserinfo sets the credentials from a URL's "user:password" part.
func (c *Config) setUserinfo(info string) error {
	user, pass, hasPass := strings.Cut(info, ":")
	var err error
	if c.Username, err = url.PathUnescape(user); err != nil {
		return cfgErr("url", "username is not valid percent-encoding")
	}
	if hasPass {
		if c.Password, err = url.PathUnescape(pass); err != nil {
			return cfgErr("url", "password is not valid percent-encoding")
		}
	}
	return nil
}

// setQuery sets the keys given as a URL's query parameters through doc's SetKey.
func setQuery(doc Document, query string) error {
	values, err := url.ParseQuery(query)
	if err != nil {
		return cfgErr("url", "query is not valid: %v", err)
	}
	for k, vs := range values {
		if len(vs) != 1 {
			return cfgErr(k, "given %d times in the URL query", len(vs))
		}
		if k == "mode" || k == "addrs" {
			return cfgErr(k, "is set by the URL's scheme and hosts, not a query parameter")
		}
		if err := doc.SetKey(k, vs[0]); err != nil {
			return err
		}
	}
	return nil
}

// redactURL hides the password in a URL for error messages.
func redactURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	authority, tail, _ := strings.Cut(rest, "/")
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		user, _, hasPass := strings.Cut(authority[:at], ":")
		if hasPass {
			authority = user + ":xxxxx" + authority[at:]
		}
	}
	if tail != "" || strings.Contains(rest, "/") {
		return scheme + "://" + authority + "/" + tail
	}
	return scheme + "://" + authority
}

// String describes the endpoint without secrets, e.g.
// "sentinel kvmaster via 10.0.0.1:26379,10.0.0.2:26379 db=0 tls=on user=app".
func (c Config) String() string {
	mode := c.Mode
	if mode == "" {
		mode = ModeStandalone
	}
	addrs := strings.Join(c.Addrs, ",")
	if addrs == "" && mode == ModeStandalone {
		addrs = DefaultAddr
	}
	var b strings.Builder
	if mode == ModeSentinel {
		fmt.Fprintf(&b, "sentinel %s via %s", c.Sentinel.Master, addrs)
	} else {
		fmt.Fprintf(&b, "%s %s", mode, addrs)
	}
	fmt.Fprintf(&b, " db=%d", c.DB)
	if c.TLS.Enabled {
		b.WriteString(" tls=on")
		if c.TLS.CertFile != "" {
			b.WriteString(" mtls=on")
		}
	} else {
		b.WriteString(" tls=off")
	}
	if c.Username != "" {
		fmt.Fprintf(&b, " user=%s", c.Username)
	}
	return b.String()
}

// parseUnixURL parses unix://[user:password@]/path/to.sock[?query]: the
// path is the socket; the database, like every other key, is a query
// parameter (db=2).
func parseUnixURL(raw, rest string, doc Document) error {
	cfg := doc.connection()
	cfg.Mode = ModeStandalone
	rest, query, _ := strings.Cut(rest, "?")
	if at := strings.LastIndexByte(rest, '@'); at >= 0 && !strings.Contains(rest[:at], "/") {
		if err := cfg.setUserinfo(rest[:at]); err != nil {
			return err
		}
		rest = rest[at+1:]
	}
	if !strings.HasPrefix(rest, "/") || len(rest) < 2 {
		return cfgErr("url", "%q names no socket: write unix:///path/to/valkey.sock", redactURL(raw))
	}
	cfg.Addrs = []string{rest}
	return setQuery(doc, query)
}
