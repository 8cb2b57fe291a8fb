package wire

import (
	"encoding/binary"
	"fmt"
)

// MaxDepth is the deepest nesting of arrays and maps that [Validate] accepts.
const MaxDepth = 64

// Validate checks that b holds exactly one well-formed msgpack value whose
// every declared length is backed by bytes in b, nested at most [MaxDepth]
// deep. It allocates nothing and runs in time linear in len(b), so it is
// safe on hostile input. Decoding b may still cost many times len(b):
// [ValidateCost] says how much.
func Validate(b []byte) error {
	_, err := ValidateCost(b)
	return err
}

// Costs of decoded values, as ValidateCost estimates them: what a value
// costs at most once decoded into an interface (the most expensive
// target), headers and boxing included.
const (
	costScalar    = 16 // an interface holding a number, bool or nil
	costContainer = 64 // a slice or map header, boxed, and its allocation
	costBytes     = 32 // a string or []byte header, boxed, plus its bytes
)

// ValidateCost is [Validate], and also returns an estimate of the memory
// that decoding b may cost, in bytes: it bounds what a payload may expand
// to (8 MiB of empty arrays decode to hundreds of MiB), so that a daemon
// can refuse or budget it before decoding.
func ValidateCost(b []byte) (int64, error) {
	var cost int64
	// pending[i] counts the values still expected by the i-th open container.
	var pending [MaxDepth + 1]int64
	depth := 0
	pending[0] = 1
	pos := 0
	for {
		for depth >= 0 && pending[depth] == 0 {
			depth--
		}
		if depth < 0 {
			break
		}
		pending[depth]--
		if pos >= len(b) {
			return 0, fmt.Errorf("wire: truncated msgpack value at byte %d", pos)
		}
		c := b[pos]
		pos++
		var skip int64  // bytes of data after the code (and length)
		var items int64 // values contained (arrays, maps)
		var lenBytes int
		isBytes := false
		switch {
		case c <= 0x7f || c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3:
			// fixint, nil, bool
		case c >= 0x80 && c <= 0x8f:
			items = 2 * int64(c&0x0f)
		case c >= 0x90 && c <= 0x9f:
			items = int64(c & 0x0f)
		case c >= 0xa0 && c <= 0xbf:
			skip = int64(c & 0x1f)
			isBytes = true
		case c == 0xc4 || c == 0xd9: // bin8, str8
			lenBytes = 1
		case c == 0xc5 || c == 0xda:
			lenBytes = 2
		case c == 0xc6 || c == 0xdb:
			lenBytes = 4
		case c == 0xc7, c == 0xc8, c == 0xc9: // ext8/16/32: length, type, data
			lenBytes = 1 << (c - 0xc7)
		case c == 0xca:
			skip = 4
		case c == 0xcb:
			skip = 8
		case c >= 0xcc && c <= 0xcf:
			skip = 1 << (c - 0xcc)
		case c >= 0xd0 && c <= 0xd3:
			skip = 1 << (c - 0xd0)
		case c >= 0xd4 && c <= 0xd8: // fixext: type byte + 1..16 bytes
			skip = 1 + 1<<(c-0xd4)
		case c == 0xdc, c == 0xde:
			lenBytes = 2
		case c == 0xdd, c == 0xdf:
			lenBytes = 4
		default: // 0xc1 is never used
			return 0, fmt.Errorf("wire: invalid msgpack code 0x%02x at byte %d", c, pos-1)
		}
		if lenBytes > 0 {
			if pos+lenBytes > len(b) {
				return 0, fmt.Errorf("wire: truncated msgpack length at byte %d", pos)
			}
			var n int64
			switch lenBytes {
			case 1:
				n = int64(b[pos])
			case 2:
				n = int64(binary.BigEndian.Uint16(b[pos:]))
			case 4:
				n = int64(binary.BigEndian.Uint32(b[pos:]))
			}
			pos += lenBytes
			switch c {
			case 0xdc, 0xdd:
				items = n
			case 0xde, 0xdf:
				items = 2 * n
			case 0xc7, 0xc8, 0xc9:
				skip = 1 + n
			default:
				skip = n
				isBytes = true
			}
		}
		switch {
		case isBytes:
			cost += costBytes + skip
		case items > 0 || c&0xf0 == 0x80 || c&0xf0 == 0x90 || c >= 0xdc && c <= 0xdf:
			cost += costContainer
		default:
			cost += costScalar + skip
		}
		if skip > int64(len(b)-pos) {
			return 0, fmt.Errorf("wire: msgpack value at byte %d claims %d bytes, only %d remain", pos, skip, len(b)-pos)
		}
		pos += int(skip)
		if items > 0 {
			// Every contained value takes at least one byte.
			if items > int64(len(b)-pos) {
				return 0, fmt.Errorf("wire: msgpack container at byte %d claims %d values, only %d bytes remain", pos, items, len(b)-pos)
			}
			if depth+1 > MaxDepth {
				return 0, fmt.Errorf("wire: msgpack nesting deeper than %d", MaxDepth)
			}
			depth++
			pending[depth] = items
		}
	}
	if pos != len(b) {
		return 0, fmt.Errorf("wire: %d trailing bytes after msgpack value", len(b)-pos)
	}
	return cost, nil
}
