package pyro

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxIntDigits bounds the decimal digits of an integer literal, as
// CPython's own int-to-str limit does.
const MaxIntDigits = 4300

// literalParser parses Python literal syntax (serpent) or JSON (Python's
// json module: NaN and Infinity included). It never evaluates anything:
// it is a recursive-descent parser over constants and containers, with a
// depth bound.
type literalParser struct {
	s    string
	i    int
	json bool
}

// SyntaxError is a malformed serpent or JSON payload.
type SyntaxError struct {
	Format string // "serpent" or "json"
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("%s: %s at offset %d", e.Format, e.Msg, e.Offset)
}

func (p *literalParser) fail(format string, args ...any) error {
	name := "serpent"
	if p.json {
		name = "json"
	}
	return &SyntaxError{Format: name, Offset: p.i, Msg: fmt.Sprintf(format, args...)}
}

func (p *literalParser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *literalParser) parseDocument() (any, error) {
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.ws()
	if p.i != len(p.s) {
		return nil, p.fail("unexpected %q after the value", p.s[p.i])
	}
	return v, nil
}

func (p *literalParser) value(depth int) (any, error) {
	if depth > MaxDepth {
		return nil, p.fail("nesting deeper than %d", MaxDepth)
	}
	p.ws()
	if p.i >= len(p.s) {
		return nil, p.fail("unexpected end of input")
	}
	c := p.s[p.i]
	switch {
	case c == '[':
		p.i++
		items, err := p.items(']', depth)
		if err != nil {
			return nil, err
		}
		if items == nil {
			items = []any{}
		}
		return items, nil
	case c == '(' && !p.json:
		return p.paren(depth)
	case c == '{':
		return p.brace(depth)
	case c == '\'' && !p.json, c == '"':
		return p.str()
	case c == '-' || c == '+' || c == '.' || (c >= '0' && c <= '9'):
		return p.number()
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_':
		start := p.i
		for p.i < len(p.s) && (isIdent(p.s[p.i])) {
			p.i++
		}
		word := p.s[start:p.i]
		if p.json {
			switch word {
			case "true":
				return true, nil
			case "false":
				return false, nil
			case "null":
				return nil, nil
			case "NaN":
				return math.NaN(), nil
			case "Infinity":
				return math.Inf(1), nil
			}
		} else {
			switch word {
			case "True":
				return true, nil
			case "False":
				return false, nil
			case "None":
				return nil, nil
			}
		}
		p.i = start
		return nil, p.fail("unexpected name %q (only literals are accepted)", clip(word, 20))
	}
	return nil, p.fail("unexpected %q", c)
}

