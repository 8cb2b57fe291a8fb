package gpu

import (
	"fmt"
	"math"
	"reflect"
	"strings"

	"github.com/gopyro/gopyro"
)

// DType is the element type of an array.
type DType uint8

// The element types. Data travels little-endian.
const (
	Invalid DType = iota
	Float32
	Float64
	Int32
	Int64
)

var dtypeNames = [...]string{Invalid: "invalid", Float32: "float32", Float64: "float64", Int32: "int32", Int64: "int64"}

func (t DType) String() string {
	if int(t) < len(dtypeNames) {
		return dtypeNames[t]
	}
	return fmt.Sprintf("dtype(%d)", uint8(t))
}

// Size is the size of one element in bytes (0 for an invalid type).
func (t DType) Size() int {
	switch t {
	case Float32, Int32:
		return 4
	case Float64, Int64:
		return 8
	}
	return 0
}

// IsFloat reports whether t is a floating-point type.
func (t DType) IsFloat() bool { return t == Float32 || t == Float64 }

// Valid reports whether t is one of the element types.
func (t DType) Valid() bool { return t >= Float32 && t <= Int64 }

// ParseDType returns the type named s ("float32", "f32", ...).
func ParseDType(s string) (DType, error) {
	switch strings.ToLower(s) {
	case "float32", "f32":
		return Float32, nil
	case "float64", "f64":
		return Float64, nil
	case "int32", "i32":
		return Int32, nil
	case "int64", "i64":
		return Int64, nil
	}
	return Invalid, errorf(gopyro.CodeArgument, "unknown element type %q (want float32, float64, int32 or int64)", s)
}

// Number is the set of Go element types of arrays.
type Number interface {
	~float32 | ~float64 | ~int32 | ~int64
}

// DTypeOf returns the DType of T.
func DTypeOf[T Number]() DType {
	switch reflect.TypeFor[T]().Kind() {
	case reflect.Float32:
		return Float32
	case reflect.Float64:
		return Float64
	case reflect.Int32:
		return Int32
	}
	return Int64
}

// Scalar is one number with its type: a reduction's result, or a value
// for Fill.
type Scalar struct {
	DType DType   `msgpack:"t"`
	F     float64 `msgpack:"f,omitempty"` // the value of a float type
	I     int64   `msgpack:"i,omitempty"` // the value of an integer type
}

// Float64 returns s as a float64.
func (s Scalar) Float64() float64 {
	if s.DType.IsFloat() {
		return s.F
	}
	return float64(s.I)
}

// Int64 returns s as an int64 (a float truncated toward zero).
func (s Scalar) Int64() int64 {
	if s.DType.IsFloat() {
		return int64(s.F)
	}
	return s.I
}

func (s Scalar) String() string {
	if s.DType.IsFloat() {
		return fmt.Sprint(s.F)
	}
	return fmt.Sprint(s.I)
}

// FloatScalar and IntScalar make scalars.
func FloatScalar(t DType, v float64) Scalar { return Scalar{DType: t, F: v} }

// IntScalar makes an integer scalar of type t.
func IntScalar(t DType, v int64) Scalar { return Scalar{DType: t, I: v} }

// convertScalar gives the number v (a float64 or an int64, kind isInt) the
// type t: a non-integral value or one out of range of an integer type is
// an error.
func convertScalar(name string, f float64, i int64, isInt bool, t DType) (Scalar, error) {
	if t.IsFloat() {
		if isInt {
			f = float64(i)
		}
		if t == Float32 && !math.IsInf(f, 0) && !math.IsNaN(f) && math.Abs(f) > math.MaxFloat32 {
			return Scalar{}, errorf(gopyro.CodeArgument, "%s = %v is out of range of float32", name, f)
		}
		return Scalar{DType: t, F: f}, nil
	}
	if !isInt {
		if f != math.Trunc(f) || math.IsInf(f, 0) || math.IsNaN(f) {
			return Scalar{}, errorf(gopyro.CodeArgument, "%s = %v is not an integer, and the arrays are %s", name, f, t)
		}
		if f < -(1<<63) || f >= 1<<63 {
			return Scalar{}, errorf(gopyro.CodeArgument, "%s = %v is out of range of %s", name, f, t)
		}
		i = int64(f)
	}
	if t == Int32 && (i < math.MinInt32 || i > math.MaxInt32) {
		return Scalar{}, errorf(gopyro.CodeArgument, "%s = %d is out of range of int32", name, i)
	}
	return Scalar{DType: t, I: i}, nil
}

// Shape is the extent of each dimension, outermost first (row-major).
type Shape []int

// Len is the number of elements: the product of the dimensions.
func (s Shape) Len() int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

func (s Shape) String() string {
	var b strings.Builder
	b.WriteByte('(')
	for i, d := range s {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprint(&b, d)
	}
	if len(s) == 1 {
		b.WriteByte(',')
	}
	b.WriteByte(')')
	return b.String()
}

// Equal reports whether s and t are the same shape.
func (s Shape) Equal(t Shape) bool {
	if len(s) != len(t) {
		return false
	}
	for i := range s {
		if s[i] != t[i] {
			return false
		}
	}
	return true
}

// MaxDims bounds the dimensions of an array.
const MaxDims = 8

// check validates a shape of elements of size esize against limit bytes
// and returns the element count.
func (s Shape) check(esize int, limit int64) (int, error) {
	if len(s) == 0 || len(s) > MaxDims {
		return 0, errorf(gopyro.CodeArgument, "an array has 1 to %d dimensions, not %d", MaxDims, len(s))
	}
	n := int64(1)
	for i, d := range s {
		if d < 1 {
			return 0, errorf(gopyro.CodeArgument, "dimension %d of shape %v is %d: dimensions are at least 1", i, s, d)
		}
		n *= int64(d)
		if n*int64(esize) > limit || n > math.MaxInt32*16 {
			return 0, newErr(ErrOutOfMemory, "an array of shape %v is over the size limit of %s", s, FormatBytes(limit))
		}
	}
	return int(n), nil
}

// FormatBytes writes n as a size a person reads (KiB, MiB, GiB).
func FormatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// Info describes a service: its backend and devices.
type Info struct {
	Backend string   `msgpack:"backend"` // "cpu" or "cuda"
	Reason  string   `msgpack:"reason,omitempty"`
	Devices []Device `msgpack:"devices"`
	// MaxMemory is the service's total array memory limit, SessionMemory
	// the limit of one session, MaxArray the largest array, in bytes.
	MaxMemory     int64 `msgpack:"max_memory"`
	SessionMemory int64 `msgpack:"session_memory"`
	MaxArray      int64 `msgpack:"max_array"`
	// Used is the array memory in use now, Arrays the number of arrays.
	Used   int64 `msgpack:"used"`
	Arrays int   `msgpack:"arrays"`
	// Chunk is the most bytes one Read or Write moves.
	Chunk int `msgpack:"chunk"`
}

// Device describes one compute device.
type Device struct {
	Name   string `msgpack:"name"`
	Memory int64  `msgpack:"memory"` // bytes
	Cores  int    `msgpack:"cores"`  // CPU cores, or CUDA multiprocessors
	// Extra carries backend details (compute capability, library versions).
	Extra map[string]string `msgpack:"extra,omitempty"`
}

func (d Device) String() string {
	s := fmt.Sprintf("%s, %s, %d cores", d.Name, FormatBytes(d.Memory), d.Cores)
	return s
}
