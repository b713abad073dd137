package gateway

import (
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

func TestFrameWatch_Scan(t *testing.T) {
	const limit = 1000
	ok1 := frame(1, 125)
	ok2 := frame(2, limit)
	ping := frame(9, 5)
	bigCont := frame(0, limit+1)
	tests := []struct {
		name   string
		stream [][]byte
		wantAt int // offset where scanning stops; -1: never
	}{
		{"small frames", [][]byte{ok1, ping, ok2}, -1},
		{"16-bit lengths", [][]byte{frame(1, 300), frame(1, 999)}, -1},
		{"continuation over the limit", [][]byte{ok1, bigCont}, len(ok1)},
		{"64-bit length continuation", [][]byte{ok2, frame(0, 1<<16)}, len(ok2)},
	}
	for _, tt := range tests {
		var stream []byte
		for _, f := range tt.stream {
			stream = append(stream, f...)
		}
		// Whole, and a byte at a time: headers split across reads.
		for _, chunk := range []int{len(stream), 1, 7} {
			f := &frameWatch{max: limit}
			at := -1
			for i := 0; i < len(stream); i += chunk {
				part := stream[i:min(i+chunk, len(stream))]
				if k, ok := f.scan(part); !ok {
					at = i + k
					break
				}
			}
			want := tt.wantAt
			if chunk < len(stream) && want > 0 {
				// A header split across reads is refused at its last
				// read: its first bytes were already passed on.
				if at < want || at > want+14 {
					t.Errorf("%s, chunks of %d: stopped at %d, want within the header at %d", tt.name, chunk, at, want)
				}
				continue
			}
			if at != want {
				t.Errorf("%s, chunks of %d: stopped at %d, want %d", tt.name, chunk, at, want)
			}
		}
	}
}

// FuzzFrameWatch feeds arbitrary client bytes, whole and split in two:
// scanning must not panic, must refuse the same streams either way, and
// when split must stop within the refused frame's header.
func FuzzFrameWatch(f *testing.F) {
	f.Add(append(frame(1, 10), frame(0, 2000)...), 5)
	f.Add(frame(2, 70000), 3)
	f.Fuzz(func(t *testing.T, b []byte, split int) {
		whole := &frameWatch{max: 1000}
		kw, okw := whole.scan(b)
		if split < 0 || split > len(b) {
			split = len(b) / 2
		}
		parts := &frameWatch{max: 1000}
		stop, ok := parts.scan(b[:split])
		if ok {
			var k int
			k, ok = parts.scan(b[split:])
			stop = split + k
		}
		if ok != okw {
			t.Fatalf("split at %d: refused %v, whole: refused %v", split, !ok, !okw)
		}
		if !ok && (stop < kw || stop > kw+14) {
			t.Fatalf("split at %d: stopped at %d, whole at %d", split, stop, kw)
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
