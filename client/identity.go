package client

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/vmihailenco/msgpack/v5"
	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/nacl/box"
)

// Identity is a device's key pairs: Ed25519 to sign envelopes and to
// authenticate to a relay, X25519 to receive sealed document keys.
//
// Identity implements slog.LogValuer and fmt.Stringer with its public
// fingerprint only, so logging one by accident never writes a private key.
type Identity struct {
	signing ed25519.PrivateKey
	boxKey  [32]byte // X25519 private key
	public  PublicID
}

// PublicID is a device's pair of public keys, Ed25519 and X25519, which a
// person shares so others can add them to a document.
type PublicID struct {
	Sign ed25519.PublicKey
	Box  [32]byte
}

const publicIDPrefix = "il1"

// NewIdentity returns a fresh identity with random keys.
func NewIdentity() (*Identity, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(rand.Reader, seed); err != nil {
		return nil, fmt.Errorf("client: read random seed: %w", err)
	}
	var boxKey [32]byte
	if _, err := io.ReadFull(rand.Reader, boxKey[:]); err != nil {
		return nil, fmt.Errorf("client: read random box key: %w", err)
	}
	return newIdentity(seed, boxKey)
}

func newIdentity(seed []byte, boxKey [32]byte) (*Identity, error) {
	id := &Identity{signing: ed25519.NewKeyFromSeed(seed), boxKey: boxKey}
	id.public.Sign = id.signing.Public().(ed25519.PublicKey)
	pub, err := curve25519.X25519(boxKey[:], curve25519.Basepoint)
	if err != nil {
		return nil, fmt.Errorf("client: derive box public key: %w", err)
	}
	copy(id.public.Box[:], pub)
	return id, nil
}

// Public returns the identity's public keys.
func (id *Identity) Public() PublicID { return id.public }

// PublicID returns the text form of the public keys, for a person to share.
func (id *Identity) PublicID() string { return id.public.String() }

// String returns a short fingerprint of the public keys.
func (id *Identity) String() string { return "device " + id.public.Fingerprint() }

// LogValue keeps private keys out of logs.
func (id *Identity) LogValue() slog.Value { return slog.StringValue(id.public.Fingerprint()) }

type identityRecord struct {
	_msgpack struct{} `msgpack:",as_array"`
	Version  int
	Seed     []byte
	BoxKey   []byte
}

// MarshalBinary encodes the private keys. The result is secret.
func (id *Identity) MarshalBinary() ([]byte, error) {
	return msgpack.Marshal(&identityRecord{Version: 1, Seed: id.signing.Seed(), BoxKey: id.boxKey[:]})
}

// UnmarshalIdentity decodes what MarshalBinary returned.
func UnmarshalIdentity(b []byte) (*Identity, error) {
	var r identityRecord
	if err := msgpack.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("client: decode identity: %w", err)
	}
	if r.Version != 1 || len(r.Seed) != ed25519.SeedSize || len(r.BoxKey) != 32 {
		return nil, fmt.Errorf("client: invalid identity record (version %d): the profile may be damaged", r.Version)
	}
	var boxKey [32]byte
	copy(boxKey[:], r.BoxKey)
	return newIdentity(r.Seed, boxKey)
}

var identityKey = []byte("identity")

// LoadOrCreateIdentity returns the identity kept in s, creating and
// storing one on first use. The browser keeps its identity this way.
func LoadOrCreateIdentity(ctx context.Context, s Store) (*Identity, error) {
	b, err := s.Get(ctx, identityKey)
	if err == nil {
		return UnmarshalIdentity(b)
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("client: read identity: %w", err)
	}
	id, err := NewIdentity()
	if err != nil {
		return nil, err
	}
	b, err = id.MarshalBinary()
	if err != nil {
		return nil, err
	}
	var batch Batch
	batch.Put(identityKey, b)
	if err := s.Write(ctx, &batch); err != nil {
		return nil, fmt.Errorf("client: store identity: %w", err)
	}
	return id, nil
}

// IdentityFile is the name of the identity file in a profile folder.
const IdentityFile = "identity"

// CreateIdentityFile makes a new identity and writes it into the profile
// folder dir, readable by the owner only. It fails if one is already there,
// so an identity is never overwritten.
func CreateIdentityFile(dir string) (*Identity, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("client: create profile folder %s: %w", dir, err)
	}
	id, err := NewIdentity()
	if err != nil {
		return nil, err
	}
	b, err := id.MarshalBinary()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, IdentityFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("client: profile %s already has an identity: use it, or pick another --profile", dir)
		}
		return nil, fmt.Errorf("client: create %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return nil, fmt.Errorf("client: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("client: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("client: close %s: %w", path, err)
	}
	return id, nil
}

// ReadIdentityFile reads the identity of the profile folder dir.
func ReadIdentityFile(dir string) (*Identity, error) {
	path := filepath.Join(dir, IdentityFile)
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("client: no identity in profile %s: run 'interlude id new --profile %s' first", dir, dir)
		}
		return nil, fmt.Errorf("client: read %s: %w", path, err)
	}
	return UnmarshalIdentity(b)
}

// String returns the text form: "il1" and the unpadded base64url encoding
// of both public keys.
func (p PublicID) String() string {
	b := make([]byte, 0, 64)
	b = append(b, p.Sign...)
	b = append(b, p.Box[:]...)
	return publicIDPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// Fingerprint returns a short hash of the public keys that two people can
// compare to check they have the right public id.
func (p PublicID) Fingerprint() string {
	h := sha256.New()
	h.Write(p.Sign)
	h.Write(p.Box[:])
	sum := h.Sum(nil)
	return fmt.Sprintf("%X-%X-%X", sum[0:2], sum[2:4], sum[4:6])
}

// ParsePublicID parses the text form returned by PublicID.String.
func ParsePublicID(s string) (PublicID, error) {
	var p PublicID
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, publicIDPrefix)
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if !ok || err != nil || len(b) != 64 {
		return p, fmt.Errorf("client: invalid public id %q: want %q followed by 86 base64url characters, as shown by 'interlude id show'", s, publicIDPrefix)
	}
	p.Sign = ed25519.PublicKey(b[:32])
	copy(p.Box[:], b[32:])
	return p, nil
}

// sealKey seals a document key to a device's box key, so only that device
// can open it.
func sealKey(key *[32]byte, to *[32]byte) ([]byte, error) {
	sealed, err := box.SealAnonymous(nil, key[:], to, rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("client: seal document key: %w", err)
	}
	return sealed, nil
}

// openKey opens a document key sealed to this identity.
func (id *Identity) openKey(sealed []byte) (*[32]byte, error) {
	pub := id.public.Box
	plain, ok := box.OpenAnonymous(nil, sealed, &pub, &id.boxKey)
	if !ok || len(plain) != 32 {
		return nil, errors.New("client: sealed document key does not open with this device's key")
	}
	var key [32]byte
	copy(key[:], plain)
	return &key, nil
}
