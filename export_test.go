package keyvalue

// RequireServerVersions makes c refuse servers older than Redis redis or
// Valkey valkey (major.minor), to test the refusal on the servers a
// machine has. Call it before the first command.
func RequireServerVersions(c *Client, redis, valkey string) { c.s.min = minimums{redis, valkey} }
