package pyro

import (
	"bytes"
	"compress/zlib"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Message types, the same in both protocols.
const (
	MsgConnect     = 1
	MsgConnectOK   = 2
	MsgConnectFail = 3
	MsgInvoke      = 4
	MsgResult      = 5
	MsgPing        = 6
)

// Flags common to both protocols. The others differ: see [Protocol].
const (
	FlagException  = 0x01
	FlagCompressed = 0x02
	FlagOneway     = 0x04
	FlagBatch      = 0x08
)

// Protocol is one of Pyro's wire protocols.
type Protocol struct {
	Name       string // "Pyro4" or "Pyro5": the module prefix of class names
	Version    uint16
	HeaderSize int
	FlagStream uint16 // the result is a remote iterator (STRM/corr id names it)
	FlagMeta   uint16 // Pyro4: metadata wanted on CONNECT (0 in Pyro5: always sent)
	FlagCorrID uint16 // Pyro5: the header's correlation id is set
	ids        map[uint16]Format
	refused    map[uint16]string
}

// Pyro4 is protocol 48, as Pyro4 4.82 speaks it.
var Pyro4 = &Protocol{Name: "Pyro4", Version: 48, HeaderSize: 24, FlagStream: 0x20, FlagMeta: 0x10,
	ids:     map[uint16]Format{1: Serpent, 2: JSON, 3: Marshal, 6: Msgpack},
	refused: map[uint16]string{4: "pickle", 5: "dill", 7: "cloudpickle"}}

// Pyro5 is protocol 502.
var Pyro5 = &Protocol{Name: "Pyro5", Version: 502, HeaderSize: 40, FlagStream: 0x10, FlagCorrID: 0x40,
	ids: map[uint16]Format{1: Serpent, 2: Marshal, 3: JSON, 4: Msgpack}}

// Format returns the serializer with wire id id.
func (p *Protocol) Format(id uint16) (Format, error) {
	if f, ok := p.ids[id]; ok {
		return f, nil
	}
	if name, ok := p.refused[id]; ok {
		return 0, fmt.Errorf("%w: %d (%s can run arbitrary code on the receiver; use serpent, json, marshal or msgpack)", errNotAccepted, id, name)
	}
	return 0, fmt.Errorf("%w: %d", errNotAccepted, id)
}

// SerializerID returns the wire id of f.
func (p *Protocol) SerializerID(f Format) uint16 {
	for id, g := range p.ids {
		if g == f {
			return id
		}
	}
	return 0
}

// Annotation is one annotation chunk: a 4-character key and its value.
type Annotation struct {
	Key   string
	Value []byte
}

// Message is one Pyro message.
type Message struct {
	Type        uint16
	Flags       uint16
	Seq         uint16
	Serializer  uint16
	Annotations []Annotation
	Data        []byte
	CorrID      [16]byte // Pyro5's header correlation id
}

// Annotation returns the value of annotation key.
func (m *Message) Annotation(key string) ([]byte, bool) {
	for _, a := range m.Annotations {
		if a.Key == key {
			return a.Value, true
		}
	}
	return nil, false
}

// ProtocolError is a malformed or refused message.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return e.Msg }

func protoErr(format string, args ...any) error {
	return &ProtocolError{Msg: fmt.Sprintf(format, args...)}
}

// SecurityError is an HMAC mismatch, or a key on one side only.
type SecurityError struct{ Msg string }

func (e *SecurityError) Error() string { return e.Msg }

// TooLargeError is a message beyond the reader's limit.
type TooLargeError struct{ Size, Limit int64 }

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("max message size exceeded (%d where max=%d)", e.Size, e.Limit)
}

// Detect tells the protocol from the first 6 bytes of a connection.
func Detect(head []byte) (*Protocol, error) {
	if len(head) < 6 || string(head[:4]) != "PYRO" {
		return nil, protoErr("invalid data or unsupported protocol version")
	}
	switch binary.BigEndian.Uint16(head[4:]) {
	case Pyro4.Version:
		return Pyro4, nil
	case Pyro5.Version:
		return Pyro5, nil
	}
	return nil, protoErr("invalid protocol version: %d", binary.BigEndian.Uint16(head[4:]))
}

