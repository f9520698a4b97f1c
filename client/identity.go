package client

import (
	"bytes"
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
	"runtime"
	"strings"

	"github.com/vmihailenco/msgpack/v5"
	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/nacl/box"

	"interlude/client/keyring"
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
	// recovery is set for the identity a recovery phrase derives, whose
	// document keys derive from a root that the linking device keeps
	// (see recovery.go).
	recovery bool
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
	return msgpack.Marshal(&identityRecord{Version: identityVersionPlain, Seed: id.signing.Seed(), BoxKey: id.boxKey[:]})
}

// UnmarshalIdentity decodes what MarshalBinary returned.
func UnmarshalIdentity(b []byte) (*Identity, error) {
	var r identityRecord
	if err := msgpack.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("client: decode identity: %w", err)
	}
	if r.Version != identityVersionPlain || len(r.Seed) != ed25519.SeedSize || len(r.BoxKey) != 32 {
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

// Versions of the identity file. Version 1 is the record that
// MarshalBinary returns, with the private keys in the clear. Version 2 is
// a sealedIdentityRecord whose Sealed field is a version-1 record sealed
// under a passphrase.
const (
	identityVersionPlain     = 1
	identityVersionEncrypted = 2
)

// sealedIdentityRecord is the version-2 identity file. It keeps three
// fields, as the version-1 record does, so a build that reads only version
// 1 decodes it and reports the unknown version instead of a decoding error.
type sealedIdentityRecord struct {
	_msgpack struct{} `msgpack:",as_array"`
	Version  int
	// Method names what unlocks Sealed. identityMethodPassphrase is the
	// only method.
	Method string
	// Sealed is the output of keyring.SealWithPassphrase, with
	// identityFileAD as associated data.
	Sealed []byte
}

const identityMethodPassphrase = "passphrase"

// identityFileAD binds a sealed identity to its use. It is a fixed label
// rather than the file's path, so a profile folder can be moved or copied.
var identityFileAD = []byte("interlude/client/v1 identity file")

// ErrIdentityEncrypted is returned by ReadIdentityFile for an identity
// file that is encrypted under a passphrase. Read it with
// ReadIdentityFileWithPassphrase.
var ErrIdentityEncrypted = errors.New("client: the identity file is encrypted with a passphrase")

// CreateIdentityFile makes a new identity and writes it into the profile
// folder dir, readable by the owner only. It fails if one is already there,
// so an identity is never overwritten. The private keys are stored in the
// clear: use CreateIdentityFileWithPassphrase to encrypt them.
func CreateIdentityFile(dir string) (*Identity, error) {
	return createIdentityFile(dir, func(id *Identity) ([]byte, error) { return id.MarshalBinary() })
}

// CreateIdentityFileWithPassphrase is CreateIdentityFile with the private
// keys sealed under pass, with Argon2id at keyring.NewArgon2Params.
func CreateIdentityFileWithPassphrase(dir string, pass keyring.Passphrase) (*Identity, error) {
	return createIdentityFile(dir, func(id *Identity) ([]byte, error) { return sealIdentity(id, pass) })
}

func createIdentityFile(dir string, encode func(*Identity) ([]byte, error)) (*Identity, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("client: create profile folder %s: %w", dir, err)
	}
	id, err := NewIdentity()
	if err != nil {
		return nil, err
	}
	b, err := encode(id)
	if err != nil {
		return nil, err
	}
	defer clear(b)
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

// ReadIdentityFile reads the identity of the profile folder dir. For an
// identity file encrypted under a passphrase it returns an error wrapping
// ErrIdentityEncrypted.
func ReadIdentityFile(dir string) (*Identity, error) {
	path, b, err := readIdentityFile(dir)
	if err != nil {
		return nil, err
	}
	defer clear(b)
	version, err := identityFileVersion(b)
	if err != nil {
		return nil, fmt.Errorf("client: read %s: %w", path, err)
	}
	if version == identityVersionEncrypted {
		return nil, fmt.Errorf("%w: %s needs its passphrase", ErrIdentityEncrypted, path)
	}
	return UnmarshalIdentity(b)
}

// ReadIdentityFileWithPassphrase reads the identity of the profile folder
// dir, opening it with pass if the file is encrypted. A wrong passphrase
// returns an error wrapping keyring.ErrWrongPassphrase. The file is never
// written: encrypted reports whether it is encrypted, so that a caller
// that finds it in the clear can call EncryptIdentityFile once it has
// confirmed pass, for example by unlocking the profile's store with it.
func ReadIdentityFileWithPassphrase(dir string, pass keyring.Passphrase) (id *Identity, encrypted bool, err error) {
	path, b, err := readIdentityFile(dir)
	if err != nil {
		return nil, false, err
	}
	defer clear(b)
	version, err := identityFileVersion(b)
	if err != nil {
		return nil, false, fmt.Errorf("client: read %s: %w", path, err)
	}
	if version != identityVersionEncrypted {
		id, err := UnmarshalIdentity(b)
		return id, false, err
	}
	id, err = openSealedIdentity(b, pass)
	if err != nil {
		return nil, true, fmt.Errorf("client: open %s: %w", path, err)
	}
	return id, true, nil
}

// EncryptIdentityFile seals the private keys of the identity file in the
// profile folder dir under pass. A file that is already encrypted is left
// as it is, without checking that pass opens it.
//
// The sealed file is written to a temporary file in dir, synced, and
// renamed over the identity file, so a crash leaves either the old file or
// the new one, never a mix.
//
// NOTE: the rename does not erase the blocks that held the plain file. A
// copy of the private keys can stay on the disk, or in a backup or
// snapshot taken earlier, until the filesystem reuses those blocks.
func EncryptIdentityFile(dir string, pass keyring.Passphrase) error {
	path, b, err := readIdentityFile(dir)
	if err != nil {
		return err
	}
	defer clear(b)
	version, err := identityFileVersion(b)
	if err != nil {
		return fmt.Errorf("client: read %s: %w", path, err)
	}
	if version == identityVersionEncrypted {
		return nil
	}
	id, err := UnmarshalIdentity(b)
	if err != nil {
		return err
	}
	sealed, err := sealIdentity(id, pass)
	if err != nil {
		return err
	}
	return replaceFile(path, sealed)
}

func readIdentityFile(dir string) (path string, b []byte, err error) {
	path = filepath.Join(dir, IdentityFile)
	b, err = os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return path, nil, fmt.Errorf("client: no identity in profile %s: run 'interlude id new --profile %s' first", dir, dir)
		}
		return path, nil, fmt.Errorf("client: read %s: %w", path, err)
	}
	return path, b, nil
}

