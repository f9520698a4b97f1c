package keyring

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/hkdf"
	"golang.org/x/crypto/nacl/box"
)

// HKDF labels. Each derived key has its own label, so no two uses of one
// secret ever produce the same key.
const (
	labelUserSigning     = "interlude/keyring/v1 user signing key"
	labelUserBox         = "interlude/keyring/v1 user box key"
	labelDocumentSigning = "interlude/keyring/v1 document signing key\x00"
	labelPriorSeed       = "interlude/keyring/v1 prior seed key"
	labelRecoverySigning = "interlude/keyring/v1 recovery signing key"
	labelRecoveryBox     = "interlude/keyring/v1 recovery box key"
)

// SeedSize is the size of a user seed in bytes.
const SeedSize = 32

// Errors returned when a sealed secret does not open.
var (
	// ErrNotForThisDevice is returned when a sealed seed or secret does not
	// open with this device's or user's box key.
	ErrNotForThisDevice = errors.New("keyring: sealed secret does not open with this key")
	// ErrUserKeyMismatch is returned when an opened seed derives public keys
	// other than the ones the sigchain lists for its generation.
	ErrUserKeyMismatch = errors.New("keyring: opened seed does not match the user key in the sigchain")
)

// PublicKeys is a pair of public keys: Ed25519 to verify signatures and
// X25519 to seal secrets to. Devices and invitations are named by one.
// The text form is the same as client.PublicID's, so either parses the other.
type PublicKeys struct {
	Sign [ed25519.PublicKeySize]byte
	Box  [32]byte
}

const publicKeysPrefix = "il1"

// SigningKey returns the Ed25519 key in the form crypto/ed25519 takes.
func (p PublicKeys) SigningKey() ed25519.PublicKey {
	return ed25519.PublicKey(append([]byte(nil), p.Sign[:]...))
}

// Fingerprint returns a short hash of both keys for people to compare.
func (p PublicKeys) Fingerprint() string {
	sum := sha256.Sum256(p.bytes())
	return fmt.Sprintf("%X-%X-%X", sum[0:2], sum[2:4], sum[4:6])
}

// String returns "il1" and the unpadded base64url encoding of both keys.
func (p PublicKeys) String() string {
	return publicKeysPrefix + base64.RawURLEncoding.EncodeToString(p.bytes())
}

// ParsePublicKeys parses the text form that String returns.
func ParsePublicKeys(s string) (PublicKeys, error) {
	var p PublicKeys
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), publicKeysPrefix)
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if !ok || err != nil || len(b) != 64 {
		return p, fmt.Errorf("keyring: invalid public keys %q: want %q followed by 86 base64url characters", s, publicKeysPrefix)
	}
	copy(p.Sign[:], b[:32])
	copy(p.Box[:], b[32:])
	return p, nil
}

func (p PublicKeys) bytes() []byte {
	b := make([]byte, 0, 64)
	b = append(b, p.Sign[:]...)
	return append(b, p.Box[:]...)
}

// Device is one device's private keys: Ed25519 to sign sigchain entries and
// X25519 to open the user seed sealed to it. A recovery phrase also derives
// a Device.
type Device struct {
	signing ed25519.PrivateKey
	box     [32]byte // X25519 private key
	public  PublicKeys
}

// NewDevice returns a device with random keys.
func NewDevice() (*Device, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(rand.Reader, seed); err != nil {
		return nil, fmt.Errorf("keyring: read random device seed: %w", err)
	}
	var boxKey [32]byte
	if _, err := io.ReadFull(rand.Reader, boxKey[:]); err != nil {
		return nil, fmt.Errorf("keyring: read random device box key: %w", err)
	}
	return DeviceFromSeeds(seed, boxKey)
}

