package envelope

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"

	"interlude/internal/mpcheck"
)

// Header layout, all integers big-endian:
//
//	version 1 | kind 1 | doc 16 | epoch 4 | membership head 32 |
//	author 32 | seq 8 | prev 32 | seen count 2 |
//	seen count × (author 32 | seq 8 | hash 32)
const (
	headerFixedSize = 1 + 1 + 16 + 4 + HashSize + ed25519.PublicKeySize + 8 + HashSize + 2
	seenEntrySize   = ed25519.PublicKeySize + 8 + HashSize
	// MaxHeaderSize is the size of a header with MaxSeen entries.
	MaxHeaderSize = headerFixedSize + MaxSeen*seenEntrySize
)

// envelopeParts is the number of elements of the encoded array: header,
// nonce, commitment, ciphertext and signature.
const envelopeParts = 5

// validate checks the rules that every header must follow, for Seal,
// Verify and the decoder alike.
func (h *Header) validate() error {
	if h.Version != Version {
		return fmt.Errorf("%w: version %d, this build reads version %d: upgrade the client or relay", ErrMalformed, h.Version, Version)
	}
	if !h.Kind.valid() {
		return fmt.Errorf("%w: unknown kind %d", ErrMalformed, h.Kind)
	}
	if h.Seq == 0 {
		return fmt.Errorf("%w: sequence number 0: numbering starts at 1", ErrMalformed)
	}
	// The hash of a real envelope is never zero, so a zero Prev can only
	// mean "first envelope" and any other value only "not the first".
	if h.Seq == 1 && !h.Prev.IsZero() {
		return fmt.Errorf("%w: sequence number 1 names previous envelope %s, want the zero hash", ErrMalformed, h.Prev)
	}
	if h.Seq > 1 && h.Prev.IsZero() {
		return fmt.Errorf("%w: sequence number %d has no previous envelope hash", ErrMalformed, h.Seq)
	}
	if len(h.Seen) > MaxSeen {
		return fmt.Errorf("%w: %d seen entries, more than the limit of %d", ErrMalformed, len(h.Seen), MaxSeen)
	}
	for i, s := range h.Seen {
		if s.Author == h.Author {
			return fmt.Errorf("%w: seen entry %d names the author itself", ErrMalformed, i)
		}
		if s.Seq == 0 || s.Hash.IsZero() {
			return fmt.Errorf("%w: seen entry %d for author %x has sequence number %d and hash %s: omit authors nothing was received from", ErrMalformed, i, s.Author[:8], s.Seq, s.Hash)
		}
		if i > 0 && bytes.Compare(h.Seen[i-1].Author[:], s.Author[:]) >= 0 {
			return fmt.Errorf("%w: seen entries are not sorted by author without duplicates at entry %d", ErrMalformed, i)
		}
	}
	return nil
}

func (h *Header) encode() []byte {
	b := make([]byte, 0, headerFixedSize+len(h.Seen)*seenEntrySize)
	b = append(b, h.Version, byte(h.Kind))
	b = append(b, h.Doc[:]...)
	b = binary.BigEndian.AppendUint32(b, h.Epoch)
	b = append(b, h.MembershipHead[:]...)
	b = append(b, h.Author[:]...)
	b = binary.BigEndian.AppendUint64(b, h.Seq)
	b = append(b, h.Prev[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.Seen)))
	for _, s := range h.Seen {
		b = append(b, s.Author[:]...)
		b = binary.BigEndian.AppendUint64(b, s.Seq)
		b = append(b, s.Hash[:]...)
	}
	return b
}

func (h *Header) decode(b []byte) error {
	if len(b) < headerFixedSize {
		return fmt.Errorf("%w: header of %d bytes, shorter than the %d of its fixed part", ErrMalformed, len(b), headerFixedSize)
	}
	r := reader{b: b}
	h.Version = r.byte()
	h.Kind = Kind(r.byte())
	r.copy(h.Doc[:])
	h.Epoch = r.uint32()
	r.copy(h.MembershipHead[:])
	r.copy(h.Author[:])
	h.Seq = r.uint64()
	r.copy(h.Prev[:])
	n := int(r.uint16())
	if n > MaxSeen {
		return fmt.Errorf("%w: %d seen entries, more than the limit of %d", ErrMalformed, n, MaxSeen)
	}
	if want := headerFixedSize + n*seenEntrySize; len(b) != want {
		return fmt.Errorf("%w: header of %d bytes, want %d for %d seen entries", ErrMalformed, len(b), want, n)
	}
	if n > 0 {
		h.Seen = make([]Seen, n)
	}
	for i := range h.Seen {
		r.copy(h.Seen[i].Author[:])
		h.Seen[i].Seq = r.uint64()
		r.copy(h.Seen[i].Hash[:])
	}
	return h.validate()
}