const pyro5Magic = 0x4dc5

// ReadMessage reads one message of protocol p from r: data and
// annotations together at most max bytes (after decompression too). With
// a key (Pyro4), the message's HMAC must match it.
func (p *Protocol) ReadMessage(r io.Reader, max int64, key []byte) (*Message, error) {
	var hb [40]byte
	h := hb[:p.HeaderSize]
	if _, err := io.ReadFull(r, h); err != nil {
		return nil, err
	}
	if string(h[:4]) != "PYRO" || binary.BigEndian.Uint16(h[4:]) != p.Version {
		return nil, protoErr("invalid data or unsupported protocol version")
	}
	m := &Message{}
	var dataLen, annLen int64
	if p == Pyro4 {
		m.Type = binary.BigEndian.Uint16(h[6:])
		m.Flags = binary.BigEndian.Uint16(h[8:])
		m.Seq = binary.BigEndian.Uint16(h[10:])
		dataLen = int64(int32(binary.BigEndian.Uint32(h[12:])))
		m.Serializer = binary.BigEndian.Uint16(h[16:])
		annLen = int64(binary.BigEndian.Uint16(h[18:]))
		sum := binary.BigEndian.Uint16(h[22:])
		if sum != pyro4Checksum(m.Type, m.Flags, m.Seq, m.Serializer, uint32(dataLen), uint16(annLen)) {
			return nil, protoErr("header checksum mismatch")
		}
		if dataLen < 0 {
			return nil, protoErr("negative data length")
		}
	} else {
		m.Type = uint16(h[6])
		m.Serializer = uint16(h[7])
		m.Flags = binary.BigEndian.Uint16(h[8:])
		m.Seq = binary.BigEndian.Uint16(h[10:])
		dataLen = int64(binary.BigEndian.Uint32(h[12:]))
		annLen = int64(binary.BigEndian.Uint32(h[16:]))
		copy(m.CorrID[:], h[20:36])
		if binary.BigEndian.Uint16(h[38:]) != pyro5Magic {
			return nil, protoErr("invalid magic number")
		}
	}
	if m.Type < MsgConnect || m.Type > MsgPing {
		return nil, protoErr("invalid msg type %d received", m.Type)
	}
	if max > 0 && dataLen+annLen > max {
		return nil, &TooLargeError{Size: dataLen + annLen, Limit: max}
	}
	body := make([]byte, annLen+dataLen)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	ann, data := body[:annLen], body[annLen:]
	lenSize := 2
	if p == Pyro5 {
		lenSize = 4
	}
	for len(ann) > 0 {
		if len(ann) < 4+lenSize {
			return nil, protoErr("annotation parsing did not consume all annotation data")
		}
		var n int
		if lenSize == 2 {
			n = int(binary.BigEndian.Uint16(ann[4:]))
		} else {
			n = int(binary.BigEndian.Uint32(ann[4:]))
		}
		if n > len(ann)-4-lenSize {
			return nil, protoErr("annotation parsing did not consume all annotation data")
		}
		m.Annotations = append(m.Annotations, Annotation{Key: string(ann[:4]), Value: ann[4+lenSize : 4+lenSize+n]})
		ann = ann[4+lenSize+n:]
	}
	m.Data = data
	if p == Pyro4 {
		got, has := m.Annotation("HMAC")
		switch {
		case key != nil && !has, key == nil && has:
			return nil, &SecurityError{Msg: "hmac key config not symmetric"}
		case key != nil && !hmac.Equal(got, m.hmac(key)):
			return nil, &SecurityError{Msg: "message hmac mismatch"}
		}
	}
	if m.Flags&FlagCompressed != 0 {
		zr, err := zlib.NewReader(bytes.NewReader(m.Data))
		if err != nil {
			return nil, protoErr("malformed compressed data: %v", err)
		}
		limit := max
		if limit <= 0 {
			limit = 1 << 30
		}
		out, err := io.ReadAll(io.LimitReader(zr, limit+1))
		if err != nil {
			return nil, protoErr("malformed compressed data: %v", err)
		}
		if int64(len(out)) > limit {
			return nil, &TooLargeError{Size: int64(len(out)), Limit: limit}
		}
		m.Data = out
		m.Flags &^= FlagCompressed
	}
	return m, nil
}