func isIdent(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// items parses comma-separated values up to end (already past the opener).
func (p *literalParser) items(end byte, depth int) ([]any, error) {
	var out []any
	for {
		p.ws()
		if p.i < len(p.s) && p.s[p.i] == end && (!p.json || len(out) == 0) {
			p.i++
			return out, nil
		}
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		p.ws()
		if p.i >= len(p.s) {
			return nil, p.fail("unexpected end of input; want ',' or %q", end)
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case end:
			p.i++
			return out, nil
		default:
			return nil, p.fail("unexpected %q; want ',' or %q", p.s[p.i], end)
		}
	}
}

// paren parses a tuple, or a parenthesized value.
func (p *literalParser) paren(depth int) (any, error) {
	p.i++ // (
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == ')' {
		p.i++
		return Tuple{}, nil
	}
	first, err := p.value(depth + 1)
	if err != nil {
		return nil, err
	}
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == ')' {
		p.i++
		return first, nil // (x) is x
	}
	if p.i >= len(p.s) || p.s[p.i] != ',' {
		if p.i < len(p.s) && (p.s[p.i] == '+' || p.s[p.i] == '-') {
			return nil, p.fail("complex numbers are not supported")
		}
		return nil, p.fail("want ',' or ')' in a tuple")
	}
	p.i++
	rest, err := p.items(')', depth)
	if err != nil {
		return nil, err
	}
	return append(Tuple{first}, rest...), nil
}

// brace parses a dict or a set (serpent) or an object (JSON).
func (p *literalParser) brace(depth int) (any, error) {
	p.i++ // {
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return Dict{}, nil
	}
	var d Dict
	var set Set
	for n := 0; ; n++ {
		k, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		if p.json {
			if _, ok := k.(string); !ok {
				return nil, p.fail("object keys must be strings")
			}
		}
		p.ws()
		isDict := p.i < len(p.s) && p.s[p.i] == ':'
		if n == 0 && !isDict {
			if p.json {
				return nil, p.fail("want ':' after an object key")
			}
			set = Set{}
		}
		if set != nil {
			if isDict {
				return nil, p.fail("':' in a set")
			}
			if !hashable(k) {
				return nil, p.fail("unhashable %s in a set", TypeName(k))
			}
			set = append(set, k)
		} else {
			if !isDict {
				return nil, p.fail("want ':' after a dict key")
			}
			if !hashable(k) {
				return nil, p.fail("unhashable %s as a dict key", TypeName(k))
			}
			p.i++
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			d = append(d, Item{k, v})
		}
		p.ws()
		if p.i >= len(p.s) {
			return nil, p.fail("unexpected end of input; want ',' or '}'")
		}
		switch p.s[p.i] {
		case ',':
			p.i++
			p.ws()
			if !p.json && p.i < len(p.s) && p.s[p.i] == '}' {
				p.i++
				return finish(d, set), nil
			}
		case '}':
			p.i++
			return finish(d, set), nil
		default:
			return nil, p.fail("unexpected %q; want ',' or '}'", p.s[p.i])
		}
	}
}

func finish(d Dict, set Set) any {
	if set != nil {
		return set
	}
	return d
}

// hashable reports whether Python could use v as a dict key.
func hashable(v any) bool {
	switch v := v.(type) {
	case []any, Set, Dict:
		return false
	case Tuple:
		for _, e := range v {
			if !hashable(e) {
				return false
			}
		}
	}
	return true
}

func (p *literalParser) number() (any, error) {
	start := p.i
	neg := false
	if c := p.s[p.i]; c == '-' || c == '+' {
		if p.json && c == '+' {
			return nil, p.fail("unexpected '+'")
		}
		neg = c == '-'
		p.i++
		p.ws()
		if p.json && p.i+8 <= len(p.s) && p.s[p.i:p.i+8] == "Infinity" {
			p.i += 8
			return math.Inf(-1), nil
		}
	}
	digits := p.i
	isFloat := false
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c >= '0' && c <= '9':
		case c == '.' || c == 'e' || c == 'E':
			isFloat = true
		case (c == '+' || c == '-') && (p.s[p.i-1] == 'e' || p.s[p.i-1] == 'E'):
		default:
			goto done
		}
		p.i++
	}
done:
	text := p.s[digits:p.i]
	if text == "" {
		return nil, p.fail("malformed number")
	}
	if p.i < len(p.s) && (p.s[p.i] == 'j' || p.s[p.i] == 'J') {
		return nil, p.fail("complex numbers are not supported")
	}
	if isFloat {
		f, err := strconv.ParseFloat(text, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			p.i = start
			return nil, p.fail("malformed number %q", clip(text, 40))
		}
		if neg {
			f = -f
		}
		return f, nil
	}
	if len(text) > MaxIntDigits {
		p.i = start
		return nil, p.fail("an integer of %d digits (the limit is %d)", len(text), MaxIntDigits)
	}
	if len(text) > 1 && text[0] == '0' && strings.Trim(text, "0") != "" {
		p.i = start
		return nil, p.fail("malformed number %q (leading zero)", clip(text, 40))
	}
	if n, err := strconv.ParseInt(text, 10, 64); err == nil {
		if neg {
			n = -n
		}
		return boxInt(n), nil
	}
	b, ok := new(big.Int).SetString(text, 10)
	if !ok {
		p.i = start
		return nil, p.fail("malformed number %q", clip(text, 40))
	}
	if neg {
		b.Neg(b)
	}
	return normInt(b), nil
}

