// Package membership is the signed membership log of one document: who
// belongs to it, with which role, and which key epoch seals its
// envelopes.
//
// # Entries
//
// Each entry is signed with Ed25519 by an admin member and names the hash
// of the entry before it, so the log is a hash chain from the entry that
// created the document. An entry carries one operation (create, add,
// remove or change role) and the member it is about, with that member's
// signing key, box key and role. It also carries the key epoch after the
// operation, and the epoch's document key sealed with box.SealAnonymous
// to each member who needs it. Those are the creator on create, the new
// member on add and every remaining member on remove. A relay holds no document key but can check
// all of this: the signature, the author's role, the chain and who
// received a sealed key.
//
// # Key rotation
//
// Removing a member starts a new key epoch with a fresh random document
// key. The entry carries the previous epoch's key encrypted with
// XChaCha20-Poly1305 under a key derived by HKDF-SHA256 from the new
// epoch key, so whoever holds the newest key can walk back to every older
// one and read the whole history. The removed member holds only the keys
// it had before.
//
// # Countersignatures and forks
//
// The relay orders the log and countersigns each accepted entry over the
// document, the index and the entry hash with its own Ed25519 key. Two
// countersigned entries with one index and different hashes prove that
// the relay showed members different logs (see ForkProof). Members can
// also compare the comparison code of their heads (HeadCode) by phone or
// in person.
//
// # Encoding
//
// Entries use a fixed binary layout with big-endian integers. Decode
// rejects any byte string that Encode would not produce, so the signed
// bytes, the stored bytes and the hashed bytes are the same.
package membership

import (
	"bytes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"
	"golang.org/x/crypto/nacl/box"
)

// Version is the entry format version written into every entry.
const Version = 1

// Sizes in bytes.
const (
	KeySize       = 32
	HashSize      = sha256.Size
	DocSize       = 16
	sealedKeySize = KeySize + box.AnonymousOverhead
	priorSize     = chacha20poly1305.NonceSizeX + KeySize + chacha20poly1305.Overhead
)

// MaxMembers bounds the members of one document, so an entry that seals
// the key to every member stays far below a wire frame.
const MaxMembers = 1024

// Role is what a member may do.
type Role uint8

// Roles. The values are part of the format.
const (
	// RoleAdmin may write and change the membership.
	RoleAdmin Role = 1
	// RoleWriter may write updates.
	RoleWriter Role = 2
	// RoleReader may read only.
	RoleReader Role = 3
)

func (r Role) valid() bool { return r >= RoleAdmin && r <= RoleReader }

// CanWrite reports whether the role may push envelopes.
func (r Role) CanWrite() bool { return r == RoleAdmin || r == RoleWriter }

