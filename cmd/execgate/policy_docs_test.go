package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/execgate/execgate/policy"
)

// These tests keep docs/policy.md in step with the code: every reason
// code, load error code, lint code, threshold and file key is documented,
// and the documented tables list nothing that no longer exists.

func readPolicyDoc(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../../docs/policy.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// docSection returns the text from a "## title" heading to the next "## ".
func docSection(t *testing.T, doc, title string) string {
	t.Helper()
	i := strings.Index(doc, "\n## "+title+"\n")
	if i < 0 {
		t.Fatalf("docs/policy.md has no section %q", title)
	}
	rest := doc[i+len(title)+5:]
	if j := strings.Index(rest, "\n## "); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

var tableCodeRE = regexp.MustCompile("(?m)^\\| `([a-z0-9_]+)` \\|")

// tableCodes returns the first-column codes of a section's tables.
func tableCodes(section string) []string {
	var out []string
	for _, m := range tableCodeRE.FindAllStringSubmatch(section, -1) {
		out = append(out, m[1])
	}
	slices.Sort(out)
	return out
}

func sameSet(t *testing.T, what string, documented, code []string) {
	t.Helper()
	for _, c := range code {
		if !slices.Contains(documented, c) {
			t.Errorf("%s %q is not documented in docs/policy.md", what, c)
		}
	}
	for _, d := range documented {
		if !slices.Contains(code, d) {
			t.Errorf("docs/policy.md documents %s %q, which the code does not have", what, d)
		}
	}
}

func TestDocsReasonCodes(t *testing.T) {
	doc := readPolicyDoc(t)
	var codes []string
	for _, r := range policy.ReasonCodes() {
		codes = append(codes, string(r))
	}
	sameSet(t, "reason code", tableCodes(docSection(t, doc, "Decisions and reason codes")), codes)
}

func TestDocsLoadErrorCodes(t *testing.T) {
	doc := readPolicyDoc(t)
	sameSet(t, "load error code", tableCodes(docSection(t, doc, "Load errors")), loadErrorCodes(t))
}

// loadErrorCodes reads the Code* constants of policy/errors.go.
func loadErrorCodes(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "../../policy/errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range vs.Names {
			if !strings.HasPrefix(name.Name, "Code") || i >= len(vs.Values) {
				continue
			}
			if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil {
					out = append(out, s)
				}
			}
		}
		return true
	})
	if len(out) == 0 {
		t.Fatal("found no Code* constants in policy/errors.go")
	}
	slices.Sort(out)
	return out
}

func TestDocsLintCodesAndThresholds(t *testing.T) {
	doc := readPolicyDoc(t)
	section := docSection(t, doc, "Strict lints")
	var documented []string
	for _, c := range tableCodes(section) {
		if strings.Contains(c, "_") && !slices.Contains([]string{"kill_grace", "cpu_quota", "cpu_seconds", "open_files",
			"file_size", "max_output", "output_rate", "workspace_size", "max_arg_bytes", "max_args", "max_total_bytes"}, c) {
			documented = append(documented, c)
		}
	}
	sameSet(t, "lint code", documented, policy.LintCodes())
	for _, th := range policy.Thresholds() {
		row := "| `" + th.Key + "` | " + th.Limit
		if !strings.Contains(section, row) {
			t.Errorf("threshold row %q missing from the strict lints section", row)
		}
	}
	for _, row := range []string{
		"| `max_arg_bytes` | " + policy.Size(policy.LintMaxArgBytes).String(),
		"| `max_args` | " + strconv.Itoa(policy.LintMaxArgs),
		"| `max_total_bytes` | " + policy.Size(policy.LintMaxTotalBytes).String(),
	} {
		if !strings.Contains(section, row) {
			t.Errorf("threshold row %q missing from the strict lints section", row)
		}
	}
}

// TestDocsFileKeys: every key of the file model appears in the reference.
func TestDocsFileKeys(t *testing.T) {
	doc := readPolicyDoc(t)
	seen := map[reflect.Type]bool{}
	var keys []string
	var walk func(rt reflect.Type)
	walk = func(rt reflect.Type) {
		for rt.Kind() == reflect.Pointer || rt.Kind() == reflect.Slice || rt.Kind() == reflect.Map {
			rt = rt.Elem()
		}
		if rt.Kind() != reflect.Struct || seen[rt] {
			return
		}
		seen[rt] = true
		for i := 0; i < rt.NumField(); i++ {
			f := rt.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name != "" && name != "-" {
				keys = append(keys, name)
			}
			walk(f.Type)
		}
	}
	walk(reflect.TypeOf(policy.File{}))
	if len(keys) < 40 {
		t.Fatalf("found only %d keys in the file model", len(keys))
	}
	for _, k := range keys {
		if !strings.Contains(doc, "`"+k+"`") && !strings.Contains(doc, "`"+k+":") && !strings.Contains(doc, "`limits."+k+"`") {
			t.Errorf("file key %q is not documented in docs/policy.md", k)
		}
	}
}
