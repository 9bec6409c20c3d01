package api

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// responseBuilders are the calls whose arguments reach a client: the
// HTTP reply builders and the dashboard socket's send.
var responseBuilders = map[string]bool{
	"Err": true, "JSON": true, "Internal": true, "InternalWith": true, "fieldErr": true, "fieldErrors": true,
	"fieldResponse": true, "send": true, "errorFrame": true,
}

// TestNoErrorTextInReplies fails on err.Error() (or fmt of an error)
// written into an argument of a response builder in internal/api and the
// dashboard's action, frame and route files: an error's text reaches a
// client only through a PublicError (errors.go).
func TestNoErrorTextInReplies(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	for _, f := range []string{"actions.go", "frames.go", "dashboard.go", "socket.go"} {
		files = append(files, filepath.Join("..", "dashboard", f))
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || !responseBuilders[calleeName(call)] {
				return true
			}
			for _, arg := range call.Args {
				ast.Inspect(arg, func(m ast.Node) bool {
					if leaksError(m) {
						t.Errorf("%s: error text passed to %s", fset.Position(m.Pos()), calleeName(call))
					}
					return true
				})
			}
			return true
		})
	}
	if checked < 10 {
		t.Fatalf("checked %d files", checked)
	}
}

func calleeName(call *ast.CallExpr) string {
	switch f := call.Fun.(type) {
	case *ast.Ident:
		return f.Name
	case *ast.SelectorExpr:
		return f.Sel.Name
	case *ast.IndexExpr: // a generic call
		if id, ok := f.X.(*ast.Ident); ok {
			return id.Name
		}
	}
	return ""
}

// leaksError matches x.Error() with no arguments.
func leaksError(n ast.Node) bool {
	call, ok := n.(*ast.CallExpr)
	if !ok || len(call.Args) != 0 {
		return false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == "Error"
}
