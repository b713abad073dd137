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
// the stream, holding each header back until it is complete, and on a
// data frame over the limit:
//
//   - that starts a message (text or binary opcode): lowers the read
//     limit to the frame limit before coder/websocket sees the header, so
//     that it rejects the message itself with a proper 1009 close frame;
//   - that continues one: hands coder/websocket, in place of the frame,
//     a header declaring an endless payload and then zeros (the client's
//     payload is never read), so that coder/websocket's message limit
//     trips and it closes with 1009 just the same. After those zeros
//     the read fails (errFrameTooBig).

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
	in    []byte // the client's bytes, as read
	out   []byte // watched bytes not yet handed on
	zeros int    // stand-in payload bytes still to hand on
	err   error  // errFrameTooBig, once out and zeros are done
}

func (c *frameConn) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		if c.zeros > 0 {
			n := min(len(p), c.zeros)
			clear(p[:n])
			c.zeros -= n
			return n, nil
		}
		if c.err != nil {
			return 0, c.err
		}
		if c.in == nil {
			c.in = make([]byte, 16<<10)
		}
		n, err := c.r.Read(c.in)
		var ok bool
		c.out, ok = c.watch.scan(c.out[:0], c.in[:n])
		if !ok {
			c.zeros, c.err = c.watch.msgMax+1, errFrameTooBig
			continue
		}
		if len(c.out) == 0 && err != nil {
			return 0, err
		}
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

// endless is the payload length declared in place of an oversize
// continuation frame's: more than any message limit.
const endless = 1 << 62

// frameWatch follows the frame headers of a client's byte stream (RFC
// 6455 section 5.2). It is used by the one goroutine reading the
// connection.
type frameWatch struct {
	max    int             // the frame limit
	msgMax int             // the message limit coder/websocket enforces
	ws     *websocket.Conn // set after Accept, before the first read

	hdr  [14]byte // the header being read
	hn   int      // bytes of it so far
	skip uint64   // payload bytes left in the current frame
}

// scan appends to dst the bytes of b that may pass on, and reports
// false at a continuation frame over the limit: dst then ends with the
// stand-in header, and the rest of b is dropped.
func (f *frameWatch) scan(dst, b []byte) ([]byte, bool) {
	for i := 0; i < len(b); {
		if f.skip > 0 {
			k := int(min(uint64(len(b)-i), f.skip))
			dst = append(dst, b[i:i+k]...)
			f.skip -= uint64(k)
			i += k
			continue
		}
		f.hdr[f.hn] = b[i]
		f.hn++
		i++
		if f.hn < 2 || f.hn < headerLen(f.hdr[1]) {
			continue
		}
		h := f.hdr[:f.hn]
		f.hn = 0
		f.skip = payloadLen(h)
		opcode := h[0] & 0x0f
		switch {
		case opcode >= 8 || f.skip <= uint64(f.max): // control frames are at most 125 bytes
		case opcode != 0:
			if f.ws != nil {
				f.ws.SetReadLimit(int64(f.max))
			}
		default:
			dst = append(dst, h[0], h[1]&0x80|127)
			dst = binary.BigEndian.AppendUint64(dst, endless)
			if h[1]&0x80 != 0 {
				dst = append(dst, h[len(h)-4:]...) // the masking key
			}
			return dst, false
		}
		dst = append(dst, h...)
	}
	return dst, true
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
