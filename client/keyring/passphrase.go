package keyring

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// Minimum Argon2id parameters. OpenWithPassphrase rejects a blob with
// weaker ones before it derives any key, so whoever stores the blob, such
// as the relay, cannot lower the cost of guessing the passphrase. The
// minimums are the second recommended option of RFC 9106, section 4
// (t=3, 64 MiB, 128-bit salt), except that any number of lanes is allowed.
const (
	MinArgon2Time      = 3
	MinArgon2MemoryKiB = 64 * 1024
	MinArgon2Threads   = 1
	MinArgon2SaltSize  = 16
)

// Maximum Argon2id parameters. They keep a stored blob from making a
// device, such as a phone's browser, allocate or compute without bound.
const (
	MaxArgon2Time      = 16
	MaxArgon2MemoryKiB = 1024 * 1024
	MaxArgon2Threads   = 16
	MaxArgon2SaltSize  = 64
)

// Errors returned by SealWithPassphrase and OpenWithPassphrase.
var (
	// ErrArgon2Params is returned for Argon2id parameters outside the
	// minimums and maximums above. The message names the parameter.
	ErrArgon2Params = errors.New("keyring: Argon2id parameters are out of bounds")
	// ErrWrongPassphrase is returned when a blob does not open: the
	// passphrase is wrong, or the blob or what it is bound to was changed.
	ErrWrongPassphrase = errors.New("keyring: wrong passphrase, or the sealed data was changed")
	// ErrEmptyPassphrase is returned for a passphrase of zero bytes.
	ErrEmptyPassphrase = errors.New("keyring: passphrase is empty")
)

const (
	passphraseMagic   = "ILPW"
	passphraseVersion = 1
	domainPassphrase  = "interlude/keyring/v1 passphrase sealed"
	adUserSeed        = "interlude/keyring/v1 user seed"
)

// argon2IDKey is argon2.IDKey. Tests replace it to check that weak
// parameters are rejected before any derivation runs.
var argon2IDKey = argon2.IDKey

// Passphrase is a secret a person types. It prints as "[redacted]".
type Passphrase struct {
	b []byte
}

// NewPassphrase returns s as a Passphrase.
func NewPassphrase(s string) Passphrase { return Passphrase{b: []byte(s)} }

// Argon2Params are the Argon2id parameters of a passphrase-sealed blob,
// stored in its header.
type Argon2Params struct {
	// Time is the number of passes over memory.
	Time uint32
	// MemoryKiB is the memory cost in KiB.
	MemoryKiB uint32
	// Threads is the number of lanes.
	Threads uint8
	// Salt is random and at least MinArgon2SaltSize bytes.
	Salt []byte
}

// NewArgon2Params returns the minimum parameters with 4 lanes, which is the
// second recommended option of RFC 9106, and a fresh random 16-byte salt.
// BenchmarkArgon2MinimumParams measured one derivation at 0.11 s on 2 cores
// of an AMD EPYC server, and at 0.43 s as WebAssembly under Node.js on the
// same machine, which runs the lanes on one thread.
func NewArgon2Params() (Argon2Params, error) {
	p := Argon2Params{Time: MinArgon2Time, MemoryKiB: MinArgon2MemoryKiB, Threads: 4, Salt: make([]byte, MinArgon2SaltSize)}
	if _, err := io.ReadFull(rand.Reader, p.Salt); err != nil {
		return p, fmt.Errorf("keyring: read random salt: %w", err)
	}
	return p, nil
}

// Check returns an error wrapping ErrArgon2Params, naming the first
// parameter outside its bounds.
func (p Argon2Params) Check() error {
	switch {
	case p.Time < MinArgon2Time:
		return fmt.Errorf("%w: time cost t=%d is below the minimum of %d", ErrArgon2Params, p.Time, MinArgon2Time)
	case p.Time > MaxArgon2Time:
		return fmt.Errorf("%w: time cost t=%d is above the maximum of %d", ErrArgon2Params, p.Time, MaxArgon2Time)
	case p.MemoryKiB < MinArgon2MemoryKiB:
		return fmt.Errorf("%w: memory cost m=%d KiB is below the minimum of %d KiB (64 MiB)", ErrArgon2Params, p.MemoryKiB, MinArgon2MemoryKiB)
	case p.MemoryKiB > MaxArgon2MemoryKiB:
		return fmt.Errorf("%w: memory cost m=%d KiB is above the maximum of %d KiB (1 GiB)", ErrArgon2Params, p.MemoryKiB, MaxArgon2MemoryKiB)
	case p.Threads < MinArgon2Threads:
		return fmt.Errorf("%w: parallelism p=%d is below the minimum of %d", ErrArgon2Params, p.Threads, MinArgon2Threads)
	case p.Threads > MaxArgon2Threads:
		return fmt.Errorf("%w: parallelism p=%d is above the maximum of %d", ErrArgon2Params, p.Threads, MaxArgon2Threads)
	case len(p.Salt) < MinArgon2SaltSize:
		return fmt.Errorf("%w: salt of %d bytes is shorter than the minimum of %d", ErrArgon2Params, len(p.Salt), MinArgon2SaltSize)
	case len(p.Salt) > MaxArgon2SaltSize:
		return fmt.Errorf("%w: salt of %d bytes is longer than the maximum of %d", ErrArgon2Params, len(p.Salt), MaxArgon2SaltSize)
	}
	return nil
}

