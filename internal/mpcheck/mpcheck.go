// Package mpcheck validates the structure of untrusted msgpack bytes
// before they are decoded.
//
// The msgpack decoder sizes a slice from the length a message declares, so
// five bytes that declare an array of four billion elements make it
// allocate far more memory than the machine has. Check walks the bytes
// without allocating and rejects any length that the remaining input
// cannot hold, so decoding afterwards allocates in proportion to the input.
package mpcheck

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrInvalid is returned for bytes that are not one well-formed msgpack
// value within the limits.
var ErrInvalid = errors.New("invalid msgpack")

// Limits bounds the structure Check accepts.
type Limits struct {
	// MaxDepth is the deepest nesting of arrays and maps.
	MaxDepth int
	// MaxElements is the sum of the lengths of all arrays and maps.
	MaxElements int
}

// Check reports whether b holds exactly one msgpack value within limits.
func Check(b []byte, limits Limits) error {
	c := checker{b: b, limits: limits}
	if err := c.value(0); err != nil {
		return err
	}
	if c.pos != len(b) {
		return fmt.Errorf("%w: %d bytes after the value", ErrInvalid, len(b)-c.pos)
	}
	return nil
}

type checker struct {
	b        []byte
	pos      int
	elements int
	limits   Limits
}

func (c *checker) skip(n uint64) error {
	if n > uint64(len(c.b)-c.pos) {
		return fmt.Errorf("%w: a length of %d at offset %d runs past the end", ErrInvalid, n, c.pos)
	}
	c.pos += int(n)
	return nil
}

// length reads a big-endian length of size bytes.
func (c *checker) length(size int) (uint64, error) {
	if size > len(c.b)-c.pos {
		return 0, fmt.Errorf("%w: truncated length at offset %d", ErrInvalid, c.pos)
	}
	var n uint64
	switch size {
	case 1:
		n = uint64(c.b[c.pos])
	case 2:
		n = uint64(binary.BigEndian.Uint16(c.b[c.pos:]))
	case 4:
		n = uint64(binary.BigEndian.Uint32(c.b[c.pos:]))
	}
	c.pos += size
	return n, nil
}

// container checks n elements (2n values for a map) at depth.
func (c *checker) container(n uint64, perElement uint64, depth int) error {
	if depth >= c.limits.MaxDepth {
		return fmt.Errorf("%w: nested deeper than %d", ErrInvalid, c.limits.MaxDepth)
	}
	// Every value takes at least one byte, so a declared count larger than
	// what is left cannot be genuine.
	if n*perElement > uint64(len(c.b)-c.pos) {
		return fmt.Errorf("%w: %d elements declared at offset %d, more than the input holds", ErrInvalid, n, c.pos)
	}
	c.elements += int(n)
	if c.elements > c.limits.MaxElements {
		return fmt.Errorf("%w: more than %d elements", ErrInvalid, c.limits.MaxElements)
	}
	for range n * perElement {
		if err := c.value(depth + 1); err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) value(depth int) error {
	if c.pos >= len(c.b) {
		return fmt.Errorf("%w: truncated at offset %d", ErrInvalid, c.pos)
	}
	t := c.b[c.pos]
	c.pos++
	switch {
	case t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3:
		return nil
	case t >= 0x80 && t <= 0x8f:
		return c.container(uint64(t&0x0f), 2, depth)
	case t >= 0x90 && t <= 0x9f:
		return c.container(uint64(t&0x0f), 1, depth)
	case t >= 0xa0 && t <= 0xbf:
		return c.skip(uint64(t & 0x1f))
	}
	switch t {
	case 0xc4, 0xd9: // bin8, str8
		return c.sized(1, 0)
	case 0xc5, 0xda: // bin16, str16
		return c.sized(2, 0)
	case 0xc6, 0xdb: // bin32, str32
		return c.sized(4, 0)
	case 0xc7: // ext8: length, type, data
		return c.sized(1, 1)
	case 0xc8:
		return c.sized(2, 1)
	case 0xc9:
		return c.sized(4, 1)
	case 0xcc, 0xd0:
		return c.skip(1)
	case 0xcd, 0xd1:
		return c.skip(2)
	case 0xca, 0xce, 0xd2:
		return c.skip(4)
	case 0xcb, 0xcf, 0xd3:
		return c.skip(8)
	case 0xd4:
		return c.skip(2)
	case 0xd5:
		return c.skip(3)
	case 0xd6:
		return c.skip(5)
	case 0xd7:
		return c.skip(9)
	case 0xd8:
		return c.skip(17)
	case 0xdc, 0xde:
		n, err := c.length(2)
		if err != nil {
			return err
		}
		return c.container(n, perElement(t), depth)
	case 0xdd, 0xdf:
		n, err := c.length(4)
		if err != nil {
			return err
		}
		return c.container(n, perElement(t), depth)
	}
	return fmt.Errorf("%w: byte 0x%02x at offset %d is not a msgpack type", ErrInvalid, t, c.pos-1)
}

// sized skips a value with a length of size bytes and extra header bytes.
func (c *checker) sized(size int, extra uint64) error {
	n, err := c.length(size)
	if err != nil {
		return err
	}
	return c.skip(n + extra)
}

func perElement(t byte) uint64 {
	if t == 0xde || t == 0xdf {
		return 2
	}
	return 1
}
