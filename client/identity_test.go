package client

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"interlude/client/keyring"
)

// privateKeyBytes returns the secrets an identity file must not show in
// the clear once a passphrase is set: the Ed25519 seed and the X25519
// private key.
func privateKeyBytes(id *Identity) [][]byte {
	return [][]byte{id.signing.Seed(), append([]byte(nil), id.boxKey[:]...)}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestIdentityFileWithPassphrase(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "profile")
	pass := keyring.NewPassphrase("correct horse battery staple")
	id, err := CreateIdentityFileWithPassphrase(dir, pass)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, IdentityFile)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("identity file mode = %v, want 0600", info.Mode().Perm())
	}
	sealed := readFile(t, path)
	for _, secret := range privateKeyBytes(id) {
		if bytes.Contains(sealed, secret) {
			t.Fatalf("encrypted identity file contains private key bytes %x in the clear", secret[:4])
		}
	}

	again, encrypted, err := ReadIdentityFileWithPassphrase(dir, pass)
	if err != nil {
		t.Fatal(err)
	}
	if !encrypted {
		t.Error("ReadIdentityFileWithPassphrase reported an encrypted file as in the clear")
	}
	if again.PublicID() != id.PublicID() {
		t.Errorf("read identity %s, want %s", again.PublicID(), id.PublicID())
	}

	if _, err := ReadIdentityFile(dir); !errors.Is(err, ErrIdentityEncrypted) {
		t.Errorf("ReadIdentityFile of an encrypted file: err = %v, want ErrIdentityEncrypted", err)
	}
	_, _, err = ReadIdentityFileWithPassphrase(dir, keyring.NewPassphrase("wrong horse"))
	if !errors.Is(err, keyring.ErrWrongPassphrase) {
		t.Errorf("wrong passphrase: err = %v, want keyring.ErrWrongPassphrase", err)
	}
	if !bytes.Equal(readFile(t, path), sealed) {
		t.Error("reading with a wrong passphrase changed the identity file")
	}
	if _, err := CreateIdentityFileWithPassphrase(dir, pass); err == nil {
		t.Error("second CreateIdentityFileWithPassphrase in one profile succeeded; it must never overwrite an identity")
	}
}

func TestIdentityFileEmptyPassphrase(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "profile")
	_, err := CreateIdentityFileWithPassphrase(dir, keyring.NewPassphrase(""))
	if !errors.Is(err, keyring.ErrEmptyPassphrase) {
		t.Errorf("create with an empty passphrase: err = %v, want keyring.ErrEmptyPassphrase", err)
	}
	if _, err := os.Stat(filepath.Join(dir, IdentityFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("create with an empty passphrase left an identity file (stat err = %v)", err)
	}
}

// TestEncryptIdentityFile encrypts a file made in the clear, as the first
// command run with a passphrase does to a profile made without one.
func TestEncryptIdentityFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "profile")
	id, err := CreateIdentityFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, IdentityFile)
	plain := readFile(t, path)
	// The scan below must be able to find the keys, so check that it finds
	// them in the file made in the clear.
	for _, secret := range privateKeyBytes(id) {
		if !bytes.Contains(plain, secret) {
			t.Fatalf("plain identity file lacks private key bytes %x: the scan for them would prove nothing", secret[:4])
		}
	}
	if _, encrypted, err := ReadIdentityFileWithPassphrase(dir, keyring.NewPassphrase("unused")); err != nil || encrypted {
		t.Fatalf("ReadIdentityFileWithPassphrase of a plain file: encrypted = %v, err = %v, want false and nil", encrypted, err)
	}

	pass := keyring.NewPassphrase("correct horse battery staple")
	if err := EncryptIdentityFile(dir, pass); err != nil {
		t.Fatal(err)
	}
	sealed := readFile(t, path)
	for _, secret := range privateKeyBytes(id) {
		if bytes.Contains(sealed, secret) {
			t.Errorf("identity file contains private key bytes %x in the clear after EncryptIdentityFile", secret[:4])
		}
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("encrypted identity file mode = %v, want 0600", info.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != IdentityFile {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("profile folder holds %q after EncryptIdentityFile, want only %q", names, IdentityFile)
	}

	again, encrypted, err := ReadIdentityFileWithPassphrase(dir, pass)
	if err != nil {
		t.Fatal(err)
	}
	if !encrypted || again.PublicID() != id.PublicID() {
		t.Errorf("after EncryptIdentityFile: encrypted = %v, identity %s, want true and %s", encrypted, again.PublicID(), id.PublicID())
	}

	// An encrypted file is left alone, whatever passphrase is given.
	if err := EncryptIdentityFile(dir, keyring.NewPassphrase("another")); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, path), sealed) {
		t.Error("EncryptIdentityFile of an encrypted file rewrote it")
	}
}

