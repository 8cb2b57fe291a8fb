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
// safe on hostile input; after it succeeds, decoding b cannot be made to
// allocate more than a small multiple of len(b).
func Validate(b []byte) error {
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
			return fmt.Errorf("wire: truncated msgpack value at byte %d", pos)
		}
		c := b[pos]
		pos++
		var skip int64  // bytes of data after the code (and length)
		var items int64 // values contained (arrays, maps)
		var lenBytes int
		switch {
		case c <= 0x7f || c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3:
			// fixint, nil, bool
		case c >= 0x80 && c <= 0x8f:
			items = 2 * int64(c&0x0f)
		case c >= 0x90 && c <= 0x9f:
			items = int64(c & 0x0f)
		case c >= 0xa0 && c <= 0xbf:
			skip = int64(c & 0x1f)
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
			return fmt.Errorf("wire: invalid msgpack code 0x%02x at byte %d", c, pos-1)
		}
		if lenBytes > 0 {
			if pos+lenBytes > len(b) {
				return fmt.Errorf("wire: truncated msgpack length at byte %d", pos)
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
			}
		}
		if skip > int64(len(b)-pos) {
			return fmt.Errorf("wire: msgpack value at byte %d claims %d bytes, only %d remain", pos, skip, len(b)-pos)
		}
		pos += int(skip)
		if items > 0 {
			// Every contained value takes at least one byte.
			if items > int64(len(b)-pos) {
				return fmt.Errorf("wire: msgpack container at byte %d claims %d values, only %d bytes remain", pos, items, len(b)-pos)
			}
			if depth+1 > MaxDepth {
				return fmt.Errorf("wire: msgpack nesting deeper than %d", MaxDepth)
			}
			depth++
			pending[depth] = items
		}
	}
	if pos != len(b) {
		return fmt.Errorf("wire: %d trailing bytes after msgpack value", len(b)-pos)
	}
	return nil
}