// String returns the role's name, as used in logs and on the command line.
func (r Role) String() string {
	switch r {
	case RoleAdmin:
		return "admin"
	case RoleWriter:
		return "writer"
	case RoleReader:
		return "reader"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// Op is the operation of an entry.
type Op uint8

// Operations. The values are part of the format.
const (
	OpCreate     Op = 1
	OpAdd        Op = 2
	OpRemove     Op = 3
	OpChangeRole Op = 4
	// OpAddDevice adds another device of the author's person, with the
	// author's role. Any member may add its own person's devices, so a
	// client who is a writer can read and write from a second device.
	OpAddDevice Op = 5
	// OpRemoveDevice removes a device of the author's person, such as a
	// lost phone, and starts a new key epoch as OpRemove does.
	OpRemoveDevice Op = 6
)

func (o Op) valid() bool { return o >= OpCreate && o <= OpRemoveDevice }

// Rotates reports whether the operation starts a new key epoch: it
// removes a member, and the entry carries the prior epoch's key.
func (o Op) Rotates() bool { return o == OpRemove || o == OpRemoveDevice }

// String returns the operation's name.
func (o Op) String() string {
	switch o {
	case OpCreate:
		return "create"
	case OpAdd:
		return "add"
	case OpRemove:
		return "remove"
	case OpChangeRole:
		return "change_role"
	case OpAddDevice:
		return "add_device"
	case OpRemoveDevice:
		return "remove_device"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Hash is the SHA-256 hash of an entry's encoding.
type Hash [HashSize]byte

// IsZero reports whether h is the zero hash, the Prev of the first entry.
func (h Hash) IsZero() bool { return h == Hash{} }

// String returns the first 8 bytes in hex.
func (h Hash) String() string { return fmt.Sprintf("%x", h[:8]) }

// Member is one member of a document.
type Member struct {
	// Sign is the Ed25519 key the member signs envelopes and entries with.
	Sign [ed25519.PublicKeySize]byte
	// Box is the X25519 key document keys are sealed to.
	Box  [32]byte
	Role Role
}

// SealedKey is the epoch's document key sealed to one member.
type SealedKey struct {
	Member [ed25519.PublicKeySize]byte
	Sealed [sealedKeySize]byte
}

// Entry is one change to a document's members.
type Entry struct {
	Op    Op
	Doc   [DocSize]byte
	Index uint64
	// Prev is the hash of entry Index-1, zero for the first entry.
	Prev Hash
	// Epoch is the key epoch after this entry. It starts at 1 and grows
	// by one with each removal.
	Epoch  uint32
	Author [ed25519.PublicKeySize]byte
	// Subject is the member the entry creates, adds, removes or changes.
	// For a removal its role is the role it had.
	Subject Member
	// Keys holds the epoch's document key sealed to each member who needs
	// it, sorted by member key.
	Keys []SealedKey
	// Prior, set on removal only, is the previous epoch's key encrypted
	// under a key derived from this epoch's key.
	Prior     []byte
	Signature [ed25519.SignatureSize]byte
}

// Errors returned by Decode, Verify and State.Apply.
var (
	// ErrMalformed is returned for bytes that are not a canonical entry.
	ErrMalformed = errors.New("membership: malformed entry")
	// ErrSignature is returned when an entry's signature does not verify.
	ErrSignature = errors.New("membership: entry signature does not verify")
	// ErrNotAllowed is returned for an entry whose author may not make it.
	ErrNotAllowed = errors.New("membership: author may not make this change")
	// ErrChain is returned for an entry that does not follow the head.
	ErrChain = errors.New("membership: entry does not follow the log's head")
	// ErrInvalid is returned for an entry that breaks a rule of its
	// operation, such as sealing the key to the wrong members.
	ErrInvalid = errors.New("membership: invalid entry")
)

const (
	signatureDomain   = "interlude/membership/v1 entry\x00"
	countersignDomain = "interlude/membership/v1 countersignature\x00"
	priorKeyInfo      = "interlude/membership/v1 prior epoch key\x00"
	codeDomain        = "interlude/membership/v1 head code\x00"
)

// fixedSize is the size of the parts of an entry before the keys.
const fixedSize = 1 + 1 + DocSize + 8 + HashSize + 4 + 32 + 32 + 32 + 1

// body returns the encoding of everything but the signature.
func (e *Entry) body() []byte {
	b := make([]byte, 0, fixedSize+2+len(e.Keys)*(32+sealedKeySize)+1+len(e.Prior)+ed25519.SignatureSize)
	b = append(b, Version, byte(e.Op))
	b = append(b, e.Doc[:]...)
	b = binary.BigEndian.AppendUint64(b, e.Index)
	b = append(b, e.Prev[:]...)
	b = binary.BigEndian.AppendUint32(b, e.Epoch)
	b = append(b, e.Author[:]...)
	b = append(b, e.Subject.Sign[:]...)
	b = append(b, e.Subject.Box[:]...)
	b = append(b, byte(e.Subject.Role))
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.Keys)))
	for _, k := range e.Keys {
		b = append(b, k.Member[:]...)
		b = append(b, k.Sealed[:]...)
	}
	if len(e.Prior) > 0 {
		b = append(b, 1)
		b = append(b, e.Prior...)
	} else {
		b = append(b, 0)
	}
	return b
}

// Encode returns the entry's canonical bytes, signature included.
func (e *Entry) Encode() []byte {
	return append(e.body(), e.Signature[:]...)
}

// Hash returns the SHA-256 hash of the entry's encoding.
func (e *Entry) Hash() Hash { return sha256.Sum256(e.Encode()) }

// Decode parses an entry and checks that it is in canonical form. It does
// not verify the signature or any rule of the log: see Verify and
// State.Apply.
func Decode(b []byte) (*Entry, error) {
	if len(b) < fixedSize+2+1+ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the smallest entry", ErrMalformed, len(b))
	}
	if b[0] != Version {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrMalformed, b[0], Version)
	}
	e := &Entry{Op: Op(b[1])}
	p := b[2:]
	p = p[copy(e.Doc[:], p):]
	e.Index = binary.BigEndian.Uint64(p)
	p = p[8:]
	p = p[copy(e.Prev[:], p):]
	e.Epoch = binary.BigEndian.Uint32(p)
	p = p[4:]
	p = p[copy(e.Author[:], p):]
	p = p[copy(e.Subject.Sign[:], p):]
	p = p[copy(e.Subject.Box[:], p):]
	e.Subject.Role = Role(p[0])
	p = p[1:]
	n := int(binary.BigEndian.Uint16(p))
	p = p[2:]
	if n > MaxMembers || len(p) < n*(32+sealedKeySize)+1+ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: %d sealed keys do not fit in %d bytes (at most %d)", ErrMalformed, n, len(p), MaxMembers)
	}
	if n > 0 {
		e.Keys = make([]SealedKey, n)
	}
	for i := range e.Keys {
		p = p[copy(e.Keys[i].Member[:], p):]
		p = p[copy(e.Keys[i].Sealed[:], p):]
	}
	switch p[0] {
	case 0:
		p = p[1:]
	case 1:
		p = p[1:]
		if len(p) < priorSize {
			return nil, fmt.Errorf("%w: prior key of %d bytes, want %d", ErrMalformed, len(p), priorSize)
		}
		e.Prior = bytes.Clone(p[:priorSize])
		p = p[priorSize:]
	default:
		return nil, fmt.Errorf("%w: prior key flag %d, want 0 or 1", ErrMalformed, p[0])
	}
	if len(p) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: %d bytes after the body, want a signature of %d", ErrMalformed, len(p), ed25519.SignatureSize)
	}
	copy(e.Signature[:], p)
	if err := e.checkForm(); err != nil {
		return nil, err
	}
	return e, nil
}

