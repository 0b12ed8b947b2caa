package policy

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestSchema(t *testing.T) {
	a, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	b, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("schema output is not stable")
	}
	var doc struct {
		ID         string                     `json:"$id"`
		Required   []string                   `json:"required"`
		Properties map[string]json.RawMessage `json:"properties"`
		Defs       map[string]struct {
			Properties           map[string]json.RawMessage `json:"properties"`
			Required             []string                   `json:"required"`
			AdditionalProperties *bool                      `json:"additionalProperties"`
		} `json:"$defs"`
		AdditionalProperties *bool `json:"additionalProperties"`
	}
	if err := json.Unmarshal(a, &doc); err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	if doc.ID != SchemaID || len(doc.Required) != 1 || doc.Required[0] != "version" {
		t.Errorf("got $id %q required %v, want %q and [version]", doc.ID, doc.Required, SchemaID)
	}
	if doc.AdditionalProperties == nil || *doc.AdditionalProperties {
		t.Errorf("top level allows unknown keys")
	}
	for _, k := range []string{"version", "secrets_file", "defaults", "roles", "roots", "profiles", "env", "commands"} {
		if _, ok := doc.Properties[k]; !ok {
			t.Errorf("top-level key %q missing from the schema", k)
		}
	}
	cmd, ok := doc.Defs["FileCommand"]
	if !ok {
		t.Fatalf("no FileCommand definition")
	}
	for _, k := range []string{"path", "sha256", "roles", "flags", "deny", "subcommands", "end_of_options", "bundle", "prefix_match"} {
		if _, ok := cmd.Properties[k]; !ok {
			t.Errorf("command key %q missing (inline grammar not flattened?)", k)
		}
	}
	flag := doc.Defs["FileFlag"]
	for _, k := range []string{"names", "type", "min", "max", "values", "pattern", "roots", "max_len", "multiline", "forms"} {
		if _, ok := flag.Properties[k]; !ok {
			t.Errorf("flag key %q missing", k)
		}
	}
	if !bytes.Contains(a, []byte(`"Spellings, e.g. [-n, --max-count]."`)) {
		t.Errorf("descriptions with commas are cut")
	}
	if !bytes.Contains(a, []byte(`"KiB`)) && !bytes.Contains(a, []byte(`KiB|MiB`)) {
		t.Errorf("Size has no custom schema")
	}
}
