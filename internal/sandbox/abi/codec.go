package abi

import (
	"encoding/binary"
	"errors"
)

// Writer appends values in the ABI's encoding. The zero Writer is ready.
type Writer struct{ B []byte }

// U64 appends an unsigned integer, 8 bytes little-endian.
func (w *Writer) U64(v uint64) { w.B = binary.LittleEndian.AppendUint64(w.B, v) }

// Bytes appends a u32 length and the bytes.
func (w *Writer) Bytes(b []byte) {
	w.B = binary.LittleEndian.AppendUint32(w.B, uint32(len(b)))
	w.B = append(w.B, b...)
}

// String appends a u32 length and the string's bytes.
func (w *Writer) String(s string) {
	w.B = binary.LittleEndian.AppendUint32(w.B, uint32(len(s)))
	w.B = append(w.B, s...)
}

// Bool appends one byte, 0 or 1.
func (w *Writer) Bool(v bool) {
	if v {
		w.B = append(w.B, 1)
	} else {
		w.B = append(w.B, 0)
	}
}

// ErrShort reports a buffer that ended before its values did.
var ErrShort = errors.New("abi: buffer too short")

// Reader reads values in the ABI's encoding. After the first failure every
// read returns zero values and Err reports ErrShort.
type Reader struct {
	b   []byte
	err error
}

// NewReader reads b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Err reports whether a read ran past the end.
func (r *Reader) Err() error { return r.err }

// Done reports an error unless every byte was read.
func (r *Reader) Done() error {
	if r.err == nil && len(r.b) != 0 {
		return errors.New("abi: trailing bytes")
	}
	return r.err
}

// U64 reads an unsigned integer.
func (r *Reader) U64() uint64 {
	if r.err != nil || len(r.b) < 8 {
		r.err = ErrShort
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

// Bytes reads a length-prefixed byte slice. It aliases the buffer.
func (r *Reader) Bytes() []byte {
	if r.err != nil || len(r.b) < 4 {
		r.err = ErrShort
		return nil
	}
	n := binary.LittleEndian.Uint32(r.b)
	if uint64(len(r.b)-4) < uint64(n) {
		r.err = ErrShort
		return nil
	}
	v := r.b[4 : 4+n]
	r.b = r.b[4+n:]
	return v
}

// String reads a length-prefixed string.
func (r *Reader) String() string { return string(r.Bytes()) }

// Bool reads one byte.
func (r *Reader) Bool() bool {
	if r.err != nil || len(r.b) < 1 {
		r.err = ErrShort
		return false
	}
	v := r.b[0] != 0
	r.b = r.b[1:]
	return v
}