// reader reads fixed-size fields from a slice whose length was checked
// beforehand.
type reader struct {
	b   []byte
	pos int
}

func (r *reader) byte() byte {
	r.pos++
	return r.b[r.pos-1]
}

func (r *reader) copy(dst []byte) {
	r.pos += copy(dst, r.b[r.pos:])
}

func (r *reader) uint16() uint16 {
	r.pos += 2
	return binary.BigEndian.Uint16(r.b[r.pos-2:])
}

func (r *reader) uint32() uint32 {
	r.pos += 4
	return binary.BigEndian.Uint32(r.b[r.pos-4:])
}

func (r *reader) uint64() uint64 {
	r.pos += 8
	return binary.BigEndian.Uint64(r.b[r.pos-8:])
}

// Marshal returns the canonical wire form: a msgpack array of header,
// nonce, commitment, ciphertext and signature, each as binary in its
// shortest msgpack form. It rejects an envelope that Unmarshal would
// reject.
func (e *Envelope) Marshal() ([]byte, error) {
	if err := e.Header.validate(); err != nil {
		return nil, err
	}
	if len(e.Ciphertext) > MaxCiphertext {
		return nil, fmt.Errorf("%w: ciphertext of %d bytes is larger than the limit of %d", ErrMalformed, len(e.Ciphertext), MaxCiphertext)
	}
	return e.encode(), nil
}

// encode writes the wire form without checking the rules, so Hash works
// on any envelope.
func (e *Envelope) encode() []byte {
	header := e.Header.encode()
	size := 1 + 5*envelopeParts + len(header) + len(e.Nonce) + len(e.Commitment) + len(e.Ciphertext) + len(e.Signature)
	b := make([]byte, 0, size)
	b = append(b, 0x90|envelopeParts) // fixarray
	for _, part := range [][]byte{header, e.Nonce[:], e.Commitment[:], e.Ciphertext, e.Signature[:]} {
		b = appendBin(b, part)
	}
	return b
}

// appendBin appends p as msgpack binary with the shortest length prefix.
func appendBin(b, p []byte) []byte {
	switch n := len(p); {
	case n <= 0xff:
		b = append(b, 0xc4, byte(n))
	case n <= 0xffff:
		b = append(b, 0xc5)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0xc6)
		b = binary.BigEndian.AppendUint32(b, uint32(n))
	}
	return append(b, p...)
}

// Unmarshal parses the canonical wire form and checks the header's rules.
// It does not verify the signature: call Verify or Open.
func Unmarshal(b []byte) (*Envelope, error) {
	// The structural check comes first because it bounds what the
	// msgpack decoder may allocate by the input's size.
	if err := mpcheck.Check(b, mpcheck.Limits{MaxDepth: 1, MaxElements: envelopeParts}); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var parts [][]byte
	if err := msgpack.Unmarshal(b, &parts); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(parts) != envelopeParts {
		return nil, fmt.Errorf("%w: %d parts, want %d", ErrMalformed, len(parts), envelopeParts)
	}
	e := &Envelope{}
	if err := e.Header.decode(parts[0]); err != nil {
		return nil, err
	}
	if len(parts[1]) != len(e.Nonce) {
		return nil, fmt.Errorf("%w: nonce of %d bytes, want %d", ErrMalformed, len(parts[1]), len(e.Nonce))
	}
	copy(e.Nonce[:], parts[1])
	if len(parts[2]) != len(e.Commitment) {
		return nil, fmt.Errorf("%w: key commitment of %d bytes, want %d", ErrMalformed, len(parts[2]), len(e.Commitment))
	}
	copy(e.Commitment[:], parts[2])
	if len(parts[3]) > MaxCiphertext {
		return nil, fmt.Errorf("%w: ciphertext of %d bytes is larger than the limit of %d", ErrMalformed, len(parts[3]), MaxCiphertext)
	}
	e.Ciphertext = parts[3]
	if len(parts[4]) != len(e.Signature) {
		return nil, fmt.Errorf("%w: signature of %d bytes, want %d", ErrMalformed, len(parts[4]), len(e.Signature))
	}
	copy(e.Signature[:], parts[4])

	// Only one byte string may carry a given envelope, because the
	// signature, the relay's stored copy and the hash chain all refer to
	// bytes.
	if !bytes.Equal(e.encode(), b) {
		return nil, fmt.Errorf("%w: not in canonical form", ErrMalformed)
	}
	return e, nil
}
