// Package envelope seals one CRDT update for a zero-knowledge relay.
//
// An envelope is a fixed header, a random nonce, the update encrypted with
// XChaCha20-Poly1305 under a key derived from the document key, and an
// Ed25519 signature by the author's device over all of it. The relay can
// check who wrote an envelope and that nobody changed it, but it has no
// document key, so it cannot read the update.
//
// Encoding is canonical: Unmarshal rejects any byte string that Marshal
// would not produce, so the signed bytes and the stored bytes are one and
// the same.
package envelope

import (
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/vmihailenco/msgpack/v5"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"

	"interlude/internal/mpcheck"
)

// Version is the envelope format version written into every header.
const Version = 1

// Kind says what an envelope carries.
type Kind uint8

const (
	// KindUpdate carries one encoded CRDT update.
	KindUpdate Kind = 1
)

// MaxCiphertext is the largest ciphertext an envelope may carry (4 MiB).
// Clients split larger batches of edits into several updates.
const MaxCiphertext = 4 << 20

// KeySize is the size of a document key in bytes.
const KeySize = 32

// HeaderSize is the size of an encoded Header in bytes.
const HeaderSize = 1 + 1 + 16 + ed25519.PublicKeySize + 8

// DocID is the opaque, random identifier of a document.
type DocID [16]byte

// String returns the id in hex, the form used in logs and on the command line.
func (id DocID) String() string { return hex.EncodeToString(id[:]) }

// NewDocID returns a random document id.
func NewDocID() (DocID, error) {
	var id DocID
	if _, err := io.ReadFull(rand.Reader, id[:]); err != nil {
		return id, fmt.Errorf("envelope: read random document id: %w", err)
	}
	return id, nil
}

// ParseDocID parses the hex form that DocID.String returns.
func ParseDocID(s string) (DocID, error) {
	var id DocID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("envelope: invalid document id %q: want %d hex digits", s, 2*len(id))
	}
	copy(id[:], b)
	return id, nil
}

// Header is the part of an envelope that the relay reads.
type Header struct {
	Version uint8
	Kind    Kind
	Doc     DocID
	// Author is the Ed25519 public key of the device that wrote the update.
	Author [ed25519.PublicKeySize]byte
	// Seq numbers the author's envelopes for this document, from 1 without
	// gaps, so the relay can refuse a reordered or replayed push.
	Seq uint64
}

// Envelope is one sealed update.
type Envelope struct {
	Header
	Nonce      [chacha20poly1305.NonceSizeX]byte
	Ciphertext []byte
	Signature  [ed25519.SignatureSize]byte
}

// Errors returned by Unmarshal, Verify and Open.
var (
	// ErrMalformed is returned for bytes that are not a canonical envelope.
	ErrMalformed = errors.New("envelope: malformed")
	// ErrSignature is returned when the signature does not verify under the
	// header's author key.
	ErrSignature = errors.New("envelope: signature does not verify")
	// ErrDecrypt is returned when the ciphertext does not decrypt under the
	// document key: a wrong key or changed bytes.
	ErrDecrypt = errors.New("envelope: decryption failed: wrong document key or altered ciphertext")
)

const (
	signatureDomain = "interlude/envelope/v1 signature\x00"
	keyInfo         = "interlude/envelope/v1 update key"
)

// Seal encrypts plaintext under docKey and signs the result with the
// author's key. h.Author is set from signer, and h.Version from Version.
func Seal(h Header, docKey *[KeySize]byte, signer ed25519.PrivateKey, plaintext []byte) (*Envelope, error) {
	if len(signer) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("envelope: invalid signing key length %d, want %d", len(signer), ed25519.PrivateKeySize)
	}
	if h.Seq == 0 {
		return nil, fmt.Errorf("envelope: sequence number 0 is invalid: numbering starts at 1")
	}
	h.Version = Version
	copy(h.Author[:], signer.Public().(ed25519.PublicKey))
	aead, err := updateCipher(docKey)
	if err != nil {
		return nil, err
	}
	if len(plaintext)+aead.Overhead() > MaxCiphertext {
		return nil, fmt.Errorf("envelope: update of %d bytes is larger than the limit of %d: split it into smaller updates", len(plaintext), MaxCiphertext-aead.Overhead())
	}

	e := &Envelope{Header: h}
	if _, err := io.ReadFull(rand.Reader, e.Nonce[:]); err != nil {
		return nil, fmt.Errorf("envelope: read random nonce: %w", err)
	}
	header := h.encode()
	e.Ciphertext = aead.Seal(nil, e.Nonce[:], plaintext, header)
	copy(e.Signature[:], ed25519.Sign(signer, e.signedHash(header)))
	return e, nil
}

// Verify checks the signature against the header's author key. It needs no
// document key, which is what lets the relay run it.
func (e *Envelope) Verify() error {
	if e.Version != Version {
		return fmt.Errorf("%w: version %d, this build reads version %d", ErrMalformed, e.Version, Version)
	}
	if !ed25519.Verify(e.Author[:], e.signedHash(e.Header.encode()), e.Signature[:]) {
		return fmt.Errorf("%w (author %x, document %s, seq %d)", ErrSignature, e.Author[:8], e.Doc, e.Seq)
	}
	return nil
}

