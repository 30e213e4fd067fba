// Package glob escapes text for Redis/Valkey glob patterns (SCAN MATCH).
package glob

import "strings"

var escaper = strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`)

// Escape makes s match itself literally in a MATCH pattern.
func Escape(s string) string { return escaper.Replace(s) }