// TestEncryptedIdentityFileMoved opens a sealed identity copied to another
// profile folder, which works because the associated data is a fixed label
// rather than the path.
func TestEncryptedIdentityFileMoved(t *testing.T) {
	from := filepath.Join(t.TempDir(), "old")
	pass := keyring.NewPassphrase("correct horse battery staple")
	id, err := CreateIdentityFileWithPassphrase(from, pass)
	if err != nil {
		t.Fatal(err)
	}
	to := t.TempDir()
	if err := os.WriteFile(filepath.Join(to, IdentityFile), readFile(t, filepath.Join(from, IdentityFile)), 0o600); err != nil {
		t.Fatal(err)
	}
	moved, _, err := ReadIdentityFileWithPassphrase(to, pass)
	if err != nil {
		t.Fatal(err)
	}
	if moved.PublicID() != id.PublicID() {
		t.Errorf("moved identity %s, want %s", moved.PublicID(), id.PublicID())
	}
}

func TestEncryptedIdentityFileTampered(t *testing.T) {
	dir := t.TempDir()
	pass := keyring.NewPassphrase("correct horse battery staple")
	if _, err := CreateIdentityFileWithPassphrase(dir, pass); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, IdentityFile)
	b := readFile(t, path)
	b[len(b)-1] ^= 1 // inside the AEAD tag
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadIdentityFileWithPassphrase(dir, pass); !errors.Is(err, keyring.ErrWrongPassphrase) {
		t.Errorf("tampered file: err = %v, want keyring.ErrWrongPassphrase", err)
	}
}

// TestEncryptedIdentityFileOldReader decodes a version-2 file as a build
// that reads only version 1 does, which must name the version rather than
// fail inside the decoder.
func TestEncryptedIdentityFileOldReader(t *testing.T) {
	dir := t.TempDir()
	if _, err := CreateIdentityFileWithPassphrase(dir, keyring.NewPassphrase("correct horse battery staple")); err != nil {
		t.Fatal(err)
	}
	_, err := UnmarshalIdentity(readFile(t, filepath.Join(dir, IdentityFile)))
	if err == nil || !strings.Contains(err.Error(), "version 2") {
		t.Errorf("version-1 decoder on a version-2 file: err = %v, want it to name version 2", err)
	}
}

func TestIdentityFileInvalid(t *testing.T) {
	future, err := msgpack.Marshal([]any{3, "keychain", []byte{1, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	unknownMethod, err := msgpack.Marshal(&sealedIdentityRecord{Version: identityVersionEncrypted, Method: "keychain", Sealed: []byte{1}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		file []byte
		want string
	}{
		{"empty", nil, "not a versioned record"},
		{"text", []byte("hello"), "not a versioned record"},
		{"future version", future, "version 3"},
		{"unknown method", unknownMethod, `"keychain"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, IdentityFile), c.file, 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := ReadIdentityFileWithPassphrase(dir, keyring.NewPassphrase("x"))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("ReadIdentityFileWithPassphrase: err = %v, want it to mention %s", err, c.want)
			}
		})
	}
}
