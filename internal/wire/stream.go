package wire

import (
	"bytes"
	"fmt"
	"reflect"

	"github.com/vmihailenco/msgpack/v5"
)

// StreamExt is the msgpack extension type of a stream chunk: a method
// result that is a stream travels as its first chunk, and the built-in
// daemon object's StreamNext returns the following ones. The data is a
// msgpack array [id, done, [items...]].
const StreamExt int8 = 'S'

// Chunk is a stream chunk being written by the daemon.
type Chunk struct {
	ID    string
	Done  bool
	n     int
	items bytes.Buffer
	enc   *msgpack.Encoder
}

// NewChunk returns an empty chunk of stream id.
func NewChunk(id string) *Chunk {
	c := &Chunk{ID: id}
	c.enc = msgpack.NewEncoder(&c.items)
	return c
}

// Add appends an item.
func (c *Chunk) Add(v any) error {
	e := &Encoder{enc: c.enc}
	if err := e.encodeValue(v); err != nil {
		return fmt.Errorf("wire: stream item %d (%T): %w", c.n, v, err)
	}
	c.n++
	return nil
}

// Len returns the number of items; Size their encoded bytes.
func (c *Chunk) Len() int  { return c.n }
func (c *Chunk) Size() int { return c.items.Len() }

// EncodeMsgpack implements msgpack.CustomEncoder.
func (c *Chunk) EncodeMsgpack(e *msgpack.Encoder) error {
	var head bytes.Buffer
	he := msgpack.NewEncoder(&head)
	_ = he.EncodeArrayLen(3)
	_ = he.EncodeString(c.ID)
	_ = he.EncodeBool(c.Done)
	_ = he.EncodeArrayLen(c.n)
	if err := e.EncodeExtHeader(StreamExt, head.Len()+c.items.Len()); err != nil {
		return err
	}
	w := e.Writer()
	if _, err := w.Write(head.Bytes()); err != nil {
		return err
	}
	_, err := w.Write(c.items.Bytes())
	return err
}

// ChunkReader reads a stream chunk received by a client.
type ChunkReader struct {
	ID   string
	Done bool
	N    int // items in this chunk
	dec  *msgpack.Decoder
}

// ReadChunk reads the next element of d, which must be a stream chunk.
func (d *Decoder) ReadChunk() (*ChunkReader, error) {
	return readChunk(d.dec)
}

func readChunk(d *msgpack.Decoder) (*ChunkReader, error) {
	id, n, err := d.DecodeExtHeader()
	if err != nil {
		return nil, fmt.Errorf("not a stream: %w", err)
	}
	if id != StreamExt {
		return nil, fmt.Errorf("not a stream (msgpack extension %d)", id)
	}
	data := make([]byte, n)
	if err := d.ReadFull(data); err != nil {
		return nil, err
	}
	if err := Validate(data); err != nil {
		return nil, err
	}
	cd := msgpack.NewDecoder(bytes.NewReader(data))
	c := &ChunkReader{dec: cd}
	if m, err := cd.DecodeArrayLen(); err != nil || m != 3 {
		return nil, fmt.Errorf("malformed stream chunk")
	}
	if c.ID, err = cd.DecodeString(); err != nil {
		return nil, err
	}
	if c.Done, err = cd.DecodeBool(); err != nil {
		return nil, err
	}
	if c.N, err = cd.DecodeArrayLen(); err != nil || c.N < 0 {
		return nil, fmt.Errorf("malformed stream chunk")
	}
	return c, nil
}

// Next decodes the next item into v with the range checks of
// [Decoder.Next].
func (c *ChunkReader) Next(index int, v reflect.Value) error {
	return decodeArg(c.dec, index, v)
}
