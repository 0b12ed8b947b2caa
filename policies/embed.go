// Package policies holds the shipped policy files; default.yaml is embedded
// in the binary for `execgate serve` without arguments (development mode).
package policies

import _ "embed"

// Default is policies/default.yaml.
//
//go:embed default.yaml
var Default []byte

// DefaultName is the name load errors and audit lines use for Default.
const DefaultName = "embedded:policies/default.yaml"
