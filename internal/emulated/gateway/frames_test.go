package gateway

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// frame encodes a masked client frame header for a payload of n bytes,
// followed by the payload.
func frame(opcode byte, n int) []byte {
	b := []byte{0x80 | opcode}
	switch {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n < 1<<16:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, 1, 2, 3, 4) // mask key
	return append(b, make([]byte, n)...)
}

// standIn is the header frameWatch hands on in place of an oversize
// continuation frame's, for frame's mask key.
func standIn() []byte {
	b := []byte{0x80, 0x80 | 127}
	b = binary.BigEndian.AppendUint64(b, endless)
	return append(b, 1, 2, 3, 4)
}

// scanAll runs stream through a fresh frameWatch in chunks of the given
// size, as reads would deliver it.
func scanAll(stream []byte, chunk int) (out []byte, ok bool) {
	f := &frameWatch{max: 1000}
	for i := 0; i < len(stream); i += chunk {
		if out, ok = f.scan(out, stream[i:min(i+chunk, len(stream))]); !ok {
			return out, false
		}
	}
	return out, true
}

func TestFrameWatch_Scan(t *testing.T) {
	const limit = 1000
	ok1 := frame(1, 125)
	ok2 := frame(2, limit)
	ping := frame(9, 5)
	bigCont := frame(0, limit+1)
	tests := []struct {
		name   string
		stream [][]byte
		cutAt  int // offset of the oversize continuation; -1: none
	}{
		{"small frames", [][]byte{ok1, ping, ok2}, -1},
		{"16-bit lengths", [][]byte{frame(1, 300), frame(1, 999)}, -1},
		{"a first frame over the limit passes (coder/websocket's limit refuses it)", [][]byte{frame(1, 5000)}, -1},
		{"continuation over the limit", [][]byte{ok1, bigCont, ok1}, len(ok1)},
		{"64-bit length continuation", [][]byte{ok2, frame(0, 1<<16)}, len(ok2)},
	}
	for _, tt := range tests {
		var stream []byte
		for _, f := range tt.stream {
			stream = append(stream, f...)
		}
		want := stream
		if tt.cutAt >= 0 {
			want = append(stream[:tt.cutAt:tt.cutAt], standIn()...)
		}
		// Whole, and in small pieces: headers split across reads.
		for _, chunk := range []int{len(stream), 1, 7} {
			out, ok := scanAll(stream, chunk)
			if ok != (tt.cutAt < 0) {
				t.Errorf("%s, chunks of %d: ok = %v", tt.name, chunk, ok)
			}
			if !bytes.Equal(out, want) {
				t.Errorf("%s, chunks of %d: handed on %d bytes, want %d (equal prefix: %v)", tt.name, chunk, len(out), len(want), bytes.HasPrefix(want, out))
			}
		}
	}
}

// FuzzFrameWatch feeds arbitrary client bytes, whole and split in two:
// scanning must not panic, and must hand on the same bytes either way:
// the client's, up to a stand-in header if it refuses a frame.
func FuzzFrameWatch(f *testing.F) {
	f.Add(append(frame(1, 10), frame(0, 2000)...), 5)
	f.Add(frame(2, 70000), 3)
	f.Fuzz(func(t *testing.T, b []byte, split int) {
		whole, okw := scanAll(b, max(len(b), 1))
		if split <= 0 || split > len(b) {
			split = max(len(b)/2, 1)
		}
		parts, ok := scanAll(b, split)
		if ok != okw || !bytes.Equal(whole, parts) {
			t.Fatalf("split at %d: refused %v, %d bytes; whole: refused %v, %d bytes", split, !ok, len(parts), !okw, len(whole))
		}
		if okw && !bytes.HasPrefix(b, whole) {
			t.Fatalf("passed bytes that are not the client's")
		}
	})
}

func TestGlobMatch(t *testing.T) {
	const arn = "arn:aws:execute-api:us-east-1:000000000000:api/local/$connect"
	tests := []struct {
		pattern string
		want    bool
	}{
		{arn, true},
		{"*", true},
		{"arn:aws:execute-api:*:*:api/*", true},
		{"arn:aws:execute-api:us-east-?:*:api/local/$connect", true},
		{"arn:aws:execute-api:*:*:api/local/$disconnect", false},
		{"arn:aws:execute-api:*:*:other/*", false},
		{"arn:aws:execute-api:us-east-1:000000000000:api/local/$connect?", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := globMatch(tt.pattern, arn); got != tt.want {
			t.Errorf("globMatch(%q): got %v, want %v", tt.pattern, got, tt.want)
		}
	}
}
