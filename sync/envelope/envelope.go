// Package envelope seals one CRDT update, snapshot or membership change
// for a zero-knowledge relay.
//
// # Format
//
// An envelope is a header, a random 24-byte nonce, a key commitment, the
// padded content encrypted with XChaCha20-Poly1305 and an Ed25519
// signature by the author's device over all of it. The relay reads the
// header and checks the signature, but it holds no document key, so it
// cannot read the content.
//
// The header names the document, the key epoch whose document key sealed
// the content, the membership head the author saw, the author's key, the
// author's sequence number for this document and the hash of the author's
// previous envelope there. Together, sequence numbers and previous hashes
// form one hash chain per author and document: a relay cannot drop,
// reorder or replay an author's envelopes without a reader noticing. The
// header also lists the newest sequence number, and that envelope's hash,
// that the author had received from each other author. A reader who holds
// less than another member has seen learns that the relay withheld
// updates, and one who holds a different envelope learns that the relay
// showed the two members different histories.
//
// # Keys
//
// The content key is derived with HKDF-SHA256 from the document key of
// the key epoch, with the nonce as salt and a label naming the purpose and
// the kind as info. A second value from the same HKDF under another label
// is the key commitment, stored in the envelope and compared in constant
// time before decryption. One ciphertext therefore opens under one
// document key only, even though Poly1305 alone does not guarantee that.
//
// # Padding
//
// The content is padded with PADMÉ (Nikitin et al., "Reducing Metadata
// Leakage from Encrypted Files and Communication with PURBs", PETS 2019)
// before encryption, so the ciphertext length reveals at most
// O(log log L) bits of the content length L. A 4-byte length prefix inside
// the ciphertext recovers the real length.
//
// # Encoding
//
// Encoding is canonical: Unmarshal rejects any byte string that Marshal
// would not produce, so the signed bytes, the stored bytes and the bytes
// that Hash covers are one and the same.
package envelope

import (
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"
)

// Version is the envelope format version written into every header.
//
// Version 2 added the key epoch, the membership head, the previous
// envelope's hash, the list of other authors' sequence numbers, the key
// commitment and PADMÉ padding. Version 1 envelopes are rejected.
const Version = 2

// Kind is the type of content an envelope carries.
type Kind uint8

// Kinds of envelopes. The values are part of the format.
const (
	// KindUpdate carries one encoded CRDT update.
	KindUpdate Kind = 1
	// KindSnapshot carries a saved CRDT state that replaces the updates
	// before it.
	KindSnapshot Kind = 2
	// KindMembership carries a change to the document's members.
	KindMembership Kind = 3
	// KindEphemeral carries state that is not stored, such as a cursor
	// position. Relays do not store it.
	KindEphemeral Kind = 4
)

