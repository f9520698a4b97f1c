package securestore

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"

	"interlude/client/keyring"
)

// Unlocker wraps and unwraps a store's data key with a secret the store
// does not keep: a passphrase, or a key from a platform keychain or from
// WebAuthn.
type Unlocker interface {
	// Method names the kind of secret, such as "passphrase". The store
	// records it in its header and names it in errors.
	Method() string
	// WrapKey encrypts a new data key, bound to ad.
	WrapKey(ctx context.Context, dataKey, ad []byte) ([]byte, error)
	// UnwrapKey decrypts what WrapKey returned. When the secret does not
	// open it, the error wraps ErrWrongKey.
	UnwrapKey(ctx context.Context, wrapped, ad []byte) ([]byte, error)
}

// PassphraseUnlocker wraps the data key under a key that Argon2id derives
// from a passphrase (keyring.SealWithPassphrase). The parameters are stored
// with the wrapped key, and opening rejects parameters below the keyring
// package's minimums before it derives anything.
type PassphraseUnlocker struct {
	Passphrase keyring.Passphrase
	// Params are the Argon2id parameters for a new store. The zero value
	// means keyring.NewArgon2Params. An existing store uses the parameters
	// in its header.
	Params keyring.Argon2Params
}

// Method returns "passphrase".
func (u PassphraseUnlocker) Method() string { return "passphrase" }

// WrapKey implements Unlocker.
func (u PassphraseUnlocker) WrapKey(_ context.Context, dataKey, ad []byte) ([]byte, error) {
	params := u.Params
	if params.Time == 0 && params.MemoryKiB == 0 && params.Threads == 0 && len(params.Salt) == 0 {
		var err error
		if params, err = keyring.NewArgon2Params(); err != nil {
			return nil, err
		}
	}
	return keyring.SealWithPassphrase(u.Passphrase, params, dataKey, ad)
}

// UnwrapKey implements Unlocker.
func (u PassphraseUnlocker) UnwrapKey(_ context.Context, wrapped, ad []byte) ([]byte, error) {
	dataKey, err := keyring.OpenWithPassphrase(u.Passphrase, wrapped, ad)
	if errors.Is(err, keyring.ErrWrongPassphrase) {
		return nil, fmt.Errorf("%w: %w", ErrWrongKey, err)
	}
	return dataKey, err
}

const labelRawWrap = "interlude/securestore/v1 raw key wrap"

// RawKeyUnlocker wraps the data key with XChaCha20-Poly1305 under a key
// derived from a 32-byte secret, for tests or for a secret that a platform
// keychain keeps. It prints as "[redacted]".
type RawKeyUnlocker struct {
	key [32]byte
}

// NewRawKeyUnlocker returns an Unlocker for the secret key.
func NewRawKeyUnlocker(key [32]byte) *RawKeyUnlocker { return &RawKeyUnlocker{key: key} }

// Method returns "raw key".
func (u *RawKeyUnlocker) Method() string { return "raw key" }

func (u *RawKeyUnlocker) wrapCipher() (cipher.AEAD, error) {
	wrapKey := make([]byte, chacha20poly1305.KeySize)
	defer clear(wrapKey)
	if _, err := io.ReadFull(hkdf.New(sha256.New, u.key[:], nil, []byte(labelRawWrap)), wrapKey); err != nil {
		return nil, fmt.Errorf("securestore: derive wrapping key: %w", err)
	}
	return chacha20poly1305.NewX(wrapKey)
}

// WrapKey implements Unlocker.
func (u *RawKeyUnlocker) WrapKey(_ context.Context, dataKey, ad []byte) ([]byte, error) {
	aead, err := u.wrapCipher()
	if err != nil {
		return nil, err
	}
	out := make([]byte, aead.NonceSize(), aead.NonceSize()+len(dataKey)+aead.Overhead())
	if _, err := io.ReadFull(rand.Reader, out); err != nil {
		return nil, fmt.Errorf("securestore: read random nonce: %w", err)
	}
	return aead.Seal(out, out, dataKey, ad), nil
}

// UnwrapKey implements Unlocker.
func (u *RawKeyUnlocker) UnwrapKey(_ context.Context, wrapped, ad []byte) ([]byte, error) {
	aead, err := u.wrapCipher()
	if err != nil {
		return nil, err
	}
	if len(wrapped) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("securestore: wrapped data key of %d bytes is too short: the header is damaged", len(wrapped))
	}
	dataKey, err := aead.Open(nil, wrapped[:aead.NonceSize()], wrapped[aead.NonceSize():], ad)
	if err != nil {
		return nil, ErrWrongKey
	}
	return dataKey, nil
}

// String returns "[redacted]".
func (u RawKeyUnlocker) String() string { return "[redacted] raw key" }

// GoString returns what String returns.
func (u RawKeyUnlocker) GoString() string { return u.String() }

// Format writes what String returns, for every verb.
func (u RawKeyUnlocker) Format(f fmt.State, _ rune) { io.WriteString(f, u.String()) }

// LogValue returns what String returns.
func (u RawKeyUnlocker) LogValue() slog.Value { return slog.StringValue(u.String()) }

// MarshalJSON returns what String returns, as a JSON string.
func (u RawKeyUnlocker) MarshalJSON() ([]byte, error) { return json.Marshal(u.String()) }