// checkForm checks the rules that need no log: known operation and role,
// sorted keys without duplicates, and a prior key exactly on removal.
func (e *Entry) checkForm() error {
	if !e.Op.valid() {
		return fmt.Errorf("%w: unknown operation %d", ErrMalformed, e.Op)
	}
	if !e.Subject.Role.valid() {
		return fmt.Errorf("%w: unknown role %d", ErrMalformed, e.Subject.Role)
	}
	if e.Epoch == 0 {
		return fmt.Errorf("%w: key epoch 0: epochs start at 1", ErrMalformed)
	}
	for i := 1; i < len(e.Keys); i++ {
		if bytes.Compare(e.Keys[i-1].Member[:], e.Keys[i].Member[:]) >= 0 {
			return fmt.Errorf("%w: sealed keys not sorted by member key, or a member listed twice", ErrMalformed)
		}
	}
	if e.Op.Rotates() != (len(e.Prior) > 0) {
		return fmt.Errorf("%w: a prior epoch key belongs on removals, and only there (operation %s)", ErrMalformed, e.Op)
	}
	return nil
}

// Sign sets Author to signer's public key and signs the entry.
func (e *Entry) Sign(signer ed25519.PrivateKey) {
	copy(e.Author[:], signer.Public().(ed25519.PublicKey))
	copy(e.Signature[:], ed25519.Sign(signer, e.signed()))
}

func (e *Entry) signed() []byte {
	return append([]byte(signatureDomain), e.body()...)
}

// Verify checks the entry's form and its signature by Author.
func (e *Entry) Verify() error {
	if err := e.checkForm(); err != nil {
		return err
	}
	if !ed25519.Verify(e.Author[:], e.signed(), e.Signature[:]) {
		return fmt.Errorf("%w (document %x, index %d, author %x)", ErrSignature, e.Doc[:], e.Index, e.Author[:8])
	}
	return nil
}

// OpenKey returns the epoch key sealed to the member with box key pair
// (pub, priv), or false if the entry seals none to it.
func (e *Entry) OpenKey(sign [32]byte, pub, priv *[32]byte) (*[KeySize]byte, bool) {
	for _, k := range e.Keys {
		if k.Member != sign {
			continue
		}
		plain, ok := box.OpenAnonymous(nil, k.Sealed[:], pub, priv)
		if !ok || len(plain) != KeySize {
			return nil, false
		}
		return (*[KeySize]byte)(plain), true
	}
	return nil, false
}

// OpenPrior returns the key of epoch e.Epoch-1, decrypted with the key of
// epoch e.Epoch.
func (e *Entry) OpenPrior(epochKey *[KeySize]byte) (*[KeySize]byte, error) {
	if len(e.Prior) != priorSize {
		return nil, fmt.Errorf("membership: entry %d carries no prior epoch key", e.Index)
	}
	aead, err := priorCipher(epochKey)
	if err != nil {
		return nil, err
	}
	nonce, ct := e.Prior[:chacha20poly1305.NonceSizeX], e.Prior[chacha20poly1305.NonceSizeX:]
	plain, err := aead.Open(nil, nonce, ct, e.priorAD())
	if err != nil {
		return nil, fmt.Errorf("membership: prior key of entry %d (epoch %d) does not open with this epoch's key", e.Index, e.Epoch)
	}
	return (*[KeySize]byte)(plain), nil
}