// header encodes the parameters as the start of a blob: magic, version,
// t, m, p, salt length and salt.
func (p Argon2Params) header() []byte {
	b := make([]byte, 0, 4+1+4+4+1+1+len(p.Salt))
	b = append(b, passphraseMagic...)
	b = append(b, passphraseVersion)
	b = binary.BigEndian.AppendUint32(b, p.Time)
	b = binary.BigEndian.AppendUint32(b, p.MemoryKiB)
	b = append(b, p.Threads, byte(len(p.Salt)))
	return append(b, p.Salt...)
}

// ReadArgon2Params returns the parameters in a blob's header and the length
// of the header, without checking their bounds.
func ReadArgon2Params(blob []byte) (Argon2Params, int, error) {
	const fixed = 4 + 1 + 4 + 4 + 1 + 1
	var p Argon2Params
	if len(blob) < fixed || !bytes.Equal(blob[:4], []byte(passphraseMagic)) {
		return p, 0, fmt.Errorf("keyring: not a passphrase-sealed blob: it does not start with %q", passphraseMagic)
	}
	if blob[4] != passphraseVersion {
		return p, 0, fmt.Errorf("keyring: passphrase-sealed blob version %d, this build reads version %d", blob[4], passphraseVersion)
	}
	p.Time = binary.BigEndian.Uint32(blob[5:9])
	p.MemoryKiB = binary.BigEndian.Uint32(blob[9:13])
	p.Threads = blob[13]
	saltLen := int(blob[14])
	if len(blob) < fixed+saltLen {
		return p, 0, fmt.Errorf("keyring: passphrase-sealed blob of %d bytes is cut short inside its %d-byte salt", len(blob), saltLen)
	}
	p.Salt = append([]byte(nil), blob[fixed:fixed+saltLen]...)
	return p, fixed + saltLen, nil
}

// SealWithPassphrase encrypts plaintext with XChaCha20-Poly1305 under a key
// that Argon2id derives from the passphrase. The blob starts with the
// parameters, which are authenticated as associated data together with ad,
// so the blob opens only with the same ad and unchanged parameters. Use ad
// to say what the blob is for and whom it belongs to.
func SealWithPassphrase(pass Passphrase, params Argon2Params, plaintext, ad []byte) ([]byte, error) {
	if len(pass.b) == 0 {
		return nil, ErrEmptyPassphrase
	}
	if err := params.Check(); err != nil {
		return nil, err
	}

	header := params.header()
	aead, err := passphraseCipher(pass, params)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return nil, fmt.Errorf("keyring: read random nonce: %w", err)
	}
	out := append(header, nonce...)
	return aead.Seal(out, nonce, plaintext, passphraseAD(header, ad)), nil
}

// OpenWithPassphrase decrypts what SealWithPassphrase returned. It checks
// the stored parameters against the minimums and maximums before deriving
// any key.
func OpenWithPassphrase(pass Passphrase, blob, ad []byte) ([]byte, error) {
	if len(pass.b) == 0 {
		return nil, ErrEmptyPassphrase
	}
	params, n, err := ReadArgon2Params(blob)
	if err != nil {
		return nil, err
	}
	if err := params.Check(); err != nil {
		return nil, fmt.Errorf("%w: the stored blob may have been altered to make the passphrase easier to guess, so it is rejected: seal it again from a device that has the secret", err)
	}
	if len(blob) < n+chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead {
		return nil, fmt.Errorf("keyring: passphrase-sealed blob of %d bytes is too short for its nonce and tag", len(blob))
	}

	aead, err := passphraseCipher(pass, params)
	if err != nil {
		return nil, err
	}
	header, rest := blob[:n], blob[n:]
	nonce, ciphertext := rest[:aead.NonceSize()], rest[aead.NonceSize():]
	plain, err := aead.Open(nil, nonce, ciphertext, passphraseAD(header, ad))
	if err != nil {
		return nil, ErrWrongPassphrase
	}
	return plain, nil
}

func passphraseCipher(pass Passphrase, params Argon2Params) (cipher.AEAD, error) {
	key := argon2IDKey(pass.b, params.Salt, params.Time, params.MemoryKiB, params.Threads, chacha20poly1305.KeySize)
	defer clear(key)
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("keyring: create cipher: %w", err)
	}
	return aead, nil
}

func passphraseAD(header, ad []byte) []byte {
	b := make([]byte, 0, len(domainPassphrase)+1+4+len(ad)+len(header))
	b = append(b, domainPassphrase...)
	b = append(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(len(ad)))
	b = append(b, ad...)
	return append(b, header...)
}

// SealWithPassphrase seals the user key under a passphrase, for a person
// who wants the relay to keep a copy they can open on a new device without
// another device or the recovery phrase.
func (k *UserKey) SealWithPassphrase(pass Passphrase, params Argon2Params) ([]byte, error) {
	plain, _ := k.MarshalBinary()
	defer clear(plain)
	return SealWithPassphrase(pass, params, plain, []byte(adUserSeed))
}

// OpenUserKeyWithPassphrase opens what UserKey.SealWithPassphrase returned
// and checks that it derives want, the sigchain's user key of its
// generation.
func OpenUserKeyWithPassphrase(blob []byte, pass Passphrase, want UserPublicKey) (*UserKey, error) {
	plain, err := OpenWithPassphrase(pass, blob, []byte(adUserSeed))
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	k, err := UnmarshalUserKey(plain)
	if err != nil {
		return nil, err
	}
	if k.public != want {
		return nil, fmt.Errorf("%w (generation %d)", ErrUserKeyMismatch, k.Generation())
	}
	return k, nil
}
