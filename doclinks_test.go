package gopyro_test

import (
	"go/ast"
	"go/doc"
	"go/doc/comment"
	"go/parser"
	"go/token"
	"io/fs"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const modulePath = "github.com/gopyro/gopyro"

// TestDocLinks checks every doc link ([Name], [pkg.Name], [Type.Method])
// in the module's comments that points into the module: the symbol must
// exist, so that a renamed or removed name cannot linger in the docs.
func TestDocLinks(t *testing.T) {
	fset := token.NewFileSet()
	type pkgInfo struct {
		syms  map[string]bool // "Name" and "Type.Method"
		files []*ast.File
	}
	pkgs := map[string]*pkgInfo{} // by import path
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); p != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		ip := path.Join(modulePath, filepath.ToSlash(filepath.Dir(p)))
		if filepath.Dir(p) == "." {
			ip = modulePath
		}
		if pkgs[ip] == nil {
			pkgs[ip] = &pkgInfo{syms: map[string]bool{}}
		}
		pkgs[ip].files = append(pkgs[ip].files, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for ip, pi := range pkgs {
		dp, err := doc.NewFromFiles(fset, pi.files, ip, doc.PreserveAST|doc.AllDecls)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range append(dp.Consts, dp.Vars...) {
			for _, n := range v.Names {
				pi.syms[n] = true
			}
		}
		for _, f := range dp.Funcs {
			pi.syms[f.Name] = true
		}
		for _, ty := range dp.Types {
			pi.syms[ty.Name] = true
			for _, v := range append(ty.Consts, ty.Vars...) {
				for _, n := range v.Names {
					pi.syms[n] = true
				}
			}
			for _, f := range append(ty.Funcs, ty.Methods...) {
				if f.Recv != "" {
					pi.syms[ty.Name+"."+f.Name] = true
				} else {
					pi.syms[f.Name] = true
				}
			}
			// Fields and interface methods are linkable as Type.Name too.
			if ts, ok := ty.Decl.Specs[0].(*ast.TypeSpec); ok {
				switch tt := ts.Type.(type) {
				case *ast.StructType:
					for _, fl := range tt.Fields.List {
						for _, n := range fl.Names {
							pi.syms[ty.Name+"."+n.Name] = true
						}
					}
				case *ast.InterfaceType:
					for _, m := range tt.Methods.List {
						for _, n := range m.Names {
							pi.syms[ty.Name+"."+n.Name] = true
						}
					}
				}
			}
		}
	}
	checked := 0
	for ip, pi := range pkgs {
		for _, f := range pi.files {
			imports := map[string]string{}
			for _, is := range f.Imports {
				p, _ := strconv.Unquote(is.Path.Value)
				name := path.Base(p)
				if is.Name != nil {
					name = is.Name.Name
				}
				imports[name] = p
			}
			parser := &comment.Parser{
				LookupPackage: func(name string) (string, bool) {
					p, ok := imports[name]
					return p, ok
				},
				LookupSym: func(recv, name string) bool { return true }, // checked below
			}
			for _, cg := range f.Comments {
				var walk func(texts []comment.Text)
				walk = func(texts []comment.Text) {
					for _, tx := range texts {
						switch x := tx.(type) {
						case *comment.DocLink:
							target := x.ImportPath
							if target == "" {
								target = ip
							}
							tp, ours := pkgs[target]
							if !ours {
								continue // another module's package
							}
							sym := x.Name
							if x.Recv != "" {
								sym = x.Recv + "." + x.Name
							}
							checked++
							if sym != "" && !tp.syms[sym] {
								t.Errorf("%s: the doc link [%s] names nothing in %s", fset.Position(cg.Pos()), sym, target)
							}
						case *comment.Link:
							walk(x.Text)
						case *comment.Italic, *comment.Plain:
						}
					}
				}
				for _, b := range parser.Parse(cg.Text()).Content {
					switch x := b.(type) {
					case *comment.Paragraph:
						walk(x.Text)
					case *comment.List:
						for _, it := range x.Items {
							for _, ib := range it.Content {
								if para, ok := ib.(*comment.Paragraph); ok {
									walk(para.Text)
								}
							}
						}
					}
				}
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d doc links checked: the checker is not finding them", checked)
	}
}
