package envelope

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// Padme returns the length that PADMÉ pads a length of n bytes to.
//
// With E = ⌊log₂ n⌋ and S = ⌊log₂ E⌋ + 1, the result is n rounded up to a
// multiple of 2^(E−S): only the top S+1 bits of the padded length can be
// nonzero, so it reveals O(log log n) bits of n. The overhead is at most
// 12% (15 bytes at n = 129) and falls as n grows. Lengths up to 8 are not
// changed.
func Padme(n int) int {
	if n < 2 {
		return n
	}
	e := bits.Len(uint(n)) - 1 // ⌊log₂ n⌋
	s := bits.Len(uint(e))     // ⌊log₂ e⌋ + 1
	mask := 1<<(e-s) - 1
	return (n + mask) &^ mask
}

// pad returns plaintext behind a 4-byte length prefix, with zeros up to
// the PADMÉ length of the two together.
func pad(plaintext []byte) ([]byte, error) {
	n := lengthPrefixSize + len(plaintext)
	size := Padme(n)
	if size+poly1305Overhead > MaxCiphertext {
		return nil, fmt.Errorf("envelope: content of %d bytes pads to %d, larger than the ciphertext limit of %d allows: split it into smaller updates", len(plaintext), size, MaxCiphertext)
	}
	b := make([]byte, size)
	binary.BigEndian.PutUint32(b, uint32(len(plaintext)))
	copy(b[lengthPrefixSize:], plaintext)
	return b, nil
}

// unpad returns the content of a padded plaintext. It accepts only what
// pad writes: the padded length PADMÉ gives for the prefix, and zeros
// after the content.
func unpad(b []byte) ([]byte, error) {
	if len(b) < lengthPrefixSize {
		return nil, fmt.Errorf("%w: padded content of %d bytes has no length prefix", ErrDecrypt, len(b))
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-lengthPrefixSize) {
		return nil, fmt.Errorf("%w: length prefix %d is larger than the %d bytes that follow", ErrDecrypt, n, len(b)-lengthPrefixSize)
	}
	end := lengthPrefixSize + int(n)
	if want := Padme(end); len(b) != want {
		return nil, fmt.Errorf("%w: content of %d bytes padded to %d, want %d", ErrDecrypt, n, len(b), want)
	}
	for _, c := range b[end:] {
		if c != 0 {
			return nil, fmt.Errorf("%w: nonzero padding", ErrDecrypt)
		}
	}
	return b[lengthPrefixSize:end], nil
}

// poly1305Overhead is the size of the authentication tag XChaCha20-Poly1305
// appends.
const poly1305Overhead = 16
