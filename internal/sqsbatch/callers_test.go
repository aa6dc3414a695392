package sqsbatch_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// TestBatchCallsHaveOneCaller keeps this package the only place in the
// worker's non-test code that makes SQS batch calls: a second caller would
// be a second copy of the retry and outcome logic, which is what drifted
// into bugs before.
func TestBatchCallsHaveOneCaller(t *testing.T) {
	root := filepath.Join("..", "..")
	calls := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			rel, _ := filepath.Rel(root, path)
			switch filepath.ToSlash(rel) {
			case "bin", "bench", "chaos", "tools", ".git":
				return filepath.SkipDir // not the worker's code
			}
			if d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.Contains(path, "sqsbatchtest") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		// Direct calls only: without type information a method value
		// (x.SendMessageBatch passed on) cannot be told from the counters
		// of the same name in Calls structs; a review catches those.
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			if sel, ok := call.Fun.(*ast.SelectorExpr); ok {
				switch name := sel.Sel.Name; name {
				case "SendMessageBatch", "DeleteMessageBatch", "ChangeMessageVisibilityBatch":
					calls[name] = append(calls[name], fset.Position(call.Pos()).String())
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"SendMessageBatch", "DeleteMessageBatch", "ChangeMessageVisibilityBatch"} {
		sites := calls[name]
		if len(sites) != 1 || !strings.Contains(filepath.ToSlash(sites[0]), "internal/sqsbatch/") {
			t.Errorf("%s is called from %v; want exactly one place, in internal/sqsbatch", name, sites)
		}
	}
}