// normInt returns b as an int64 when it fits.
func normInt(b *big.Int) any {
	if b.IsInt64() {
		return b.Int64()
	}
	return b
}

// str parses a quoted string with Python's (or JSON's) escapes.
func (p *literalParser) str() (any, error) {
	q := p.s[p.i]
	p.i++
	var b strings.Builder
	for {
		if p.i >= len(p.s) {
			return nil, p.fail("unterminated string")
		}
		c := p.s[p.i]
		switch {
		case c == q:
			p.i++
			return b.String(), nil
		case c == '\n' && !p.json:
			return nil, p.fail("newline in a string")
		case c < 0x20 && p.json:
			return nil, p.fail("control character in a string")
		case c == '\\':
			if err := p.escape(&b); err != nil {
				return nil, err
			}
		default:
			b.WriteByte(c)
			p.i++
		}
	}
}

func (p *literalParser) escape(b *strings.Builder) error {
	p.i++ // backslash
	if p.i >= len(p.s) {
		return p.fail("unterminated string")
	}
	c := p.s[p.i]
	p.i++
	switch c {
	case '\\', '"':
		b.WriteByte(c)
	case '\'':
		if p.json {
			return p.fail("invalid escape \\'")
		}
		b.WriteByte(c)
	case '/':
		if !p.json {
			b.WriteString("\\/") // Python keeps unknown escapes as they are
			return nil
		}
		b.WriteByte(c)
	case 'n':
		b.WriteByte('\n')
	case 'r':
		b.WriteByte('\r')
	case 't':
		b.WriteByte('\t')
	case 'b':
		b.WriteByte('\b')
	case 'f':
		b.WriteByte('\f')
	case 'a', 'v', '\n', 'x', 'U', '0', '1', '2', '3', '4', '5', '6', '7':
		if p.json {
			return p.fail("invalid escape \\%c", c)
		}
		switch c {
		case 'a':
			b.WriteByte('\a')
		case 'v':
			b.WriteByte('\v')
		case '\n': // line continuation
		case 'x':
			return p.hexRune(b, 2)
		case 'U':
			return p.hexRune(b, 8)
		default: // octal, up to three digits
			n := int(c - '0')
			for k := 0; k < 2 && p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '7'; k++ {
				n = n*8 + int(p.s[p.i]-'0')
				p.i++
			}
			b.WriteRune(rune(n))
		}
	case 'u':
		r, err := p.hex(4)
		if err != nil {
			return err
		}
		if p.json && r >= 0xd800 && r < 0xdc00 && p.i+6 <= len(p.s) && p.s[p.i] == '\\' && p.s[p.i+1] == 'u' {
			save := p.i
			p.i += 2
			lo, err := p.hex(4)
			if err == nil && lo >= 0xdc00 && lo < 0xe000 {
				r = 0x10000 + (r-0xd800)<<10 + (lo - 0xdc00)
			} else {
				p.i = save
			}
		}
		writeRune(b, r)
	default:
		if p.json {
			return p.fail("invalid escape \\%c", c)
		}
		b.WriteByte('\\') // Python keeps unknown escapes as they are
		b.WriteByte(c)
	}
	return nil
}

func (p *literalParser) hexRune(b *strings.Builder, n int) error {
	r, err := p.hex(n)
	if err != nil {
		return err
	}
	writeRune(b, r)
	return nil
}

func writeRune(b *strings.Builder, r rune) {
	if !utf8.ValidRune(r) { // a lone surrogate cannot be UTF-8
		r = utf8.RuneError
	}
	b.WriteRune(r)
}

func (p *literalParser) hex(n int) (rune, error) {
	if p.i+n > len(p.s) {
		return 0, p.fail("truncated escape")
	}
	v, err := strconv.ParseUint(p.s[p.i:p.i+n], 16, 32)
	if err != nil {
		return 0, p.fail("malformed escape")
	}
	p.i += n
	if v > maxRune {
		return 0, p.fail("escape beyond U+10FFFF")
	}
	return rune(v), nil
}

const maxRune = 0x10ffff
