package pyro

import (
	"bytes"
	"errors"
	"math"
	"math/big"
	"reflect"
	"strings"
	"testing"
)

var samples = []any{
	nil, true, false, int64(0), int64(-1), int64(math.MaxInt64), int64(math.MinInt64),
	new(big.Int).Lsh(big.NewInt(1), 70), new(big.Int).Neg(new(big.Int).Lsh(big.NewInt(1), 100)),
	1.5, -0.25, math.Inf(1), math.Inf(-1), 1e300, "", "hello", "it's \"q\"\n\t\x00\u2028é😀", []byte{0, 1, 255},
	[]any{}, []any{int64(1), "a", []any{nil}}, Tuple{}, Tuple{int64(1)}, Tuple{"a", Tuple{int64(2), nil}},
	Set{int64(1), "b"}, Dict{}, Dict{{"k", int64(1)}, {"l", []any{1.5}}}, Dict{{int64(3), "int key"}, {Tuple{int64(1), "t"}, true}},
}

// normalise maps what a format cannot tell apart to one form.
func normalise(f Format, v any) any {
	switch x := v.(type) {
	case Tuple:
		if f == JSON || f == Msgpack {
			return normalise(f, []any(x))
		}
		out := make(Tuple, len(x))
		for i, e := range x {
			out[i] = normalise(f, e)
		}
		return out
	case Set:
		if f == JSON || f == Msgpack || (f == Serpent && len(x) == 0) {
			return normalise(f, []any(x))
		}
		out := make(Set, len(x))
		for i, e := range x {
			out[i] = normalise(f, e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalise(f, e)
		}
		return out
	case Dict:
		out := make(Dict, len(x))
		for i, it := range x {
			k := normalise(f, it.Key)
			if f == JSON {
				k, _ = jsonKey(it.Key)
			}
			if l, ok := k.([]any); ok {
				k = Tuple(l)
			}
			out[i] = Item{k, normalise(f, it.Value)}
		}
		return out
	case []byte:
		if f == Serpent {
			return Dict{{"data", "AAH/"}, {"encoding", "base64"}}
		}
	}
	return v
}

func TestRoundTrip(t *testing.T) {
	for _, f := range []Format{Serpent, JSON, Marshal, Msgpack} {
		for _, v := range samples {
			b, err := f.Marshal(v)
			if f == JSON && errors.Is(err, err) && err != nil {
				if _, isBytes := v.([]byte); isBytes && strings.Contains(err.Error(), "cannot carry bytes") {
					continue
				}
				if d, ok := v.(Dict); ok && len(d) > 0 {
					if _, ok := d[1].Key.(Tuple); ok {
						continue // json has no tuple keys
					}
				}
			}
			if err != nil {
				t.Errorf("%s: marshal %#v: %v", f, v, err)
				continue
			}
			got, err := f.Unmarshal(b)
			if err != nil {
				t.Errorf("%s: unmarshal %q: %v", f, b, err)
				continue
			}
			want := normalise(f, v)
			if !equal(got, want) {
				t.Errorf("%s: %#v came back as %#v (%q)", f, want, got, b)
			}
		}
	}
}

func equal(a, b any) bool {
	if x, ok := a.(*big.Int); ok {
		y, ok := b.(*big.Int)
		return ok && x.Cmp(y) == 0
	}
	if x, ok := a.(float64); ok && math.IsNaN(x) {
		y, ok := b.(float64)
		return ok && math.IsNaN(y)
	}
	switch x := a.(type) {
	case []any:
		y, ok := b.([]any)
		return ok && seqEqual(x, y)
	case Tuple:
		y, ok := b.(Tuple)
		return ok && seqEqual(x, y)
	case Set:
		y, ok := b.(Set)
		return ok && seqEqual(x, y)
	case Dict:
		y, ok := b.(Dict)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i].Key, y[i].Key) || !equal(x[i].Value, y[i].Value) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

func seqEqual(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// TestPythonBytes decodes payloads exactly as Python wrote them
// (../shared/reference/pyro4-captures, and Python 3.11's marshal with its
// back-references).
func TestPythonBytes(t *testing.T) {
	cases := []struct {
		f    Format
		in   string
		want any
	}{
		{Serpent, "# serpent utf-8 python3.2\n('test.echoserver','echo',([1180591620717411303424,-9223372036854775808,(1,2),{1,2,3},{'k':None},1e30000,1.5,{'data':'AAH/','encoding':'base64'}],),{})",
			Tuple{"test.echoserver", "echo", Tuple{[]any{new(big.Int).Lsh(big.NewInt(1), 70), int64(math.MinInt64), Tuple{int64(1), int64(2)}, Set{int64(1), int64(2), int64(3)}, Dict{{"k", nil}}, math.Inf(1), 1.5, Dict{{"data", "AAH/"}, {"encoding", "base64"}}}}, Dict{}}},
		{JSON, `{"object": "x", "method": "m", "params": [Infinity, -Infinity, "\ud83d\ude00", 1e400], "kwargs": {}}`,
			Dict{{"object", "x"}, {"method", "m"}, {"params", []any{math.Inf(1), math.Inf(-1), "😀", math.Inf(1)}}, {"kwargs", Dict{}}}},
		// marshal.dumps(("a", "a", [1, 2**40])) in Python 3.11: FLAG_REF on
		// the first "a" and a TYPE_REF for the second; 2**40 in 15-bit digits.
		{Marshal, ")\x03\xda\x01ar\x00\x00\x00\x00[\x02\x00\x00\x00\xe9\x01\x00\x00\x00\xec\x03\x00\x00\x00\x00\x00\x00\x00\x00\x04",
			Tuple{"a", "a", []any{int64(1), int64(1) << 40}}},
		// msgpack.packb(("o", "m", [2**70], {}), use_bin_type=True)
		{Msgpack, "\x94\xa1o\xa1m\x91\xc7\x16\x311180591620717411303424\x80",
			[]any{"o", "m", []any{new(big.Int).Lsh(big.NewInt(1), 70)}, Dict{}}},
	}
	for _, c := range cases {
		got, err := c.f.Unmarshal([]byte(c.in))
		if err != nil {
			t.Errorf("%s: %v", c.f, err)
			continue
		}
		if !equal(got, c.want) {
			t.Errorf("%s: got %#v, want %#v", c.f, got, c.want)
		}
	}
}

func TestMalformed(t *testing.T) {
	cases := []struct {
		f   Format
		in  string
		err string
	}{
		{Serpent, "__import__('os').system('x')", "only literals"},
		{Serpent, "(1+2j)", "complex"},
		{Serpent, strings.Repeat("[", 200) + strings.Repeat("]", 200), "nesting deeper"},
		{Serpent, "'abc", "unterminated"},
		{Serpent, "{[1]: 2}", "unhashable"},
		{Serpent, strings.Repeat("9", 5000), "digits"},
		{Serpent, "1 2", "after the value"},
		{JSON, "{'a': 1}", "unexpected"},
		{JSON, "[1,]", "unexpected"},
		{Marshal, "[\xff\xff\xff\x7f", "cannot hold"},
		{Marshal, "r\x00\x00\x00\x00", "not (yet) defined"},
		{Marshal, "c", "code objects"},
		{Msgpack, "\xdd\xff\xff\xff\xff", "cannot hold"},
		{Msgpack, "\xc1", "invalid code"},
		{Msgpack, "\x91", "truncated"},
	}
	for _, c := range cases {
		_, err := c.f.Unmarshal([]byte(c.in))
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s %q: error %v, want one containing %q", c.f, clip(c.in, 30), err, c.err)
		}
	}
}

// TestMarshalRefBomb: references to one list, many times over, are
// refused rather than expanded without bound.
func TestMarshalRefBomb(t *testing.T) {
	var b []byte
	// a list of 1000 Nones, flagged as ref 0
	b = append(b, '['|0x80, 0xe8, 0x03, 0, 0)
	b = append(b, bytes.Repeat([]byte{'N'}, 1000)...)
	inner := b
	b = []byte{'[', 0x10, 0x27, 0, 0} // a list of 10000 items
	b = append(b, inner...)
	for range 9999 {
		b = append(b, 'r', 0, 0, 0, 0)
	}
	_, err := Marshal.Unmarshal(b)
	if err == nil || !strings.Contains(err.Error(), "expand") {
		t.Fatalf("err = %v, want a refusal to expand", err)
	}
}

func TestFrameRoundTrip(t *testing.T) {
	for _, p := range []*Protocol{Pyro4, Pyro5} {
		for _, key := range [][]byte{nil, []byte("secret")} {
			if p == Pyro5 && key != nil {
				continue
			}
			m := &Message{Type: MsgInvoke, Flags: FlagOneway, Seq: 7, Serializer: 1, Data: []byte("payload"),
				Annotations: []Annotation{{"CORR", []byte("0123456789abcdef")}}}
			b, err := p.AppendMessage(nil, m, key)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.ReadMessage(bytes.NewReader(b), 1<<20, key)
			if err != nil {
				t.Fatalf("%s: %v", p.Name, err)
			}
			if got.Seq != 7 || string(got.Data) != "payload" || got.Flags != FlagOneway || got.Type != MsgInvoke {
				t.Errorf("%s: got %+v", p.Name, got)
			}
			// A flipped byte in the payload fails the HMAC (Pyro4 with a
			// key); in the header it fails the checksum (Pyro4).
			if key != nil {
				b[len(b)-1] ^= 1
				if _, err := p.ReadMessage(bytes.NewReader(b), 1<<20, key); err == nil || !strings.Contains(err.Error(), "hmac mismatch") {
					t.Errorf("tampered payload: %v", err)
				}
				if _, err := p.ReadMessage(bytes.NewReader(b), 1<<20, nil); err == nil || !strings.Contains(err.Error(), "not symmetric") {
					t.Errorf("keyless reader: %v", err)
				}
			}
		}
	}
	// The captured CONNECT of PYRO-RPYC.md §3.1.
	hdr := "PYRO\x00\x30\x00\x01\x00\x10\x00\x00\x00\x00\x00\x29\x00\x02\x00\x00\x00\x00\x35\x55"
	payload := `{"handshake": "hello", "object": "thing"}`
	m, err := Pyro4.ReadMessage(strings.NewReader(hdr+payload), 1<<20, nil)
	if err != nil || m.Type != MsgConnect || m.Flags != 0x10 || m.Serializer != 2 || string(m.Data) != payload {
		t.Fatalf("captured CONNECT: %+v, %v", m, err)
	}
	bad := []byte(hdr + payload)
	bad[23] ^= 1
	if _, err := Pyro4.ReadMessage(bytes.NewReader(bad), 1<<20, nil); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("bad checksum: %v", err)
	}
	if _, err := Pyro4.ReadMessage(strings.NewReader(hdr+payload), 10, nil); err == nil || !strings.Contains(err.Error(), "max message size") {
		t.Errorf("too large: %v", err)
	}
}

