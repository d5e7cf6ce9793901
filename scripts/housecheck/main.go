// Command housecheck checks the size limits of docs/architecture.md ("the
// house"): no package outside cmd/ holds more than -max-pkg lines of non-test
// Go, no type has more than -max-type lines of methods (doc comments
// included), and no package listed in -no-redis depends on go-redis.
//
// The limits are the house issue's "~3,000 lines" and "~250 lines of
// methods" with a little room (3,100 and 275), so that one more doc comment
// does not fail the build while a type that grew a second job does.
//
// It reports every breach and exits 1 if there is one; -v lists the largest
// packages and types as well. `make lint` runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	maxPkg := flag.Int("max-pkg", 3100, "most non-test lines of Go in one package outside cmd/")
	maxType := flag.Int("max-type", 275, "most lines of methods (doc comments included) on one type")
	noRedis := flag.String("no-redis", "./api", "comma-separated packages whose dependencies must not include go-redis")
	verbose := flag.Bool("v", false, "also list the ten largest packages and types")
	flag.Parse()

	pkgLines := map[string]int{}
	typeLines := map[string]int{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "node_modules", "testdata", ".git", "bin":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path) //nolint:gosec // G122: a developer tool reading the checkout it is run in
		if err != nil {
			return err
		}
		dir := filepath.Dir(path)
		pkgLines[dir] += strings.Count(string(src), "\n")
		f, err := parser.ParseFile(fset, path, src, parser.ParseComments)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Recv == nil || len(fn.Recv.List) == 0 {
				continue
			}
			start := fn.Pos()
			if fn.Doc != nil {
				start = fn.Doc.Pos()
			}
			n := fset.Position(fn.End()).Line - fset.Position(start).Line + 1
			typeLines[dir+"."+recvName(fn.Recv.List[0].Type)] += n
		}
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "housecheck:", err)
		os.Exit(2)
	}

	var breaches []string
	for dir, n := range pkgLines {
		if n > *maxPkg && dir != "cmd" && !strings.HasPrefix(dir, "cmd/") && !strings.Contains(dir, "/cmd/") {
			breaches = append(breaches, fmt.Sprintf("package %s: %d non-test lines (most %d)", dir, n, *maxPkg))
		}
	}
	for t, n := range typeLines {
		if n > *maxType {
			breaches = append(breaches, fmt.Sprintf("type %s: %d lines of methods (most %d)", t, n, *maxType))
		}
	}
	for _, p := range strings.Split(*noRedis, ",") {
		if p == "" {
			continue
		}
		out, err := exec.CommandContext(context.Background(), "go", "list", "-deps", p).Output() //nolint:gosec // G204: the go tool, on packages named by the caller
		if err != nil {
			fmt.Fprintln(os.Stderr, "housecheck: go list -deps", p, ":", err)
			os.Exit(2)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, "github.com/redis/go-redis") {
				breaches = append(breaches, fmt.Sprintf("package %s depends on %s (go list -deps %s)", p, dep, p))
				break
			}
		}
	}
	sort.Strings(breaches)
	if *verbose {
		printTop("packages (non-test lines)", pkgLines)
		printTop("types (lines of methods)", typeLines)
	}
	for _, b := range breaches {
		fmt.Println("housecheck:", b)
	}
	if len(breaches) > 0 {
		os.Exit(1)
	}
}

func recvName(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.StarExpr:
		return recvName(t.X)
	case *ast.IndexExpr:
		return recvName(t.X)
	case *ast.IndexListExpr:
		return recvName(t.X)
	case *ast.Ident:
		return t.Name
	}
	return "?"
}

func printTop(title string, m map[string]int) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] })
	fmt.Println(title + ":")
	for i, k := range keys {
		if i == 10 {
			break
		}
		fmt.Printf("  %5d  %s\n", m[k], k)
	}
}