// DeviceFromSeeds builds a device from a 32-byte Ed25519 seed and a 32-byte
// X25519 private key, the two secrets a client.Identity stores. The
// arguments are secret.
func DeviceFromSeeds(signingSeed []byte, boxKey [32]byte) (*Device, error) {
	if len(signingSeed) != ed25519.SeedSize {
		return nil, fmt.Errorf("keyring: invalid signing seed of %d bytes, want %d", len(signingSeed), ed25519.SeedSize)
	}
	d := &Device{signing: ed25519.NewKeyFromSeed(signingSeed), box: boxKey}
	copy(d.public.Sign[:], d.signing.Public().(ed25519.PublicKey))
	pub, err := curve25519.X25519(boxKey[:], curve25519.Basepoint)
	if err != nil {
		return nil, fmt.Errorf("keyring: derive device box public key: %w", err)
	}
	copy(d.public.Box[:], pub)
	return d, nil
}

// Public returns the device's public keys.
func (d *Device) Public() PublicKeys { return d.public }

func (d *Device) sign(domain string, msg []byte) [ed25519.SignatureSize]byte {
	var sig [ed25519.SignatureSize]byte
	copy(sig[:], ed25519.Sign(d.signing, withDomain(domain, msg)))
	return sig
}

func (d *Device) open(sealed []byte) ([]byte, bool) {
	return box.OpenAnonymous(nil, sealed, &d.public.Box, &d.box)
}

// UserPublicKey is the public half of one generation of a user key. The
// sigchain lists one per generation.
type UserPublicKey struct {
	Generation uint32
	Sign       [ed25519.PublicKeySize]byte
	Box        [32]byte
}

// UserKey is one generation of a person's per-user key: a 32-byte seed and
// the signing and box keys derived from it. Every device of the person
// holds the same UserKey, sealed to it in a SealedSeed.
type UserKey struct {
	seed    [SeedSize]byte
	signing ed25519.PrivateKey
	box     [32]byte // X25519 private key
	public  UserPublicKey
}

// NewUserKey returns a user key of the given generation with a random seed.
func NewUserKey(generation uint32) (*UserKey, error) {
	var seed [SeedSize]byte
	if _, err := io.ReadFull(rand.Reader, seed[:]); err != nil {
		return nil, fmt.Errorf("keyring: read random user seed: %w", err)
	}
	return UserKeyFromSeed(generation, seed)
}

// UserKeyFromSeed derives the keys of one generation from its seed. The
// seed is secret.
func UserKeyFromSeed(generation uint32, seed [SeedSize]byte) (*UserKey, error) {
	if generation == 0 {
		return nil, errors.New("keyring: user key generation 0 is invalid: generations start at 1")
	}
	k := &UserKey{seed: seed}
	k.public.Generation = generation

	signingSeed, err := derive(seed[:], labelUserSigning, nil, ed25519.SeedSize)
	if err != nil {
		return nil, err
	}
	k.signing = ed25519.NewKeyFromSeed(signingSeed)
	copy(k.public.Sign[:], k.signing.Public().(ed25519.PublicKey))

	boxKey, err := derive(seed[:], labelUserBox, nil, 32)
	if err != nil {
		return nil, err
	}
	copy(k.box[:], boxKey)
	pub, err := curve25519.X25519(k.box[:], curve25519.Basepoint)
	if err != nil {
		return nil, fmt.Errorf("keyring: derive user box public key: %w", err)
	}
	copy(k.public.Box[:], pub)
	return k, nil
}

// Public returns the public keys of this generation.
func (k *UserKey) Public() UserPublicKey { return k.public }

// Generation returns the generation number, 1 for the first user key.
func (k *UserKey) Generation() uint32 { return k.public.Generation }

// PrivateKeys returns the Ed25519 seed and the X25519 private key of this
// generation, for a device that acts as its person, such as one reading
// the person's inbox. Both are secret.
func (k *UserKey) PrivateKeys() (signingSeed []byte, box [32]byte) {
	return k.signing.Seed(), k.box
}

const userKeyRecordVersion = 1

