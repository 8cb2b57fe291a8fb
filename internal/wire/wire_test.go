package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5"
)

func TestValidateAcceptsEncodedValues(t *testing.T) {
	vals := []any{
		nil, true, 1, -1, 300, -70000, int64(math.MaxInt64), uint64(math.MaxUint64), 1.5, float32(2.5),
		"", "hello", strings.Repeat("x", 70000), []byte{1, 2, 3}, bytes.Repeat([]byte{1}, 70000),
		[]any{1, "a", []int{1, 2}}, map[string]any{"a": 1, "b": []string{"x"}}, time.Unix(1, 5),
		make([]int, 70000), map[int]string{1: "a"},
	}
	for _, v := range vals {
		b, err := EncodeArray(v)
		if err != nil {
			t.Fatalf("encode %T: %v", v, err)
		}
		if err := Validate(b); err != nil {
			t.Errorf("Validate(%T) = %v", v, err)
		}
	}
}

func TestValidateRejects(t *testing.T) {
	tests := map[string][]byte{
		"empty":            {},
		"array32 lies":     {0xdd, 0x3b, 0x9a, 0xca, 0x00, 0x01}, // a billion elements, one byte
		"map32 lies":       {0xdf, 0xff, 0xff, 0xff, 0xff},
		"str32 lies":       {0xdb, 0x00, 0x10, 0x00, 0x00, 'a'},
		"bin16 lies":       {0xc5, 0xff, 0xff},
		"ext32 lies":       {0xc9, 0xff, 0xff, 0xff, 0xff, 0x01},
		"truncated float":  {0xcb, 0, 0},
		"truncated length": {0xdc, 0x00},
		"trailing":         {0x01, 0x02},
		"never used":       {0xc1},
		"too deep":         bytes.Repeat([]byte{0x91}, MaxDepth+2),
		"fixarray short":   {0x93, 0x01},
		"fixmap odd":       {0x81, 0x01},
	}
	for name, b := range tests {
		if err := Validate(b); err == nil {
			t.Errorf("%s: Validate accepted % x", name, b)
		}
	}
}

// A 6-byte payload claiming a billion-element array is refused without
// allocating: the trap of msgpack issue #401.
func TestHostileLengthDoesNotAllocate(t *testing.T) {
	b := []byte{0xdd, 0x3b, 0x9a, 0xca, 0x00, 0x01}
	allocs := testing.AllocsPerRun(100, func() {
		if Validate(b) == nil {
			t.Fatal("accepted")
		}
	})
	// The error value itself allocates; the claimed billion elements do not.
	if allocs > 4 {
		t.Fatalf("Validate allocated %v times", allocs)
	}
}

