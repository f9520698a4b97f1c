package keyring

import (
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
)

// errDecrypt is returned by openAEAD; callers wrap it with what failed.
var errDecrypt = errors.New("keyring: decryption failed")

// newXChaCha returns XChaCha20-Poly1305 under a key derived from secret
// with label, so secret itself never encrypts anything.
func newXChaCha(secret []byte, label string) (cipher.AEAD, error) {
	key, err := derive(secret, label, nil, chacha20poly1305.KeySize)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("keyring: create cipher: %w", err)
	}
	return aead, nil
}

// sealAEAD returns a random nonce followed by the ciphertext.
func sealAEAD(aead cipher.AEAD, plaintext, ad []byte) ([]byte, error) {
	out := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := io.ReadFull(rand.Reader, out); err != nil {
		return nil, fmt.Errorf("keyring: read random nonce: %w", err)
	}
	return aead.Seal(out, out[:aead.NonceSize()], plaintext, ad), nil
}

// openAEAD opens what sealAEAD returned.
func openAEAD(aead cipher.AEAD, blob, ad []byte) ([]byte, error) {
	if len(blob) < aead.NonceSize()+aead.Overhead() {
		return nil, errDecrypt
	}
	plain, err := aead.Open(nil, blob[:aead.NonceSize()], blob[aead.NonceSize():], ad)
	if err != nil {
		return nil, errDecrypt
	}
	return plain, nil
}
