package policy

import (
	"encoding/json"
	"fmt"

	"github.com/invopop/jsonschema"
)

// SchemaID is the $id of the policy file JSON Schema.
const SchemaID = "https://github.com/execgate/execgate/policies/schema.json"

// Schema returns the JSON Schema of a policy file, generated from the file
// model (file.go): key names from the yaml tags, descriptions, enums and
// bounds from the jsonschema tags. The output is stable (indented, sorted
// definitions) so a committed copy can be compared byte for byte.
func Schema() ([]byte, error) {
	r := &jsonschema.Reflector{
		FieldNameTag:               "yaml",
		RequiredFromJSONSchemaTags: true,
		ExpandedStruct:             true,
	}
	s := r.Reflect(&File{})
	s.ID = SchemaID
	s.Title = "execgate policy file (version 1)"
	s.Description = "Roles, roots, sandbox profiles, environment and commands with their argument grammar. See docs/policy.md."
	out, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal policy schema: %w", err)
	}
	return append(out, '\n'), nil
}

// JSONSchema describes a Size: a byte count or a number with a unit.
func (Size) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{
		OneOf: []*jsonschema.Schema{
			{Type: "integer", Minimum: json.Number("0")},
			{Type: "string", Pattern: `^\s*[0-9]+(\.[0-9]+)?\s*(B|KiB|MiB|GiB|TiB|kB|KB|MB|GB|TB)?\s*$`},
		},
		Description: "A size: bytes, or a number with a unit (KiB, MiB, GiB, TiB; kB, MB, GB, TB), e.g. 256MiB.",
	}
}

// JSONSchema describes a Duration.
func (Duration) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{
		Type:        "string",
		Pattern:     `^\s*([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+\s*$`,
		Description: "A duration such as 500ms, 30s, 2m or 1h30m.",
	}
}

// JSONSchema describes a Umask.
func (Umask) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{
		Type:        "string",
		Pattern:     `^\s*(0o|0O)?[0-7]{1,4}\s*$`,
		Description: "An octal umask written as a string, e.g. \"0077\".",
	}
}