func FuzzFormats(f *testing.F) {
	for _, v := range samples {
		for _, fm := range []Format{Serpent, JSON, Marshal, Msgpack} {
			if b, err := fm.Marshal(v); err == nil {
				f.Add(uint8(fm), b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		fm := Format(which%4 + 1)
		v, err := fm.Unmarshal(b)
		if err != nil {
			return
		}
		// What decodes re-encodes, and decodes to the same value.
		out, err := fm.Marshal(v)
		if err != nil {
			if fm == JSON || fm == Serpent { // e.g. a NaN dict key, bytes in json
				return
			}
			t.Fatalf("%s: re-encoding %#v: %v", fm, v, err)
		}
		again, err := fm.Unmarshal(out)
		if err != nil {
			t.Fatalf("%s: decoding own output %q: %v", fm, out, err)
		}
		// Encoding is a fixed point from here on: the value survived.
		if out2, err := fm.Marshal(again); err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("%s: %q re-encodes as %q (%v)", fm, out, out2, err)
		}
	})
}

func FuzzFrame(f *testing.F) {
	for _, p := range []*Protocol{Pyro4, Pyro5} {
		b, _ := p.AppendMessage(nil, &Message{Type: MsgConnect, Serializer: 1, Data: []byte("x"), Annotations: []Annotation{{"CORR", []byte("abc")}}}, nil)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, p := range []*Protocol{Pyro4, Pyro5} {
			m, err := p.ReadMessage(bytes.NewReader(b), 1<<16, nil)
			if err != nil {
				continue
			}
			if int64(len(m.Data)) > 1<<16 {
				t.Fatalf("%s: %d bytes of data past the limit", p.Name, len(m.Data))
			}
			if _, err := p.AppendMessage(nil, m, nil); err != nil {
				t.Fatalf("%s: re-framing: %v", p.Name, err)
			}
		}
	})
}
