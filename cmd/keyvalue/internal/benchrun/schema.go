package benchrun

import _ "embed"

// SchemaJSON is the JSON Schema (draft 2020-12) of the --json report.
//
//go:embed bench.schema.json
var SchemaJSON []byte