// priorAD binds the prior key to its document and epoch, so it cannot be
// moved into another entry.
func (e *Entry) priorAD() []byte {
	ad := append([]byte(priorKeyInfo), e.Doc[:]...)
	return binary.BigEndian.AppendUint32(ad, e.Epoch)
}

func priorCipher(epochKey *[KeySize]byte) (cipher.AEAD, error) {
	var k [chacha20poly1305.KeySize]byte
	if _, err := io.ReadFull(hkdf.New(sha256.New, epochKey[:], nil, []byte(priorKeyInfo)), k[:]); err != nil {
		return nil, fmt.Errorf("membership: derive prior key cipher: %w", err)
	}
	return chacha20poly1305.NewX(k[:])
}

func sealTo(key *[KeySize]byte, m Member) (SealedKey, error) {
	sk := SealedKey{Member: m.Sign}
	sealed, err := box.SealAnonymous(nil, key[:], &m.Box, rand.Reader)
	if err != nil {
		return sk, fmt.Errorf("membership: seal epoch key: %w", err)
	}
	copy(sk.Sealed[:], sealed)
	return sk, nil
}

// NewKey returns a fresh random document key.
func NewKey() (*[KeySize]byte, error) {
	k := new([KeySize]byte)
	if _, err := io.ReadFull(rand.Reader, k[:]); err != nil {
		return nil, fmt.Errorf("membership: read random document key: %w", err)
	}
	return k, nil
}

// CountersignMessage returns the bytes a relay signs to countersign the
// entry with hash h at index of document doc.
func CountersignMessage(doc [DocSize]byte, index uint64, h Hash) []byte {
	b := append([]byte(countersignDomain), doc[:]...)
	b = binary.BigEndian.AppendUint64(b, index)
	return append(b, h[:]...)
}

// Countersign returns the relay's countersignature.
func Countersign(relay ed25519.PrivateKey, doc [DocSize]byte, index uint64, h Hash) [ed25519.SignatureSize]byte {
	return [ed25519.SignatureSize]byte(ed25519.Sign(relay, CountersignMessage(doc, index, h)))
}

// VerifyCountersign checks a relay's countersignature.
func VerifyCountersign(relay ed25519.PublicKey, doc [DocSize]byte, index uint64, h Hash, sig []byte) bool {
	return len(relay) == ed25519.PublicKeySize && ed25519.Verify(relay, CountersignMessage(doc, index, h), sig)
}

// ForkProof is two entries at one index of one document, each
// countersigned by the same relay: the relay showed members two logs.
type ForkProof struct {
	Doc            [DocSize]byte
	Index          uint64
	A, B           Hash
	SigA, SigB     []byte
	RelayPublicKey ed25519.PublicKey
}

// Verify checks that the proof is one: two different hashes, both
// countersigned by the relay at the same index.
func (p *ForkProof) Verify() error {
	if p.A == p.B {
		return errors.New("membership: fork proof names one entry twice")
	}
	if !VerifyCountersign(p.RelayPublicKey, p.Doc, p.Index, p.A, p.SigA) || !VerifyCountersign(p.RelayPublicKey, p.Doc, p.Index, p.B, p.SigB) {
		return errors.New("membership: fork proof countersignatures do not verify under the relay key")
	}
	return nil
}

// HeadCode returns a short code of a log head that two members compare by
// phone or in person: equal codes mean they see the same log up to index.
func HeadCode(doc [DocSize]byte, index uint64, head Hash) string {
	h := sha256.New()
	h.Write([]byte(codeDomain))
	h.Write(doc[:])
	h.Write(binary.BigEndian.AppendUint64(nil, index))
	h.Write(head[:])
	sum := h.Sum(nil)
	// 30 bits in 3 groups of 3 digits: enough that a forking relay cannot
	// make two heads match by trying entries, because each try needs an
	// admin's signature.
	n := binary.BigEndian.Uint32(sum) % 1_000_000_000
	return fmt.Sprintf("%03d %03d %03d", n/1_000_000, n/1000%1000, n%1000)
}