// identityFileVersion returns the version of an identity file, which is the
// first element of both record layouts, and rejects versions it does not
// know.
func identityFileVersion(b []byte) (int, error) {
	d := msgpack.NewDecoder(bytes.NewReader(b))
	n, err := d.DecodeArrayLen()
	if err != nil || n < 1 {
		return 0, fmt.Errorf("invalid identity file: it is not a versioned record, so the profile may be damaged")
	}
	version, err := d.DecodeInt()
	if err != nil {
		return 0, fmt.Errorf("invalid identity file: its version is not a number, so the profile may be damaged")
	}
	if version != identityVersionPlain && version != identityVersionEncrypted {
		return 0, fmt.Errorf("identity file version %d is unknown to this build, which reads versions %d and %d: update interlude", version, identityVersionPlain, identityVersionEncrypted)
	}
	return version, nil
}

// sealIdentity returns the version-2 identity file of id.
func sealIdentity(id *Identity, pass keyring.Passphrase) ([]byte, error) {
	params, err := keyring.NewArgon2Params()
	if err != nil {
		return nil, err
	}
	plain, err := id.MarshalBinary()
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	sealed, err := keyring.SealWithPassphrase(pass, params, plain, identityFileAD)
	if err != nil {
		return nil, fmt.Errorf("client: encrypt identity: %w", err)
	}
	return msgpack.Marshal(&sealedIdentityRecord{Version: identityVersionEncrypted, Method: identityMethodPassphrase, Sealed: sealed})
}

// openSealedIdentity decodes a version-2 identity file and opens it with
// pass.
func openSealedIdentity(b []byte, pass keyring.Passphrase) (*Identity, error) {
	var r sealedIdentityRecord
	if err := msgpack.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode encrypted identity: %w", err)
	}
	if r.Method != identityMethodPassphrase {
		return nil, fmt.Errorf("identity is encrypted with %q, which this build cannot open: only %q is known", r.Method, identityMethodPassphrase)
	}
	plain, err := keyring.OpenWithPassphrase(pass, r.Sealed, identityFileAD)
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	return UnmarshalIdentity(plain)
}

// replaceFile writes b to a new file in path's folder, readable by the
// owner only, syncs it and renames it over path. It then syncs the folder,
// so that the rename itself survives a crash.
func replaceFile(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*.tmp")
	if err != nil {
		return fmt.Errorf("client: create temporary file in %s: %w", dir, err)
	}
	tmp := f.Name() // os.CreateTemp makes it readable by the owner only
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("client: replace %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("client: sync folder %s after replacing %s: %w", dir, filepath.Base(path), err)
	}
	return nil
}

// syncDir flushes a folder's entries to disk.
//
// NOTE: on Windows it does nothing and relies on the rename alone, because
// syncing a folder handle there returns an error. This path has not been
// run on Windows.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if closeErr := d.Close(); err == nil {
		err = closeErr
	}
	return err
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
