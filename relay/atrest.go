package relay

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
)

// EncryptionKeySize is the size in bytes of the key that encrypts the
// relay's data at rest (AES-256, as Badger uses it).
const EncryptionKeySize = 32

// EncryptionKey encrypts the relay's Badger database at rest. Envelopes
// are encrypted end to end already, so this key protects the metadata the
// relay stores: document ids, member keys, cursors, sealed keys and the
// audit log.
//
// EncryptionKey prints, logs and encodes to JSON as "[redacted]", so a
// Config that reaches a log by accident does not leak it.
type EncryptionKey []byte

const redacted = "[redacted]"

// String returns "[redacted]".
func (EncryptionKey) String() string { return redacted }

// GoString returns "[redacted]", for %#v.
func (EncryptionKey) GoString() string { return redacted }

// LogValue returns "[redacted]".
func (EncryptionKey) LogValue() slog.Value { return slog.StringValue(redacted) }

// Format keeps every verb, %x and %q included, from printing the bytes.
func (EncryptionKey) Format(f fmt.State, _ rune) { f.Write([]byte(redacted)) }

// MarshalText returns "[redacted]", so encoding/json and slog's JSON
// handler do not write the bytes in base64 when they encode a Config.
func (EncryptionKey) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// ParseEncryptionKey returns the key in data: exactly 32 raw bytes, or 64
// hex digits with optional surrounding white space. source names where
// data came from, for the error, which never contains the data itself.
func ParseEncryptionKey(data []byte, source string) (EncryptionKey, error) {
	if len(data) == EncryptionKeySize {
		return EncryptionKey(bytes.Clone(data)), nil
	}
	text := bytes.TrimSpace(data)
	if len(text) == 2*EncryptionKeySize {
		key := make([]byte, EncryptionKeySize)
		if _, err := hex.Decode(key, text); err == nil {
			return EncryptionKey(key), nil
		}
		return nil, fmt.Errorf("relay: encryption key %s has 64 characters that are not all hex digits: want 32 raw bytes or 64 hex digits, for example from 'openssl rand -hex 32'", source)
	}
	return nil, fmt.Errorf("relay: encryption key %s is %d bytes: want 32 raw bytes or 64 hex digits, for example from 'openssl rand -hex 32'", source, len(data))
}

// ReadEncryptionKeyFile reads the key from the file at path, in one of the
// forms ParseEncryptionKey accepts.
func ReadEncryptionKeyFile(path string) (EncryptionKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("relay: read encryption key file: %w", err)
	}
	defer clear(data)
	return ParseEncryptionKey(data, "file "+path)
}

// ErrEncryptionKeyMismatch is returned by Open when Config.EncryptionKey
// does not fit the data directory: another key, a key for a directory
// written without one, or no key for an encrypted directory.
var ErrEncryptionKeyMismatch = errors.New("encryption key mismatch")

// keyMismatchError explains Badger's key mismatch in the relay's terms.
// Without a key, a mismatch means the directory is encrypted. With a key,
// it means the directory was written with another key or without one.
func keyMismatchError(dir string, keyGiven bool) error {
	if !keyGiven {
		return fmt.Errorf("%w: data directory %q is encrypted, and no key was given: pass its key with --encryption-key-file", ErrEncryptionKeyMismatch, dir)
	}
	return fmt.Errorf("%w: data directory %q was written with another key or without encryption: pass the key it was created with, or use a new data directory", ErrEncryptionKeyMismatch, dir)
}
