package gateway

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/http"

	"github.com/coder/websocket"
)

// API Gateway closes a connection with 1009 when a client sends a frame
// over 32 KB, even inside a message under 128 KB. coder/websocket reads
// whole messages and never shows frames, so the Gateway watches the
// client's bytes on their way in: frameWatch parses the frame headers in
// the stream as they pass and, on a data frame over the limit:
//
//   - that starts a message (text or binary opcode): lowers the read
//     limit to the frame limit before coder/websocket sees the header, so
//     that it rejects the message itself with a proper 1009 close frame;
//   - that continues one: fails the read (errFrameTooBig); the client
//     sees the connection drop (1006) rather than a 1009 frame, and
//     $disconnect still says 1009.
//
// Browsers send each message as one frame, so the first case is the one
// that matters: a 40 KB message that works here fails here as on AWS.

// watchedWriter is the handshake's ResponseWriter, whose Hijack puts a
// frameWatch between the client and coder/websocket.
type watchedWriter struct {
	http.ResponseWriter
	watch *frameWatch
}

func (w *watchedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *watchedWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// Bytes the server read ahead are the client's first frames: they
	// pass through the watch too.
	buffered, _ := brw.Reader.Peek(brw.Reader.Buffered())
	fc := &frameConn{Conn: nc, r: io.MultiReader(bytes.NewReader(bytes.Clone(buffered)), nc), watch: w.watch}
	brw.Reader.Reset(fc)
	return fc, brw, nil
}

// frameConn is the hijacked connection, read through a frameWatch.
type frameConn struct {
	net.Conn
	r     io.Reader
	watch *frameWatch
	err   error // errFrameTooBig, returned once the bytes before it are
}

func (c *frameConn) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	if k, ok := c.watch.scan(p[:n]); !ok {
		c.err = errFrameTooBig
		if k == 0 {
			return 0, c.err
		}
		return k, nil
	}
	return n, err
}

// frameWatch follows the frame headers of a client's byte stream (RFC
// 6455 section 5.2). It is used by the one goroutine reading the
// connection.
type frameWatch struct {
	max int
	ws  *websocket.Conn // set after Accept, before the first read

	hdr  [14]byte // the header being read
	hn   int      // bytes of it so far
	skip uint64   // payload bytes left in the current frame
}

// scan follows b. It returns len(b), true; or, for a continuation frame
// over the limit, the offset of its header and false.
func (f *frameWatch) scan(b []byte) (int, bool) {
	for i := 0; i < len(b); {
		if f.skip > 0 {
			k := uint64(len(b) - i)
			k = min(k, f.skip)
			f.skip -= k
			i += int(k)
			continue
		}
		start := i - f.hn // where this header began, if in b
		f.hdr[f.hn] = b[i]
		f.hn++
		i++
		if f.hn < 2 || f.hn < headerLen(f.hdr[1]) {
			continue
		}
		f.hn = 0
		f.skip = payloadLen(f.hdr[:])
		opcode := f.hdr[0] & 0x0f
		if opcode >= 8 || f.skip <= uint64(f.max) {
			continue // control frames are at most 125 bytes
		}
		if opcode != 0 && f.ws != nil {
			f.ws.SetReadLimit(int64(f.max))
			continue
		}
		return max(start, 0), false
	}
	return len(b), true
}

// headerLen is the length of a frame header whose second byte is b1.
func headerLen(b1 byte) int {
	n := 2
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 { // masked
		n += 4
	}
	return n
}

// payloadLen is the payload length of a complete frame header.
func payloadLen(h []byte) uint64 {
	switch l := h[1] & 0x7f; l {
	case 126:
		return uint64(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		return binary.BigEndian.Uint64(h[2:10])
	default:
		return uint64(l)
	}
}
