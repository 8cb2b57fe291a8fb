package gpu

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/scanner"
	"go/token"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Op is the operation of an expression node.
type Op uint8

// The operations of expressions.
const (
	OpConst Op = iota // a literal number: Node.Value (float) or Node.Int
	OpVar             // a named array or scalar: Node.Var indexes Expr.Vars
	OpNeg             // -a
	OpAdd             // a + b
	OpSub             // a - b
	OpMul             // a * b
	OpDiv             // a / b (integers: truncated; by zero: an error)
	OpRem             // a % b (floats: math.Mod)
	OpEq              // a == b, 1 or 0
	OpNe              // a != b
	OpLt              // a < b
	OpLe              // a <= b
	OpGt              // a > b
	OpGe              // a >= b
	OpSqrt            // the functions, float types only but abs, min, max
	OpExp
	OpLog
	OpSin
	OpCos
	OpTan
	OpFloor
	OpCeil
	OpPow
	OpAbs
	OpMin
	OpMax
	OpSelect // select(cond, a, b): a where cond is not 0, else b
)

var funcs = map[string]struct {
	op    Op
	arity int
	float bool // float types only
}{
	"sqrt": {OpSqrt, 1, true}, "exp": {OpExp, 1, true}, "log": {OpLog, 1, true},
	"sin": {OpSin, 1, true}, "cos": {OpCos, 1, true}, "tan": {OpTan, 1, true},
	"floor": {OpFloor, 1, true}, "ceil": {OpCeil, 1, true}, "pow": {OpPow, 2, true},
	"abs": {OpAbs, 1, false}, "min": {OpMin, 2, false}, "max": {OpMax, 2, false},
	"select": {OpSelect, 3, false}, "where": {OpSelect, 3, false},
}

// selectName stands for the keyword select in the source given to
// go/parser: the same length, so columns stay true.
const selectName = "__sel_"

var binops = map[token.Token]Op{
	token.ADD: OpAdd, token.SUB: OpSub, token.MUL: OpMul, token.QUO: OpDiv, token.REM: OpRem,
	token.EQL: OpEq, token.NEQ: OpNe, token.LSS: OpLt, token.LEQ: OpLe, token.GTR: OpGt, token.GEQ: OpGe,
}

// FloatOnly reports whether op needs a float type.
func (op Op) FloatOnly() bool { return op >= OpSqrt && op <= OpPow }

// Node is a node of an expression tree: the one form every backend
// compiles.
type Node struct {
	Op    Op
	Args  []*Node
	Var   int     // OpVar: the index into Expr.Vars
	Value float64 // OpConst: the value
	IsInt bool    // OpConst: written as an integer literal
	Pos   int     // 1-based column in the source
}

// Expr is a parsed element-wise expression.
type Expr struct {
	Src  string
	Root *Node
	// Vars are the names the expression uses, in order of first use.
	Vars []string
}

// MaxExprLen bounds the source of an expression, and MaxExprNodes its
// size once parsed.
const (
	MaxExprLen   = 4096
	MaxExprNodes = 512
)

// ParseExpr parses an element-wise expression in Go syntax: numbers,
// names of arrays and scalars, + - * / %, comparisons, unary minus,
// parentheses and the functions sqrt exp log sin cos tan floor ceil pow
// (float types), abs min max, and select(cond, a, b).
func ParseExpr(src string) (*Expr, error) {
	if strings.TrimSpace(src) == "" {
		return nil, newErr(ErrExpr, "empty expression")
	}
	if len(src) > MaxExprLen {
		return nil, newErr(ErrExpr, "expression of %d bytes; the limit is %d", len(src), MaxExprLen)
	}
	fset := token.NewFileSet()
	x, err := parser.ParseExprFrom(fset, "", hideSelect(src), parser.SkipObjectResolution)
	if err != nil {
		if el, ok := err.(scanner.ErrorList); ok && len(el) > 0 {
			return nil, newErr(ErrExpr, "%q does not parse: column %d: %s", src, el[0].Pos.Column, el[0].Msg)
		}
		return nil, newErr(ErrExpr, "%q does not parse: %v", src, err)
	}
	p := &exprParser{src: src, fset: fset}
	root, err := p.node(x)
	if err != nil {
		return nil, err
	}
	return &Expr{Src: src, Root: root, Vars: p.vars}, nil
}

type exprParser struct {
	src   string
	fset  *token.FileSet
	vars  []string
	nodes int
}

func (p *exprParser) fail(at token.Pos, format string, args ...any) error {
	col := p.fset.Position(at).Column
	return newErr(ErrExpr, "%q, column %d: %s", p.src, col, fmt.Sprintf(format, args...))
}