func decodeOne(t *testing.T, v any, into reflect.Type) (reflect.Value, error) {
	t.Helper()
	b, err := EncodeArray(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(b); err != nil {
		t.Fatal(err)
	}
	d, err := NewDecoder(b)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Release()
	out := reflect.New(into).Elem()
	return out, d.Next(0, out)
}

func TestDecodeConversions(t *testing.T) {
	ok := []struct {
		in   any
		typ  reflect.Type
		want any
	}{
		{127, reflect.TypeFor[int8](), int8(127)},
		{-128, reflect.TypeFor[int8](), int8(-128)},
		{uint64(255), reflect.TypeFor[uint8](), uint8(255)},
		{2.0, reflect.TypeFor[int](), 2},
		{3, reflect.TypeFor[float64](), 3.0},
		{3, reflect.TypeFor[float32](), float32(3)},
		{2.5, reflect.TypeFor[float32](), float32(2.5)},
		{int64(1) << 40, reflect.TypeFor[int64](), int64(1) << 40},
		{[]any{1, 2}, reflect.TypeFor[[]int16](), []int16{1, 2}},
		{map[string]any{"a": 1}, reflect.TypeFor[map[string]float64](), map[string]float64{"a": 1}},
		{nil, reflect.TypeFor[*int](), (*int)(nil)},
		{5, reflect.TypeFor[*int](), ptr(5)},
		{"s", reflect.TypeFor[any](), "s"},
		{300, reflect.TypeFor[any](), int64(300)},
		{[]any{uint8(1), 2.5}, reflect.TypeFor[any](), []any{int64(1), 2.5}},
		{[2]int{1, 2}, reflect.TypeFor[[2]uint8](), [2]uint8{1, 2}},
		{map[int]string{1: "a"}, reflect.TypeFor[any](), map[any]any{int64(1): "a"}},
	}
	for _, tt := range ok {
		got, err := decodeOne(t, tt.in, tt.typ)
		if err != nil {
			t.Errorf("%v into %s: %v", tt.in, tt.typ, err)
			continue
		}
		if !reflect.DeepEqual(got.Interface(), tt.want) {
			t.Errorf("%v into %s = %#v, want %#v", tt.in, tt.typ, got.Interface(), tt.want)
		}
	}
	bad := []struct {
		in   any
		typ  reflect.Type
		want string
	}{
		{300, reflect.TypeFor[int8](), "overflows int8"},
		{-1, reflect.TypeFor[uint](), "negative"},
		{uint64(math.MaxUint64), reflect.TypeFor[int64](), "overflows int64"},
		{2.5, reflect.TypeFor[int](), "not an integer"},
		{1e39, reflect.TypeFor[float32](), "overflows float32"},
		// Mismatches are said in the caller's terms, never the codec's
		// (issue 15, item 6).
		{"x", reflect.TypeFor[int](), `argument 1 (int): want an integer, got the string "x"`},
		{1, reflect.TypeFor[string](), "argument 1 (string): want a string, got the integer 1"},
		{[]int{1}, reflect.TypeFor[float64](), "want a number, got a list of 1"},
		{map[string]int{"a": 1}, reflect.TypeFor[[]int](), "want a list, got a map of 1"},
		{"x", reflect.TypeFor[map[string]int](), `want a map, got the string "x"`},
		{[]int{1, 2, 3}, reflect.TypeFor[[2]int](), "got 3 elements"},
		{[]int{1, 1000}, reflect.TypeFor[[]int8](), "element 1: value 1000 overflows int8"},
	}
	for _, tt := range bad {
		_, err := decodeOne(t, tt.in, tt.typ)
		var ae *ArgError
		if !errors.As(err, &ae) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v into %s: err = %v, want %q", tt.in, tt.typ, err, tt.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestDecodeNilTimeDoesNotPanic(t *testing.T) {
	got, err := decodeOne(t, nil, reflect.TypeFor[time.Time]())
	if err != nil || !got.Interface().(time.Time).IsZero() {
		t.Fatalf("nil into time.Time = %v %v", got, err)
	}
}

func TestErrorRoundTrip(t *testing.T) {
	ge := DecodeError(EncodeError(errors.New("boom")))
	if !ge.Remote || ge.RemoteType != "*errors.errorString" || ge.Message != "boom" {
		t.Fatalf("%+v", ge)
	}
	if ge := DecodeError([]byte{0xdd, 0xff}); ge.Code.String() != "protocol" {
		t.Fatalf("malformed error reply: %+v", ge)
	}
}

// FuzzDecode: whatever bytes arrive, Validate plus decoding into common
// parameter types neither panics nor allocates without bound.
func FuzzDecode(f *testing.F) {
	for _, v := range []any{1, "a", []any{1, "x", 2.5}, map[string]int{"a": 1}, []byte{1}} {
		b, _ := EncodeArray(v)
		f.Add(b)
	}
	f.Add([]byte{0xdd, 0x0f, 0xff, 0xff, 0xff, 0x01})
	if b, err := EncodeBatch([]BatchCall{{Method: "M", Args: []byte{0x90}}}); err == nil {
		f.Add(b)
	}
	c := NewChunk("id")
	_ = c.Add("item")
	if b, err := EncodeArray(c, testRef("PYRO:o@h:1")); err == nil {
		f.Add(b)
	}
	types := []reflect.Type{
		reflect.TypeFor[int8](), reflect.TypeFor[string](), reflect.TypeFor[[]int](), reflect.TypeFor[map[string][]float32](),
		reflect.TypeFor[any](), reflect.TypeFor[*[]any](), reflect.TypeFor[struct{ A int }](), reflect.TypeFor[time.Time](),
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if Validate(b) != nil {
			return
		}
		for _, typ := range types {
			d, err := NewDecoder(b)
			if err != nil {
				return
			}
			for i := range d.Len() {
				if d.Next(i, reflect.New(typ).Elem()) != nil {
					break
				}
			}
			d.Release()
		}
		// Aliasing decoding, references and stream chunks, batches.
		if d, err := NewAliasingDecoder(b); err == nil {
			for i := range d.Len() {
				if d.Next(i, reflect.New(reflect.TypeFor[[]byte]()).Elem()) != nil {
					break
				}
			}
			d.Release()
		}
		if d, err := NewDecoder(b); err == nil {
			if d.Len() > 0 {
				if c, err := d.ReadChunk(); err == nil {
					for i := range c.N {
						if c.Next(i, reflect.New(reflect.TypeFor[any]()).Elem()) != nil {
							break
						}
					}
				}
			}
			d.Release()
		}
		_, _ = DecodeBatch(b)
		_, _ = DecodeBatchReply(b, 2)
		// msgpack itself must also survive validated input.
		var v any
		_ = msgpack.Unmarshal(b, &v)
	})
}

func frameHeader(n uint32, flags byte) []byte {
	h := make([]byte, 16)
	h[0], h[2] = rpcxMagic, flags
	binary.BigEndian.PutUint32(h[12:], n)
	return h
}

func TestGuardConn(t *testing.T) {
	feed := func(max int64, data []byte) error {
		a, b := net.Pipe()
		defer a.Close()
		g := NewGuardConn(b, max, nil)
		defer g.Close()
		go func() { _, _ = a.Write(data); a.Close() }()
		buf := make([]byte, 7) // small reads split headers
		for {
			_, err := g.Read(buf)
			if err != nil {
				if err.Error() == "EOF" {
					return nil
				}
				return err
			}
		}
	}
	two := append(append(frameHeader(3, 0), 1, 2, 3), frameHeader(0, 0)...)
	if err := feed(16, two); err != nil {
		t.Fatalf("good frames: %v", err)
	}
	if err := feed(16, frameHeader(17, 0)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("big frame: %v", err)
	}
	if err := feed(1<<20, append(frameHeader(1, 0), 9, 0xff)); err == nil || !strings.Contains(err.Error(), "magic") {
		t.Fatalf("bad second magic: %v", err)
	}
	if err := feed(1<<20, frameHeader(1, 0x04)); err == nil || !strings.Contains(err.Error(), "compressed") {
		t.Fatalf("gzip frame: %v", err)
	}
}

func TestAliasingDecoder(t *testing.T) {
	big := make([]byte, 100<<10)
	for i := range big {
		big[i] = byte(i * 7)
	}
	small := []byte("tiny")
	b, err := EncodeArray(big, small, "after")
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewAliasingDecoder(b)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Release()
	var gotBig, gotSmall []byte
	var after string
	for i, v := range []any{&gotBig, &gotSmall, &after} {
		if err := d.Next(i, reflect.ValueOf(v).Elem()); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(gotBig, big) || !bytes.Equal(gotSmall, small) || after != "after" {
		t.Fatalf("decoded %d bytes, %q, %q", len(gotBig), gotSmall, after)
	}
	// The large value shares the payload; the small ones do not.
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	if p := uintptr(unsafe.Pointer(unsafe.SliceData(gotBig))); p < start || p >= start+uintptr(len(b)) {
		t.Fatal("large value was copied")
	}
	if p := uintptr(unsafe.Pointer(unsafe.SliceData(gotSmall))); p >= start && p < start+uintptr(len(b)) {
		t.Fatal("small value aliases the payload")
	}
}

func TestScatterEncoding(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789"), ScatterMin/5)
	vals := []reflect.Value{reflect.ValueOf("head"), reflect.ValueOf(big), reflect.ValueOf(any(big)), reflect.ValueOf(42)}
	plain := NewEncoder()
	defer plain.Release()
	if err := plain.EncodeValues(vals); err != nil {
		t.Fatal(err)
	}
	sc := NewEncoder()
	defer sc.Release()
	sc.Scatter()
	if err := sc.EncodeValues(vals); err != nil {
		t.Fatal(err)
	}
	segs := sc.Segments()
	if len(segs) != 5 {
		t.Fatalf("%d segments, want 5 (two large values left in place)", len(segs))
	}
	if &segs[1][0] != &big[0] || &segs[3][0] != &big[0] {
		t.Fatal("large values were copied")
	}
	if !bytes.Equal(bytes.Join(segs, nil), plain.Raw()) || !bytes.Equal(sc.Raw(), plain.Raw()) {
		t.Fatal("scattered encoding differs from the plain one")
	}
}

// testRef encodes as a reference to its URI.
type testRef string

func (r testRef) EncodeMsgpack(e *msgpack.Encoder) error { return EncodeRef(e, string(r)) }
