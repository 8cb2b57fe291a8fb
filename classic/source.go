package classic

import (
	"go/scanner"
	"go/token"
	"strconv"
	"strings"
)

// unitKind says how a piece of source is evaluated.
type unitKind uint8

const (
	stmtUnit   unitKind = iota // statements: run in a function body
	declUnit                   // top-level declarations (func, type, var, const)
	importUnit                 // import declarations
)

// A unit is a run of source lines evaluated in one interpreter call. The
// interpreter cannot mix imports, declarations and statements in one call,
// so Execute splits code into units at top-level line starts.
type unit struct {
	kind unitKind
	src  string
	line int // 1-based line of src's first line in the original code
}

// tok is a scanned token.
type tok struct {
	pos  token.Pos
	t    token.Token
	lit  string
	line int
}

// scan returns the tokens of src (comments and the automatic semicolons
// left out). Scan errors are ignored: the interpreter reports them with
// their positions.
func scan(src string) []tok {
	fset := token.NewFileSet()
	f := fset.AddFile("", fset.Base(), len(src))
	var s scanner.Scanner
	s.Init(f, []byte(src), func(token.Position, string) {}, 0)
	var out []tok
	for {
		pos, t, lit := s.Scan()
		if t == token.EOF {
			return out
		}
		if t == token.SEMICOLON && lit == "\n" {
			continue
		}
		out = append(out, tok{pos: pos, t: t, lit: lit, line: fset.Position(pos).Line})
	}
}

// split cuts code into units. A declaration (func with a name or
// receiver, type, const, var) or an import starts a unit when it is the
// first token of a line outside any brackets; consecutive declarations
// share a unit, and so do consecutive statements.
func split(code string) []unit {
	toks := scan(code)
	lines := strings.SplitAfter(code, "\n")
	kindAt := map[int]unitKind{} // line -> kind of the unit starting there
	depth, lastLine := 0, 0
	for i, t := range toks {
		first := t.line != lastLine
		lastLine = t.line
		if depth == 0 && first {
			switch t.t {
			case token.IMPORT:
				kindAt[t.line] = importUnit
			case token.TYPE, token.CONST, token.VAR:
				kindAt[t.line] = declUnit
			case token.FUNC:
				if isFuncDecl(toks[i+1:]) {
					kindAt[t.line] = declUnit
				} else {
					kindAt[t.line] = stmtUnit
				}
			default:
				kindAt[t.line] = stmtUnit
			}
		}
		switch t.t {
		case token.LPAREN, token.LBRACK, token.LBRACE:
			depth++
		case token.RPAREN, token.RBRACK, token.RBRACE:
			if depth > 0 {
				depth--
			}
		}
	}
	var units []unit
	cur := unit{kind: stmtUnit, line: 1}
	var b strings.Builder
	flush := func() {
		if strings.TrimSpace(b.String()) != "" {
			cur.src = b.String()
			units = append(units, cur)
		}
		b.Reset()
	}
	for n, l := range lines {
		line := n + 1
		if k, ok := kindAt[line]; ok && (k != cur.kind || k == importUnit) {
			flush()
			cur = unit{kind: k, line: line}
		}
		if b.Len() == 0 {
			cur.line = line
		}
		b.WriteString(l)
	}
	flush()
	return units
}

// isFuncDecl reports whether the tokens after "func" make a declaration:
// a name, or a receiver in parentheses followed by a name.
func isFuncDecl(rest []tok) bool {
	if len(rest) == 0 {
		return false
	}
	if rest[0].t == token.IDENT {
		return true
	}
	if rest[0].t != token.LPAREN {
		return false
	}
	depth := 0
	for i, t := range rest {
		switch t.t {
		case token.LPAREN:
			depth++
		case token.RPAREN:
			depth--
			if depth == 0 {
				return i+1 < len(rest) && rest[i+1].t == token.IDENT
			}
		}
	}
	return false
}

// usedPackages returns the identifiers of src used as "name." that are
// not themselves selected (x.name.y), in order of first use: the
// candidates for automatic imports.
func usedPackages(src string) []string {
	toks := scan(src)
	seen := map[string]bool{}
	var out []string
	for i := 0; i+1 < len(toks); i++ {
		t := toks[i]
		if t.t != token.IDENT || toks[i+1].t != token.PERIOD {
			continue
		}
		if i > 0 && toks[i-1].t == token.PERIOD {
			continue
		}
		if !seen[t.lit] {
			seen[t.lit] = true
			out = append(out, t.lit)
		}
	}
	return out
}

// declaredNames returns the names a declaration or statement unit binds
// at the top level (func, type, var and const names; x := in statements),
// so automatic imports never shadow a session's own names.
func declaredNames(src string) []string {
	toks := scan(src)
	var out []string
	depth := 0
	for i, t := range toks {
		switch t.t {
		case token.LPAREN, token.LBRACK, token.LBRACE:
			depth++
			continue
		case token.RPAREN, token.RBRACK, token.RBRACE:
			depth--
			continue
		}
		if depth != 0 || i+1 >= len(toks) {
			continue
		}
		switch t.t {
		case token.FUNC, token.TYPE, token.VAR, token.CONST:
			if toks[i+1].t == token.IDENT {
				out = append(out, toks[i+1].lit)
			}
		case token.IDENT:
			if toks[i+1].t == token.DEFINE || toks[i+1].t == token.COMMA {
				out = append(out, t.lit)
			}
		}
	}
	return out
}

// unsupported returns a description of a construct of src that the
// interpreter cannot run (and would crash on), or "".
func unsupported(src string) string {
	toks := scan(src)
	for i := 0; i+1 < len(toks); i++ {
		if toks[i].t != token.RANGE {
			continue
		}
		switch n := toks[i+1]; n.t {
		case token.INT:
			return "range over an int (Go 1.22) at line " + strconv.Itoa(n.line)
		case token.FUNC:
			return "range over a func (Go 1.23) at line " + strconv.Itoa(n.line)
		}
	}
	return ""
}
