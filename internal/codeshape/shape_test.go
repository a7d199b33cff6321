package codeshape

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const (
	maxFileLines = 600
	maxFuncLines = 80
)

// repoRoot is the module's directory: two levels up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod at %s: %v", root, err)
	}
	return root
}

// goFiles parses every Go file of the repository, by directory.
func goFiles(t *testing.T, root string) (*token.FileSet, map[string][]*ast.File, map[*ast.File]string) {
	t.Helper()
	fset := token.NewFileSet()
	byDir := map[string][]*ast.File{}
	names := map[*ast.File]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		byDir[filepath.Dir(rel)] = append(byDir[filepath.Dir(rel)], f)
		names[f] = rel
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return fset, byDir, names
}

// TestShape reports every file over maxFileLines lines, every non-test
// function (methods and function literals inside it included) over
// maxFuncLines, and every package without a package comment.
func TestShape(t *testing.T) {
	root := repoRoot(t)
	fset, byDir, names := goFiles(t, root)
	var problems []string
	files, funcs := 0, 0
	for dir, fs := range byDir {
		documented, hasCode := false, false
		for _, f := range fs {
			name := names[f]
			files++
			if n := fset.File(f.Pos()).LineCount(); n > maxFileLines {
				problems = append(problems, name+": "+strconv.Itoa(n)+" lines")
			}
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			hasCode = true
			if f.Doc != nil {
				documented = true
			}
			for _, d := range f.Decls {
				fd, ok := d.(*ast.FuncDecl)
				if !ok || fd.Body == nil {
					continue
				}
				funcs++
				if n := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1; n > maxFuncLines {
					problems = append(problems, name+": func "+fd.Name.Name+": "+strconv.Itoa(n)+" lines")
				}
			}
		}
		if hasCode && !documented {
			problems = append(problems, dir+": no package comment")
		}
	}
	sort.Strings(problems)
	for _, p := range problems {
		t.Error(p)
	}
	t.Logf("%d Go files, %d functions outside tests checked", files, funcs)
}