// String returns the kind's name, as used in logs and errors.
func (k Kind) String() string {
	switch k {
	case KindUpdate:
		return "update"
	case KindSnapshot:
		return "snapshot"
	case KindMembership:
		return "membership"
	case KindEphemeral:
		return "ephemeral"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

func (k Kind) valid() bool { return k >= KindUpdate && k <= KindEphemeral }

// Sizes in bytes.
const (
	// KeySize is the size of a document key.
	KeySize = 32
	// HashSize is the size of an envelope hash and of a membership head.
	HashSize = sha256.Size
	// CommitmentSize is the size of the key commitment.
	CommitmentSize = 32
	// NonceSize is the size of the random nonce.
	NonceSize = chacha20poly1305.NonceSizeX
)

// MaxCiphertext is the largest ciphertext an envelope may carry (4 MiB).
// Clients split larger batches of edits into several updates.
const MaxCiphertext = 4 << 20

// MaxSeen is the largest number of entries in Header.Seen. An author in a
// document with more other authors lists those it heard from most
// recently.
const MaxSeen = 256

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

// Hash is the SHA-256 hash of an envelope's canonical bytes.
type Hash [HashSize]byte

// IsZero reports whether h is the zero hash, which stands for "no
// envelope".
func (h Hash) IsZero() bool { return h == Hash{} }

// String returns the first 8 bytes in hex, enough to tell hashes apart in
// logs.
func (h Hash) String() string { return hex.EncodeToString(h[:8]) }

// Seen is one entry of an author's view of another author: the newest
// sequence number it had received from Author, and that envelope's hash.
type Seen struct {
	Author [ed25519.PublicKeySize]byte
	Seq    uint64
	Hash   Hash
}

// Header is the part of an envelope that the relay reads.
type Header struct {
	// Version is set by Seal.
	Version uint8
	Kind    Kind
	Doc     DocID
	// Epoch numbers the document key that sealed the content. Keys
	// rotate when a member leaves, so later envelopes use a new epoch.
	Epoch uint32
	// MembershipHead is the hash of the newest membership change the
	// author had seen, or zero while a document has no signed membership
	// log.
	MembershipHead Hash
	// Author is the Ed25519 public key of the device that wrote the
	// envelope. Seal sets it from the signing key.
	Author [ed25519.PublicKeySize]byte
	// Seq numbers the author's envelopes for this document, from 1
	// without gaps.
	Seq uint64
	// Prev is the hash of the author's envelope Seq-1 in this document,
	// and zero when Seq is 1.
	Prev Hash
	// Seen lists, for each other author the author had received
	// envelopes from, the newest one. Entries are sorted by Author, with
	// no duplicates, no entry for the author itself, and at most MaxSeen
	// entries.
	Seen []Seen
}

// Envelope is one sealed update, snapshot or membership change.
type Envelope struct {
	Header
	Nonce      [NonceSize]byte
	Commitment [CommitmentSize]byte
	Ciphertext []byte
	Signature  [ed25519.SignatureSize]byte
}

// Errors returned by Seal, Unmarshal, Verify and Open.
var (
	// ErrMalformed is returned for bytes that are not a canonical
	// envelope, and for a header that breaks the format's rules.
	ErrMalformed = errors.New("envelope: malformed")
	// ErrSignature is returned when the signature does not verify under
	// the header's author key.
	ErrSignature = errors.New("envelope: signature does not verify")
	// ErrCommitment is returned when the key commitment does not match
	// the document key: the envelope was sealed under another key.
	ErrCommitment = errors.New("envelope: key commitment does not match the document key")
	// ErrDecrypt is returned when the ciphertext does not decrypt although
	// the key commitment matched, or when the decrypted padding is
	// invalid. A signed envelope gets there only if its author sealed it
	// wrongly.
	ErrDecrypt = errors.New("envelope: decryption failed")
)

// Domain labels. Each binds a value to this format and its purpose, so a
// signature or key made for something else never matches here.
const (
	signatureDomain  = "interlude/envelope/v2 signature\x00"
	contentKeyInfo   = "interlude/envelope/v2 content key\x00"
	commitmentInfo   = "interlude/envelope/v2 key commitment\x00"
	lengthPrefixSize = 4
)

// Seal pads and encrypts plaintext under epochKey, the document key of
// key epoch h.Epoch, and signs the result with signer. Seal sets
// h.Version to Version and h.Author to signer's public key, and rejects a
// header that breaks the rules documented on Header.
func Seal(h Header, epochKey *[KeySize]byte, signer ed25519.PrivateKey, plaintext []byte) (*Envelope, error) {
	if len(signer) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("envelope: invalid signing key length %d, want %d", len(signer), ed25519.PrivateKeySize)
	}
	if epochKey == nil {
		return nil, errors.New("envelope: missing document key")
	}
	h.Version = Version
	copy(h.Author[:], signer.Public().(ed25519.PublicKey))
	if err := h.validate(); err != nil {
		return nil, err
	}
	padded, err := pad(plaintext)
	if err != nil {
		return nil, err
	}

	e := &Envelope{Header: h}
	if _, err := io.ReadFull(rand.Reader, e.Nonce[:]); err != nil {
		return nil, fmt.Errorf("envelope: read random nonce: %w", err)
	}
	aead, commitment, err := deriveKeys(epochKey, &e.Nonce, h.Kind)
	if err != nil {
		return nil, err
	}
	e.Commitment = commitment
	header := h.encode()
	e.Ciphertext = aead.Seal(nil, e.Nonce[:], padded, header)
	copy(e.Signature[:], ed25519.Sign(signer, e.signedHash(header)))
	return e, nil
}

// Verify checks the header's rules and the signature against the
// header's author key. It needs no document key, which is what lets the
// relay run it.
func (e *Envelope) Verify() error {
	if err := e.Header.validate(); err != nil {
		return err
	}
	if !ed25519.Verify(e.Author[:], e.signedHash(e.Header.encode()), e.Signature[:]) {
		return fmt.Errorf("%w (author %x, document %s, seq %d)", ErrSignature, e.Author[:8], e.Doc, e.Seq)
	}
	return nil
}

// Open verifies the signature, checks the key commitment against
// epochKey, the document key of key epoch e.Epoch, and returns the
// decrypted content without its padding.
func (e *Envelope) Open(epochKey *[KeySize]byte) ([]byte, error) {
	if err := e.Verify(); err != nil {
		return nil, err
	}
	if epochKey == nil {
		return nil, errors.New("envelope: missing document key")
	}
	aead, commitment, err := deriveKeys(epochKey, &e.Nonce, e.Kind)
	if err != nil {
		return nil, err
	}
	// Constant time, so the comparison does not reveal how much of a
	// guessed commitment was right.
	if subtle.ConstantTimeCompare(commitment[:], e.Commitment[:]) != 1 {
		return nil, fmt.Errorf("%w (document %s, epoch %d, seq %d)", ErrCommitment, e.Doc, e.Epoch, e.Seq)
	}
	padded, err := aead.Open(nil, e.Nonce[:], e.Ciphertext, e.Header.encode())
	if err != nil {
		return nil, fmt.Errorf("%w: ciphertext does not authenticate (document %s, seq %d)", ErrDecrypt, e.Doc, e.Seq)
	}
	plaintext, err := unpad(padded)
	if err != nil {
		return nil, fmt.Errorf("%w (document %s, seq %d)", err, e.Doc, e.Seq)
	}
	return plaintext, nil
}

// Hash returns the SHA-256 hash of the envelope's encoding. For an
// envelope that Marshal accepts, that is the hash of Marshal's bytes, the
// value the next envelope of the same author names as Prev.
func (e *Envelope) Hash() Hash {
	return sha256.Sum256(e.encode())
}

// signedHash binds the signature to this format by a domain prefix and
// covers every byte of the envelope but the signature. Lengths precede
// the two variable-length parts, so no two envelopes hash alike by moving
// bytes from one part to the other.
func (e *Envelope) signedHash(header []byte) []byte {
	h := sha256.New()
	h.Write([]byte(signatureDomain))
	var n [8]byte
	binary.BigEndian.PutUint32(n[:4], uint32(len(header)))
	h.Write(n[:4])
	h.Write(header)
	h.Write(e.Nonce[:])
	h.Write(e.Commitment[:])
	binary.BigEndian.PutUint64(n[:], uint64(len(e.Ciphertext)))
	h.Write(n[:])
	h.Write(e.Ciphertext)
	return h.Sum(nil)
}

// deriveKeys derives the content cipher and the key commitment from the
// document key. The nonce as salt makes each envelope's content key
// unique, and the kind in the info keeps an update's key from ever
// opening a snapshot. The document key itself never encrypts anything,
// so it can seed other keys under other labels.
func deriveKeys(epochKey *[KeySize]byte, nonce *[NonceSize]byte, kind Kind) (aead cipher.AEAD, commitment [CommitmentSize]byte, err error) {
	prk := hkdf.Extract(sha256.New, epochKey[:], nonce[:])
	var key [chacha20poly1305.KeySize]byte
	if _, err := io.ReadFull(hkdf.Expand(sha256.New, prk, append([]byte(contentKeyInfo), byte(kind))), key[:]); err != nil {
		return nil, commitment, fmt.Errorf("envelope: derive content key: %w", err)
	}
	if _, err := io.ReadFull(hkdf.Expand(sha256.New, prk, append([]byte(commitmentInfo), byte(kind))), commitment[:]); err != nil {
		return nil, commitment, fmt.Errorf("envelope: derive key commitment: %w", err)
	}
	c, err := chacha20poly1305.NewX(key[:])
	if err != nil {
		return nil, commitment, fmt.Errorf("envelope: create cipher: %w", err)
	}
	return c, commitment, nil
}