// MarshalBinary encodes the generation and the seed so a device can keep
// the user key in its encrypted store. The result is secret.
func (k *UserKey) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 1+4+SeedSize)
	b = append(b, userKeyRecordVersion)
	b = binary.BigEndian.AppendUint32(b, k.public.Generation)
	return append(b, k.seed[:]...), nil
}

// UnmarshalUserKey decodes what UserKey.MarshalBinary returned.
func UnmarshalUserKey(b []byte) (*UserKey, error) {
	if len(b) != 1+4+SeedSize || b[0] != userKeyRecordVersion {
		return nil, fmt.Errorf("keyring: invalid user key record of %d bytes: want %d bytes of version %d", len(b), 1+4+SeedSize, userKeyRecordVersion)
	}
	var seed [SeedSize]byte
	copy(seed[:], b[5:])
	return UserKeyFromSeed(binary.BigEndian.Uint32(b[1:5]), seed)
}

func (k *UserKey) sign(domain string, msg []byte) [ed25519.SignatureSize]byte {
	var sig [ed25519.SignatureSize]byte
	copy(sig[:], ed25519.Sign(k.signing, withDomain(domain, msg)))
	return sig
}

// SealedSeed is a user seed sealed with box.SealAnonymous to one device's
// X25519 key. Only that device can open it, and the relay may store it.
type SealedSeed struct {
	Generation uint32
	// Device is the Ed25519 key of the device the seed is sealed to, as the
	// sigchain lists it.
	Device [ed25519.PublicKeySize]byte
	Sealed []byte
}

// SealTo seals the seed to a device.
func (k *UserKey) SealTo(device PublicKeys) (SealedSeed, error) {
	sealed, err := box.SealAnonymous(nil, k.seed[:], &device.Box, rand.Reader)
	if err != nil {
		return SealedSeed{}, fmt.Errorf("keyring: seal user seed to device %s: %w", device.Fingerprint(), err)
	}
	return SealedSeed{Generation: k.public.Generation, Device: device.Sign, Sealed: sealed}, nil
}

// OpenSeed opens a seed sealed to this device and checks that it derives
// want, the user key the sigchain lists for that generation. The check
// stops a relay from handing a device somebody else's seed.
func (d *Device) OpenSeed(s SealedSeed, want UserPublicKey) (*UserKey, error) {
	if s.Device != d.public.Sign {
		return nil, fmt.Errorf("%w: seed of generation %d is sealed to device %x, this is device %s", ErrNotForThisDevice, s.Generation, s.Device[:6], d.public.Fingerprint())
	}
	plain, ok := d.open(s.Sealed)
	if !ok || len(plain) != SeedSize {
		return nil, fmt.Errorf("%w: seed of generation %d for device %s", ErrNotForThisDevice, s.Generation, d.public.Fingerprint())
	}
	return userKeyMatching(s.Generation, plain, want)
}

func userKeyMatching(generation uint32, seed []byte, want UserPublicKey) (*UserKey, error) {
	var s [SeedSize]byte
	copy(s[:], seed)
	clear(seed)
	k, err := UserKeyFromSeed(generation, s)
	if err != nil {
		return nil, err
	}
	if k.public != want {
		return nil, fmt.Errorf("%w (generation %d)", ErrUserKeyMismatch, generation)
	}
	return k, nil
}

// SealPrior seals the previous generation's seed under this one, so a
// device that holds the newest user key can walk back to every older one
// and still open what was sealed to them.
func (k *UserKey) SealPrior(prior *UserKey) ([]byte, error) {
	if prior.Generation()+1 != k.Generation() {
		return nil, fmt.Errorf("keyring: cannot seal generation %d under generation %d: only the generation just before may be sealed", prior.Generation(), k.Generation())
	}
	aead, err := newXChaCha(k.seed[:], labelPriorSeed)
	if err != nil {
		return nil, err
	}
	return sealAEAD(aead, prior.seed[:], k.priorAD())
}

