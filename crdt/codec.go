package crdt

import (
	"encoding/binary"
	"errors"
	"unicode/utf8"
)

// encoder appends the primitives of the binary formats to buf.
type encoder struct {
	buf []byte
}

func (e *encoder) byte(b byte)        { e.buf = append(e.buf, b) }
func (e *encoder) uvarint(v uint64)   { e.buf = binary.AppendUvarint(e.buf, v) }
func (e *encoder) varint(v int64)     { e.buf = binary.AppendVarint(e.buf, v) }
func (e *encoder) replicaID(r uint64) { e.buf = binary.LittleEndian.AppendUint64(e.buf, r) }
func (e *encoder) bytes(b []byte)     { e.uvarint(uint64(len(b))); e.buf = append(e.buf, b...) }
func (e *encoder) string(s string)    { e.uvarint(uint64(len(s))); e.buf = append(e.buf, s...) }
func (e *encoder) runes(runes []rune) { e.buf = appendRunes(e.buf, runes) }
func (e *encoder) flag(b bool)        { e.byte(boolByte(b)) }

// utf8Runes writes runes as UTF-8 after their length in bytes, the
// layout of bytes, without building the UTF-8 apart first.
func (e *encoder) utf8Runes(runes []rune) {
	n := 0
	for _, r := range runes {
		// AppendRune writes an invalid rune as the 3-byte RuneError.
		if k := utf8.RuneLen(r); k > 0 {
			n += k
		} else {
			n += 3
		}
	}
	e.uvarint(uint64(n))
	e.buf = appendRunes(e.buf, runes)
}

func appendRunes(buf []byte, runes []rune) []byte {
	for _, r := range runes {
		buf = utf8.AppendRune(buf, r)
	}
	return buf
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// errTruncated and errMalformed describe why decoding stopped; decoders
// wrap them in ErrInvalidUpdate or ErrInvalidState.
var (
	errTruncated = errors.New("data ends early")
	errMalformed = errors.New("malformed value")
)

// decoder reads the primitives of the binary formats. The first error
// sticks: later reads return zero values, and err reports it once at the
// end, so decoding code can read a whole record before checking.
type decoder struct {
	buf []byte
	pos int
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *decoder) remaining() int { return len(d.buf) - d.pos }

func (d *decoder) byte() byte {
	if d.err != nil || d.pos >= len(d.buf) {
		d.fail(errTruncated)
		return 0
	}
	b := d.buf[d.pos]
	d.pos++
	return b
}

func (d *decoder) flag() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail(errMalformed)
	return false
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf[d.pos:])
	if n <= 0 {
		if n == 0 {
			d.fail(errTruncated)
		} else {
			d.fail(errMalformed)
		}
		return 0
	}
	d.pos += n
	return v
}

// varint reads a zigzag-encoded signed varint, the form binary.AppendVarint
// writes.
func (d *decoder) varint() int64 {
	ux := d.uvarint()
	v := int64(ux >> 1)
	if ux&1 != 0 {
		v = ^v
	}
	return v
}

// count reads a number of records that each take at least minBytes, and
// rejects counts that the remaining data cannot hold, so that corrupt
// input never makes a decoder allocate more than the input's size.
func (d *decoder) count(minBytes int) int {
	n := d.uvarint()
	if d.err == nil && n > uint64(d.remaining()/minBytes) {
		d.fail(errTruncated)
		return 0
	}
	return int(n)
}

func (d *decoder) replicaID() uint64 {
	if d.err != nil || d.remaining() < 8 {
		d.fail(errTruncated)
		return 0
	}
	v := binary.LittleEndian.Uint64(d.buf[d.pos:])
	d.pos += 8
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(d.remaining()) {
		d.fail(errTruncated)
		return nil
	}
	b := d.buf[d.pos : d.pos+int(n)]
	d.pos += int(n)
	return b
}

// runes reads UTF-8 text of exactly n code points from the rest of a
// length-prefixed byte string.
func decodeRunes(b []byte, n uint64) ([]rune, bool) {
	if !utf8.Valid(b) || uint64(utf8.RuneCount(b)) != n {
		return nil, false
	}
	return []rune(string(b)), true
}

// finish reports the first error, or an error if bytes are left over.
func (d *decoder) finish() error {
	if d.err == nil && d.pos != len(d.buf) {
		d.err = errors.New("unexpected bytes after the end")
	}
	return d.err
}
