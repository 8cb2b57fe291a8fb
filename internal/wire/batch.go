package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// Batch metadata: a request with [MetaBatch] carries several calls on one
// object, run in order. "1" runs them all; "s" stops at the first error.
const (
	MetaBatch       = "b"
	BatchMethod     = "batch" // the method name a batch request carries
	BatchAll        = "1"
	BatchStopOnFail = "s"
)

// BatchCall is one call of a batch: the method and its encoded arguments
// (a msgpack array, as a single call's payload).
type BatchCall struct {
	Method string
	Args   []byte
}

// Status of one call in a batch reply.
const (
	BatchOK      uint8 = 0 // Data holds the results (a msgpack array)
	BatchFailed  uint8 = 1 // Data holds an error (EncodeError)
	BatchSkipped uint8 = 2 // not run: an earlier call failed
)

// BatchResult is one call's outcome in a batch reply.
type BatchResult struct {
	Status uint8
	Data   []byte
}

// EncodeBatch encodes calls as a batch request payload: an array of
// [method, args] pairs, args as bin.
func EncodeBatch(calls []BatchCall) ([]byte, error) {
	return encodePairs(len(calls), func(enc *msgpack.Encoder, i int) error {
		_ = enc.EncodeString(calls[i].Method)
		return enc.EncodeBytes(calls[i].Args)
	})
}

// encodePairs encodes an array of n two-element arrays written by pair.
func encodePairs(n int, pair func(enc *msgpack.Encoder, i int) error) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.GetEncoder()
	defer msgpack.PutEncoder(enc)
	enc.Reset(&buf)
	if err := enc.EncodeArrayLen(n); err != nil {
		return nil, err
	}
	for i := range n {
		_ = enc.EncodeArrayLen(2)
		if err := pair(enc, i); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

// MaxBatchCalls bounds the calls of one batch: each costs an encoder and a
// result, whatever its size on the wire.
const MaxBatchCalls = 10000

// BatchLen returns the number of calls of a batch payload that [Validate]
// accepted (-1 if it is not an array), without decoding them.
func BatchLen(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	switch c := b[0]; {
	case c >= 0x90 && c <= 0x9f:
		return int(c & 0x0f)
	case c == 0xdc && len(b) >= 3:
		return int(binary.BigEndian.Uint16(b[1:]))
	case c == 0xdd && len(b) >= 5:
		return int(binary.BigEndian.Uint32(b[1:]))
	}
	return -1
}

// DecodeBatch reads a batch request payload that [Validate] accepted.
func DecodeBatch(b []byte) ([]BatchCall, error) {
	d := msgpack.GetDecoder()
	defer msgpack.PutDecoder(d)
	d.Reset(bytes.NewReader(b))
	n, err := d.DecodeArrayLen()
	if err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, errors.New("batch is nil")
	}
	calls := make([]BatchCall, n)
	for i := range calls {
		if m, err := d.DecodeArrayLen(); err != nil || m != 2 {
			return nil, fmt.Errorf("batch call %d: want [method, args]", i)
		}
		if calls[i].Method, err = d.DecodeString(); err != nil {
			return nil, fmt.Errorf("batch call %d: method: %w", i, err)
		}
		if calls[i].Args, err = d.DecodeBytes(); err != nil {
			return nil, fmt.Errorf("batch call %d: arguments: %w", i, err)
		}
	}
	return calls, nil
}

// EncodeBatchReply encodes the outcomes of a batch: an array of
// [status, data] pairs.
func EncodeBatchReply(rs []BatchResult) ([]byte, error) {
	return encodePairs(len(rs), func(enc *msgpack.Encoder, i int) error {
		_ = enc.EncodeUint8(rs[i].Status)
		return enc.EncodeBytes(rs[i].Data)
	})
}

// DecodeBatchReply reads a batch reply; want is the number of calls sent.
func DecodeBatchReply(b []byte, want int) ([]BatchResult, error) {
	if err := Validate(b); err != nil {
		return nil, err
	}
	d := msgpack.GetDecoder()
	defer msgpack.PutDecoder(d)
	d.Reset(bytes.NewReader(b))
	n, err := d.DecodeArrayLen()
	if err != nil {
		return nil, err
	}
	if n != want {
		return nil, fmt.Errorf("batch reply has %d results for %d calls", n, want)
	}
	rs := make([]BatchResult, n)
	for i := range rs {
		if m, err := d.DecodeArrayLen(); err != nil || m != 2 {
			return nil, fmt.Errorf("batch result %d: want [status, data]", i)
		}
		if rs[i].Status, err = d.DecodeUint8(); err != nil || rs[i].Status > BatchSkipped {
			return nil, fmt.Errorf("batch result %d: bad status", i)
		}
		if rs[i].Data, err = d.DecodeBytes(); err != nil {
			return nil, fmt.Errorf("batch result %d: %w", i, err)
		}
	}
	return rs, nil
}