func pyro4Checksum(typ, flags, seq, ser uint16, dataLen uint32, annLen uint16) uint16 {
	return uint16((uint32(typ) + 48 + dataLen + uint32(annLen) + uint32(ser) + uint32(flags) + uint32(seq) + 0x34e9) & 0xffff)
}

// hmac is Pyro4's message HMAC: SHA-1 over the data, then every other
// annotation's value in key order.
func (m *Message) hmac(key []byte) []byte {
	mac := hmac.New(sha1.New, key)
	mac.Write(m.Data)
	anns := slices.Clone(m.Annotations)
	slices.SortFunc(anns, func(a, b Annotation) int {
		switch {
		case a.Key < b.Key:
			return -1
		case a.Key > b.Key:
			return 1
		}
		return 0
	})
	for _, a := range anns {
		if a.Key != "HMAC" {
			mac.Write(a.Value)
		}
	}
	return mac.Sum(nil)
}

// AppendMessage appends m, framed for protocol p, to dst. With a key
// (Pyro4) an HMAC annotation is added.
func (p *Protocol) AppendMessage(dst []byte, m *Message, key []byte) ([]byte, error) {
	anns := m.Annotations
	if p == Pyro4 && key != nil {
		anns = append(slices.Clone(anns), Annotation{Key: "HMAC", Value: m.hmac(key)})
	}
	lenSize := 2
	if p == Pyro5 {
		lenSize = 4
	}
	annLen := 0
	for _, a := range anns {
		if len(a.Key) != 4 {
			return nil, fmt.Errorf("annotation key %q is not 4 characters", a.Key)
		}
		if lenSize == 2 && len(a.Value) > 0xffff {
			return nil, fmt.Errorf("annotation %s of %d bytes (the limit is 65535)", a.Key, len(a.Value))
		}
		annLen += 4 + lenSize + len(a.Value)
	}
	if p == Pyro4 && annLen > 0xffff {
		return nil, errors.New("annotations of more than 65535 bytes")
	}
	if int64(len(m.Data)) > 0x7fffffff {
		return nil, fmt.Errorf("a message of %d bytes (the limit is 2 GiB)", len(m.Data))
	}
	dst = append(dst, "PYRO"...)
	dst = binary.BigEndian.AppendUint16(dst, p.Version)
	if p == Pyro4 {
		dst = binary.BigEndian.AppendUint16(dst, m.Type)
		dst = binary.BigEndian.AppendUint16(dst, m.Flags)
		dst = binary.BigEndian.AppendUint16(dst, m.Seq)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(m.Data)))
		dst = binary.BigEndian.AppendUint16(dst, m.Serializer)
		dst = binary.BigEndian.AppendUint16(dst, uint16(annLen))
		dst = binary.BigEndian.AppendUint16(dst, 0)
		dst = binary.BigEndian.AppendUint16(dst, pyro4Checksum(m.Type, m.Flags, m.Seq, m.Serializer, uint32(len(m.Data)), uint16(annLen)))
	} else {
		dst = append(dst, byte(m.Type), byte(m.Serializer))
		dst = binary.BigEndian.AppendUint16(dst, m.Flags)
		dst = binary.BigEndian.AppendUint16(dst, m.Seq)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(m.Data)))
		dst = binary.BigEndian.AppendUint32(dst, uint32(annLen))
		dst = append(dst, m.CorrID[:]...)
		dst = binary.BigEndian.AppendUint16(dst, 0)
		dst = binary.BigEndian.AppendUint16(dst, pyro5Magic)
	}
	for _, a := range anns {
		dst = append(dst, a.Key...)
		if lenSize == 2 {
			dst = binary.BigEndian.AppendUint16(dst, uint16(len(a.Value)))
		} else {
			dst = binary.BigEndian.AppendUint32(dst, uint32(len(a.Value)))
		}
		dst = append(dst, a.Value...)
	}
	return append(dst, m.Data...), nil
}
