package rpcxserver

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/gopyro/gopyro/internal/wire"
)

// specExample returns the bytes of the n-th code block of docs/wire.md's
// example section: each line's leading hex pairs.
func specExample(t *testing.T, n int) []byte {
	t.Helper()
	doc, err := os.ReadFile("../../docs/wire.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sect, ok := strings.Cut(string(doc), "## 8. An example")
	if !ok {
		t.Fatal("docs/wire.md has no example section")
	}
	blocks := strings.Split(sect, "```")
	if len(blocks) < 2*n+2 {
		t.Fatalf("docs/wire.md's example has fewer than %d blocks", n+1)
	}
	pair := regexp.MustCompile(`^[0-9a-f]{2}$`)
	var out []byte
	for line := range strings.SplitSeq(blocks[2*n+1], "\n") {
		for _, f := range strings.Fields(line) {
			if !pair.MatchString(f) {
				break
			}
			b, _ := hex.DecodeString(f)
			out = append(out, b...)
		}
	}
	return out
}

// adder serves calc.Add for the spec's example.
type adder struct{ t *testing.T }

func (a adder) ServeRequest(req *wire.Request, w wire.ReplyWriter) {
	if req.Object != "calc" || req.Method != "Add" || !bytes.Equal(req.Payload, []byte{0x92, 0x02, 0x03}) {
		a.t.Errorf("the spec's request arrived as %+v", req)
	}
	_ = w.Reply([]byte{0x91, 0x05})
}

// TestSpecExample sends docs/wire.md's example request to a real server
// and checks that the reply is the document's reply, byte for byte.
func TestSpecExample(t *testing.T) {
	request, reply := specExample(t, 0), specExample(t, 1)
	s := New(adder{t}, Limits{MaxFrame: 1 << 20})
	defer s.Close()
	server, client := net.Pipe()
	defer client.Close()
	if err := s.ServeConn(server, nil, nil); err != nil {
		t.Fatal(err)
	}
	go client.Write(request)
	got := make([]byte, len(reply))
	if _, err := io.ReadFull(bufio.NewReader(client), got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, reply) {
		t.Fatalf("reply\n got %x\nwant %x (docs/wire.md)", got, reply)
	}
}
