package pyro

import (
	"encoding/base64"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// literalWriter writes Python literal syntax (serpent) or JSON.
type literalWriter struct {
	b    []byte
	json bool
}

// serpentHeader starts every serpent payload.
const serpentHeader = "# serpent utf-8 python3.2\n"

func (w *literalWriter) value(v any, depth int) error {
	if depth > MaxDepth {
		return fmt.Errorf("nesting deeper than %d", MaxDepth)
	}
	switch v := v.(type) {
	case nil:
		w.word("None", "null")
	case bool:
		if v {
			w.word("True", "true")
		} else {
			w.word("False", "false")
		}
	case int64:
		w.b = strconv.AppendInt(w.b, v, 10)
	case int:
		w.b = strconv.AppendInt(w.b, int64(v), 10)
	case uint64:
		w.b = strconv.AppendUint(w.b, v, 10)
	case *big.Int:
		w.b = v.Append(w.b, 10)
	case float64:
		w.float(v)
	case string:
		if w.json {
			w.jsonString(v)
		} else {
			w.pyString(v)
		}
	case []byte:
		if w.json {
			return fmt.Errorf("json cannot carry bytes (use the serpent, marshal or msgpack serializer)")
		}
		w.b = append(w.b, "{'data':'"...)
		w.b = base64.StdEncoding.AppendEncode(w.b, v)
		w.b = append(w.b, "','encoding':'base64'}"...)
	case []any:
		return w.seq('[', ']', v, false, depth)
	case Tuple:
		if w.json {
			return w.seq('[', ']', v, false, depth)
		}
		return w.seq('(', ')', v, len(v) == 1, depth)
	case Set:
		switch {
		case w.json:
			return w.seq('[', ']', v, false, depth)
		case len(v) == 0:
			w.b = append(w.b, "()"...) // serpent's empty set
			return nil
		}
		return w.seq('{', '}', v, false, depth)
	case Dict:
		w.b = append(w.b, '{')
		for i, it := range v {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			k := it.Key
			if w.json {
				s, err := jsonKey(k)
				if err != nil {
					return err
				}
				k = s
			}
			if err := w.value(k, depth+1); err != nil {
				return err
			}
			w.b = append(w.b, ':')
			if err := w.value(it.Value, depth+1); err != nil {
				return err
			}
		}
		w.b = append(w.b, '}')
	default:
		return fmt.Errorf("cannot serialize %T", v)
	}
	return nil
}

// jsonKey converts a dict key as Python's json module does.
func jsonKey(k any) (string, error) {
	switch k := k.(type) {
	case string:
		return k, nil
	case int64:
		return strconv.FormatInt(k, 10), nil
	case *big.Int:
		return k.String(), nil
	case float64:
		return strconv.FormatFloat(k, 'g', -1, 64), nil
	case bool:
		if k {
			return "true", nil
		}
		return "false", nil
	case nil:
		return "null", nil
	}
	return "", fmt.Errorf("json cannot carry a dict key of type %s", TypeName(k))
}

func (w *literalWriter) word(py, js string) {
	if w.json {
		w.b = append(w.b, js...)
	} else {
		w.b = append(w.b, py...)
	}
}

func (w *literalWriter) seq(open, close byte, items []any, trailingComma bool, depth int) error {
	w.b = append(w.b, open)
	for i, it := range items {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		if err := w.value(it, depth+1); err != nil {
			return err
		}
	}
	if trailingComma {
		w.b = append(w.b, ',')
	}
	w.b = append(w.b, close)
	return nil
}

func (w *literalWriter) float(f float64) {
	switch {
	case math.IsNaN(f):
		w.word("{'__class__':'float','value':'nan'}", "NaN")
	case math.IsInf(f, 1):
		w.word("1e30000", "Infinity")
	case math.IsInf(f, -1):
		w.word("-1e30000", "-Infinity")
	default:
		start := len(w.b)
		w.b = strconv.AppendFloat(w.b, f, 'g', -1, 64)
		for _, c := range w.b[start:] {
			if c == '.' || c == 'e' {
				return
			}
		}
		w.b = append(w.b, ".0"...)
	}
}

// pyString writes s as Python's repr does (always single-quoted).
func (w *literalWriter) pyString(s string) {
	w.b = append(w.b, '\'')
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case r == '\\' || r == '\'':
			w.b = append(w.b, '\\', byte(r))
		case r == '\n':
			w.b = append(w.b, `\n`...)
		case r == '\r':
			w.b = append(w.b, `\r`...)
		case r == '\t':
			w.b = append(w.b, `\t`...)
		case r < 0x20 || r == 0x7f:
			w.b = append(w.b, fmt.Sprintf(`\x%02x`, r)...)
		case r >= 0x80 && !unicode.IsPrint(r):
			if r <= 0xffff {
				w.b = append(w.b, fmt.Sprintf(`\u%04x`, r)...)
			} else {
				w.b = append(w.b, fmt.Sprintf(`\U%08x`, r)...)
			}
		default:
			w.b = utf8.AppendRune(w.b, r)
		}
	}
	w.b = append(w.b, '\'')
}

func (w *literalWriter) jsonString(s string) {
	w.b = append(w.b, '"')
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case r == '"' || r == '\\':
			w.b = append(w.b, '\\', byte(r))
		case r == '\n':
			w.b = append(w.b, `\n`...)
		case r == '\r':
			w.b = append(w.b, `\r`...)
		case r == '\t':
			w.b = append(w.b, `\t`...)
		case r < 0x20 || r == 0x2028 || r == 0x2029:
			w.b = append(w.b, fmt.Sprintf(`\u%04x`, r)...)
		default:
			w.b = utf8.AppendRune(w.b, r)
		}
	}
	w.b = append(w.b, '"')
}