func (p *exprParser) node(x ast.Expr) (*Node, error) {
	p.nodes++
	if p.nodes > MaxExprNodes {
		return nil, p.fail(x.Pos(), "the expression has more than %d terms", MaxExprNodes)
	}
	pos := p.fset.Position(x.Pos()).Column
	switch x := x.(type) {
	case *ast.ParenExpr:
		return p.node(x.X)
	case *ast.BasicLit:
		switch x.Kind {
		case token.INT:
			i, err := strconv.ParseInt(x.Value, 0, 64)
			if err != nil {
				return nil, p.fail(x.Pos(), "integer %s out of range", x.Value)
			}
			return &Node{Op: OpConst, Value: float64(i), IsInt: true, Pos: pos}, nil
		case token.FLOAT:
			f, err := strconv.ParseFloat(x.Value, 64)
			if err != nil || math.IsInf(f, 0) {
				return nil, p.fail(x.Pos(), "number %s out of range", x.Value)
			}
			return &Node{Op: OpConst, Value: f, Pos: pos}, nil
		}
		return nil, p.fail(x.Pos(), "%s is not a number", x.Value)
	case *ast.Ident:
		if strings.HasPrefix(x.Name, "__") {
			return nil, p.fail(x.Pos(), "names starting with __ are reserved")
		}
		if _, ok := funcs[x.Name]; ok {
			return nil, p.fail(x.Pos(), "%s is a function: call it, as in %s(x)", x.Name, x.Name)
		}
		i := slices.Index(p.vars, x.Name)
		if i < 0 {
			i = len(p.vars)
			p.vars = append(p.vars, x.Name)
		}
		return &Node{Op: OpVar, Var: i, Pos: pos}, nil
	case *ast.UnaryExpr:
		a, err := p.node(x.X)
		if err != nil {
			return nil, err
		}
		switch x.Op {
		case token.ADD:
			return a, nil
		case token.SUB:
			if a.Op == OpConst {
				a.Value = -a.Value
				a.Pos = pos
				return a, nil
			}
			return &Node{Op: OpNeg, Args: []*Node{a}, Pos: pos}, nil
		}
		return nil, p.fail(x.Pos(), "operator %s is not supported (use + - * / %% and comparisons)", x.Op)
	case *ast.BinaryExpr:
		op, ok := binops[x.Op]
		if !ok {
			return nil, p.fail(x.OpPos, "operator %s is not supported (use + - * / %% and comparisons; select(cond, a, b) for conditions)", x.Op)
		}
		a, err := p.node(x.X)
		if err != nil {
			return nil, err
		}
		b, err := p.node(x.Y)
		if err != nil {
			return nil, err
		}
		return &Node{Op: op, Args: []*Node{a, b}, Pos: p.fset.Position(x.OpPos).Column}, nil
	case *ast.CallExpr:
		id, ok := x.Fun.(*ast.Ident)
		if ok && id.Name == selectName {
			id = &ast.Ident{NamePos: id.NamePos, Name: "select"}
		}
		if !ok {
			return nil, p.fail(x.Pos(), "only the functions sqrt exp log sin cos tan floor ceil pow abs min max select can be called")
		}
		f, ok := funcs[id.Name]
		if !ok {
			return nil, p.fail(x.Pos(), "unknown function %s (the functions are sqrt exp log sin cos tan floor ceil pow abs min max select)", id.Name)
		}
		if len(x.Args) != f.arity || x.Ellipsis.IsValid() {
			return nil, p.fail(x.Pos(), "%s takes %d argument(s), not %d", id.Name, f.arity, len(x.Args))
		}
		n := &Node{Op: f.op, Pos: pos}
		for _, a := range x.Args {
			c, err := p.node(a)
			if err != nil {
				return nil, err
			}
			n.Args = append(n.Args, c)
		}
		return n, nil
	}
	return nil, p.fail(x.Pos(), "%s is not allowed in an element-wise expression", exprKind(x))
}

// hideSelect replaces each keyword select in src by selectName, which
// go/parser takes for a function name.
func hideSelect(src string) string {
	if !strings.Contains(src, "select") {
		return src
	}
	var sc scanner.Scanner
	fset := token.NewFileSet()
	b := []byte(src)
	sc.Init(fset.AddFile("", -1, len(b)), b, nil, 0)
	for {
		pos, tok, _ := sc.Scan()
		if tok == token.EOF {
			return string(b)
		}
		if tok == token.SELECT {
			copy(b[fset.Position(pos).Offset:], selectName)
		}
	}
}

func exprKind(x ast.Expr) string {
	switch x.(type) {
	case *ast.IndexExpr, *ast.IndexListExpr:
		return "indexing"
	case *ast.SelectorExpr:
		return "a selector (a.b)"
	case *ast.StarExpr:
		return "a pointer"
	case *ast.CompositeLit:
		return "a composite literal"
	case *ast.FuncLit:
		return "a function literal"
	case *ast.SliceExpr:
		return "slicing"
	case *ast.TypeAssertExpr:
		return "a type assertion"
	}
	return "this"
}

// CheckFor checks e against element type t: float-only functions on an
// integer type and fractional literals in an integer expression are
// errors.
func (e *Expr) CheckFor(t DType) error {
	var walk func(n *Node) error
	walk = func(n *Node) error {
		switch {
		case n.Op == OpConst && !t.IsFloat() && !n.IsInt && n.Value != math.Trunc(n.Value):
			return newErr(ErrDType, "%q, column %d: the constant %v is not an integer, and the arrays are %s", e.Src, n.Pos, n.Value, t)
		case n.Op == OpConst && t == Int32 && (n.Value < math.MinInt32 || n.Value > math.MaxInt32):
			return newErr(ErrDType, "%q, column %d: the constant %v is out of range of int32", e.Src, n.Pos, n.Value)
		case n.Op.FloatOnly() && !t.IsFloat():
			return newErr(ErrDType, "%q, column %d: %s needs a float type, and the arrays are %s", e.Src, n.Pos, funcName(n.Op), t)
		}
		for _, a := range n.Args {
			if err := walk(a); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(e.Root)
}

func funcName(op Op) string {
	for name, f := range funcs {
		if f.op == op {
			return name
		}
	}
	return "?"
}