// OpenPrior opens what SealPrior returned and checks that the seed derives
// want, the sigchain's user key of the previous generation.
func (k *UserKey) OpenPrior(blob []byte, want UserPublicKey) (*UserKey, error) {
	if k.Generation() <= 1 || want.Generation != k.Generation()-1 {
		return nil, fmt.Errorf("keyring: the prior-seed blob of generation %d contains generation %d, not %d", k.Generation(), k.Generation()-1, want.Generation)
	}
	aead, err := newXChaCha(k.seed[:], labelPriorSeed)
	if err != nil {
		return nil, err
	}
	plain, err := openAEAD(aead, blob, k.priorAD())
	if err != nil || len(plain) != SeedSize {
		return nil, fmt.Errorf("%w: prior seed of generation %d under generation %d", ErrNotForThisDevice, want.Generation, k.Generation())
	}
	return userKeyMatching(want.Generation, plain, want)
}

func (k *UserKey) priorAD() []byte {
	ad := []byte("interlude/keyring/v1 prior seed\x00")
	ad = binary.BigEndian.AppendUint32(ad, k.Generation())
	return binary.BigEndian.AppendUint32(ad, k.Generation()-1)
}

// SealToUser seals a secret, such as a document key, to a user's box key,
// so every device holding that generation of the user key can open it.
func SealToUser(to UserPublicKey, secret []byte) ([]byte, error) {
	sealed, err := box.SealAnonymous(nil, secret, &to.Box, rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("keyring: seal to user key of generation %d: %w", to.Generation, err)
	}
	return sealed, nil
}

// OpenSealed opens a secret that SealToUser sealed to this generation.
func (k *UserKey) OpenSealed(sealed []byte) ([]byte, error) {
	plain, ok := box.OpenAnonymous(nil, sealed, &k.public.Box, &k.box)
	if !ok {
		return nil, fmt.Errorf("%w: secret sealed to a user key, opened with generation %d", ErrNotForThisDevice, k.Generation())
	}
	return plain, nil
}

// DocumentKey is the Ed25519 key a person signs with in one document. It is
// derived from the user seed and the document id, so it is stable on every
// device of the person, while the relay sees an unrelated key in each
// document and cannot link one person's documents.
//
// Each generation of the user key derives different document keys. After a
// rotation, the revoked device still knows the old ones, so a client should
// register the new generation's document key with the relay and drop the old.
type DocumentKey struct {
	doc        [16]byte
	generation uint32
	signing    ed25519.PrivateKey
}

// DocumentKey derives the signing key for the document with id doc; an
// envelope.DocID can be passed as is.
func (k *UserKey) DocumentKey(doc [16]byte) (*DocumentKey, error) {
	seed, err := derive(k.seed[:], labelDocumentSigning, doc[:], ed25519.SeedSize)
	if err != nil {
		return nil, err
	}
	defer clear(seed)
	return &DocumentKey{doc: doc, generation: k.Generation(), signing: ed25519.NewKeyFromSeed(seed)}, nil
}

// Public returns the key the relay and other members see.
func (k *DocumentKey) Public() ed25519.PublicKey {
	return k.signing.Public().(ed25519.PublicKey)
}

// PrivateKey returns the signing key to pass to envelope.Seal. It is
// secret: never log it.
func (k *DocumentKey) PrivateKey() ed25519.PrivateKey { return k.signing }

// derive reads n bytes from HKDF-SHA256 over secret, with label and then
// suffix as the info.
func derive(secret []byte, label string, suffix []byte, n int) ([]byte, error) {
	info := append([]byte(label), suffix...)
	out := make([]byte, n)
	if _, err := io.ReadFull(hkdf.New(sha256.New, secret, nil, info), out); err != nil {
		return nil, fmt.Errorf("keyring: derive %q: %w", label, err)
	}
	return out, nil
}

// withDomain prefixes msg with a domain string and a zero byte, so a
// signature made for one purpose never verifies for another.
func withDomain(domain string, msg []byte) []byte {
	b := make([]byte, 0, len(domain)+1+len(msg))
	b = append(b, domain...)
	b = append(b, 0)
	return append(b, msg...)
}
