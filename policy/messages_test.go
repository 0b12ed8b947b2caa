package policy

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"testing"
)

// TestEveryReasonHasAMessage parses reason.go so that a new ReasonCode
// constant without a client message fails here.
func TestEveryReasonHasAMessage(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "reason.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	ast.Inspect(f, func(node ast.Node) bool {
		vs, ok := node.(*ast.ValueSpec)
		if !ok || vs.Type == nil || len(vs.Values) != 1 {
			return true
		}
		if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "ReasonCode" {
			return true
		}
		lit, ok := vs.Values[0].(*ast.BasicLit)
		if !ok {
			return true
		}
		code, _ := strconv.Unquote(lit.Value)
		n++
		if _, ok := reasonMessages[ReasonCode(code)]; !ok {
			t.Errorf("reason %s has no client message", code)
		}
		return true
	})
	if n != len(ReasonCodes()) {
		t.Errorf("got %d reason constants, %d messages", n, len(ReasonCodes()))
	}
}
