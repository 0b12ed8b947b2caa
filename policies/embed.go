// Package policies holds the shipped policy files. default.yaml is what
// `execgate serve` without arguments (development mode) serves;
// code-runner.yaml is the code playground example. Both are embedded.
package policies

import _ "embed"

// Default is policies/default.yaml.
//
//go:embed default.yaml
var Default []byte

// CodeRunner is policies/code-runner.yaml.
//
//go:embed code-runner.yaml
var CodeRunner []byte

// DefaultName is the name load errors and audit lines use for Default.
const DefaultName = "embedded:policies/default.yaml"

// CodeRunnerName is the name load errors and audit lines use for CodeRunner.
const CodeRunnerName = "embedded:policies/code-runner.yaml"