// Open verifies the signature and returns the decrypted update.
func (e *Envelope) Open(docKey *[KeySize]byte) ([]byte, error) {
	if err := e.Verify(); err != nil {
		return nil, err
	}
	aead, err := updateCipher(docKey)
	if err != nil {
		return nil, err
	}
	plaintext, err := aead.Open(nil, e.Nonce[:], e.Ciphertext, e.Header.encode())
	if err != nil {
		return nil, fmt.Errorf("%w (document %s, seq %d)", ErrDecrypt, e.Doc, e.Seq)
	}
	return plaintext, nil
}

// Marshal returns the canonical wire form: a msgpack array of header,
// nonce, ciphertext and signature, each as binary.
func (e *Envelope) Marshal() ([]byte, error) {
	header := e.Header.encode()
	b, err := msgpack.Marshal([]any{header, e.Nonce[:], e.Ciphertext, e.Signature[:]})
	if err != nil {
		return nil, fmt.Errorf("envelope: encode: %w", err)
	}
	return b, nil
}

// Unmarshal parses the canonical wire form. It does not verify the
// signature: call Verify or Open.
func Unmarshal(b []byte) (*Envelope, error) {
	if err := mpcheck.Check(b, mpcheck.Limits{MaxDepth: 1, MaxElements: 4}); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var parts [][]byte
	if err := msgpack.Unmarshal(b, &parts); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(parts) != 4 {
		return nil, fmt.Errorf("%w: %d parts, want 4", ErrMalformed, len(parts))
	}
	e := &Envelope{}
	if err := e.Header.decode(parts[0]); err != nil {
		return nil, err
	}
	if len(parts[1]) != len(e.Nonce) {
		return nil, fmt.Errorf("%w: nonce of %d bytes, want %d", ErrMalformed, len(parts[1]), len(e.Nonce))
	}
	copy(e.Nonce[:], parts[1])
	if len(parts[2]) > MaxCiphertext {
		return nil, fmt.Errorf("%w: ciphertext of %d bytes is larger than the limit of %d", ErrMalformed, len(parts[2]), MaxCiphertext)
	}
	e.Ciphertext = parts[2]
	if len(parts[3]) != len(e.Signature) {
		return nil, fmt.Errorf("%w: signature of %d bytes, want %d", ErrMalformed, len(parts[3]), len(e.Signature))
	}
	copy(e.Signature[:], parts[3])

	// Only one byte string may carry a given envelope, because the relay
	// stores and forwards what it received and clients compare by bytes.
	again, err := e.Marshal()
	if err != nil {
		return nil, err
	}
	if string(again) != string(b) {
		return nil, fmt.Errorf("%w: not in canonical form", ErrMalformed)
	}
	return e, nil
}

func (h *Header) encode() []byte {
	b := make([]byte, 0, HeaderSize)
	b = append(b, h.Version, byte(h.Kind))
	b = append(b, h.Doc[:]...)
	b = append(b, h.Author[:]...)
	return binary.BigEndian.AppendUint64(b, h.Seq)
}

func (h *Header) decode(b []byte) error {
	if len(b) != HeaderSize {
		return fmt.Errorf("%w: header of %d bytes, want %d", ErrMalformed, len(b), HeaderSize)
	}
	h.Version, h.Kind = b[0], Kind(b[1])
	if h.Version != Version {
		return fmt.Errorf("%w: version %d, this build reads version %d: upgrade the client or relay", ErrMalformed, h.Version, Version)
	}
	if h.Kind != KindUpdate {
		return fmt.Errorf("%w: unknown kind %d", ErrMalformed, h.Kind)
	}
	copy(h.Doc[:], b[2:18])
	copy(h.Author[:], b[18:50])
	h.Seq = binary.BigEndian.Uint64(b[50:])
	if h.Seq == 0 {
		return fmt.Errorf("%w: sequence number 0", ErrMalformed)
	}
	return nil
}

// signedHash binds the signature to this format by a domain prefix, so a
// signature made for another purpose with the same key never verifies here.
func (e *Envelope) signedHash(header []byte) []byte {
	h := sha256.New()
	h.Write([]byte(signatureDomain))
	h.Write(header)
	h.Write(e.Nonce[:])
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(e.Ciphertext)))
	h.Write(n[:])
	h.Write(e.Ciphertext)
	return h.Sum(nil)
}

// updateCipher derives the update key from the document key, so the
// document key itself never encrypts anything and can later seed other
// keys under other labels.
func updateCipher(docKey *[KeySize]byte) (cipher.AEAD, error) {
	if docKey == nil {
		return nil, errors.New("envelope: missing document key")
	}
	var key [chacha20poly1305.KeySize]byte
	if _, err := io.ReadFull(hkdf.New(sha256.New, docKey[:], nil, []byte(keyInfo)), key[:]); err != nil {
		return nil, fmt.Errorf("envelope: derive update key: %w", err)
	}
	aead, err := chacha20poly1305.NewX(key[:])
	if err != nil {
		return nil, fmt.Errorf("envelope: create cipher: %w", err)
	}
	return aead, nil
}
