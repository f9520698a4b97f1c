package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"interlude/client"
)

// runErr runs the command line and returns its error, for commands that
// must fail.
func runErr(args ...string) error {
	var stdout, stderr bytes.Buffer
	return Run(context.Background(), args, &stdout, &stderr)
}

func writePassphrase(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "passphrase")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func identityPath(profile string) string { return filepath.Join(profile, client.IdentityFile) }

func readBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// plainPrivateKeys decodes an identity file written in the clear, a
// msgpack array of version, Ed25519 seed and X25519 private key, and
// returns the two keys.
func plainPrivateKeys(t *testing.T, file []byte) [][]byte {
	t.Helper()
	var record []any
	if err := msgpack.Unmarshal(file, &record); err != nil {
		t.Fatal(err)
	}
	if len(record) != 3 {
		t.Fatalf("plain identity record has %d fields, want 3", len(record))
	}
	seed, seedOK := record[1].([]byte)
	boxKey, boxKeyOK := record[2].([]byte)
	if !seedOK || !boxKeyOK || len(seed) != 32 || len(boxKey) != 32 {
		t.Fatalf("plain identity record fields %T and %T are not two 32-byte keys", record[1], record[2])
	}
	return [][]byte{seed, boxKey}
}

// assertNoPrivateKeys fails for every file under profile that contains
// one of keys, and checks that it scanned the identity file.
func assertNoPrivateKeys(t *testing.T, profile string, keys [][]byte) {
	t.Helper()
	scannedIdentity := false
	err := filepath.WalkDir(profile, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if path == identityPath(profile) {
			scannedIdentity = true
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, key := range keys {
			if bytes.Contains(b, key) {
				t.Errorf("%s contains private key %d in the clear", path, i)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !scannedIdentity {
		t.Fatal("the scan did not reach the identity file")
	}
}

// TestIdentityEncryptedOnFirstPassphrase runs a profile made without a
// passphrase with one: the identity file is encrypted in place and then
// needs the passphrase.
func TestIdentityEncryptedOnFirstPassphrase(t *testing.T) {
	profile := filepath.Join(t.TempDir(), "profile")
	pass := writePassphrase(t, "correct horse battery staple\n")
	publicID := strings.TrimSpace(run(t, "id", "new", "--profile", profile))
	keys := plainPrivateKeys(t, readBytes(t, identityPath(profile)))

	doc := strings.TrimSpace(run(t, "doc", "new", "--profile", profile, "--passphrase-file", pass))
	assertNoPrivateKeys(t, profile, keys)
	info, err := os.Stat(identityPath(profile))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("encrypted identity file mode = %v, want 0600", info.Mode().Perm())
	}
	entries, err := os.ReadDir(profile)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != client.IdentityFile && e.Name() != "store" {
			t.Errorf("profile holds %q after encrypting the identity, want only the identity file and the store", e.Name())
		}
	}

	shownID := strings.TrimSpace(run(t, "id", "show", "--profile", profile, "--passphrase-file", pass))
	if shownID != publicID {
		t.Errorf("id show after encrypting = %s, want %s", shownID, publicID)
	}
	run(t, "doc", "write", "--profile", profile, "--passphrase-file", pass, doc, "still", "here")
	if got := run(t, "doc", "cat", "--profile", profile, "--passphrase-file", pass, doc); got != "still here\n" {
		t.Errorf("doc cat = %q, want %q", got, "still here\n")
	}

	for _, args := range [][]string{
		{"id", "show", "--profile", profile},
		{"doc", "list", "--profile", profile},
	} {
		err := runErr(args...)
		if err == nil {
			t.Errorf("interlude %s succeeded without the passphrase", strings.Join(args, " "))
			continue
		}
		if !strings.Contains(err.Error(), "identity file is encrypted") {
			t.Errorf("interlude %s: err = %v, want it to say the identity file is encrypted", strings.Join(args, " "), err)
		}
		if !strings.Contains(err.Error(), "--passphrase-file") {
			t.Errorf("interlude %s: err = %v, want it to name --passphrase-file", strings.Join(args, " "), err)
		}
	}
}

// TestIDNewWithPassphrase makes an identity that is encrypted from the
// start: it opens only with the passphrase, and a wrong one changes
// nothing.
func TestIDNewWithPassphrase(t *testing.T) {
	profile := filepath.Join(t.TempDir(), "profile")
	pass := writePassphrase(t, "correct horse battery staple\n")
	publicID := strings.TrimSpace(run(t, "id", "new", "--profile", profile, "--passphrase-file", pass))
	sealed := readBytes(t, identityPath(profile))

	if _, err := client.ReadIdentityFile(profile); !errors.Is(err, client.ErrIdentityEncrypted) {
		t.Fatalf("identity made with --passphrase-file: ReadIdentityFile err = %v, want ErrIdentityEncrypted", err)
	}
	err := runErr("id", "show", "--profile", profile)
	if err == nil || !strings.Contains(err.Error(), "--passphrase-file") {
		t.Errorf("id show without the passphrase: err = %v, want it to name --passphrase-file", err)
	}
	wrong := writePassphrase(t, "wrong horse\n")
	err = runErr("id", "show", "--profile", profile, "--passphrase-file", wrong)
	if err == nil || !strings.Contains(err.Error(), "does not unlock this profile's identity file") {
		t.Errorf("id show with a wrong passphrase: err = %v, want it to say the passphrase does not unlock the identity file", err)
	}
	err = runErr("doc", "new", "--profile", profile, "--passphrase-file", wrong)
	if err == nil || !strings.Contains(err.Error(), "does not unlock this profile's identity file") {
		t.Errorf("doc new with a wrong passphrase: err = %v, want it to say the passphrase does not unlock the identity file", err)
	}
	if !bytes.Equal(readBytes(t, identityPath(profile)), sealed) {
		t.Error("commands with a wrong passphrase changed the identity file")
	}
	if _, err := os.Stat(filepath.Join(profile, "store")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a wrong passphrase created or opened the store (stat err = %v)", err)
	}

	if shown := strings.TrimSpace(run(t, "id", "show", "--profile", profile, "--passphrase-file", pass)); shown != publicID {
		t.Errorf("id show = %s, id new printed %s", shown, publicID)
	}
}

// TestWrongPassphraseKeepsPlainIdentity checks that a passphrase which
// does not unlock the store leaves a plain identity file unencrypted:
// encrypting it under that passphrase would lock the identity and the
// store under different secrets.
func TestWrongPassphraseKeepsPlainIdentity(t *testing.T) {
	profile := filepath.Join(t.TempDir(), "profile")
	pass := writePassphrase(t, "correct horse battery staple\n")
	wrong := writePassphrase(t, "wrong horse\n")
	run(t, "id", "new", "--profile", profile)
	plain := readBytes(t, identityPath(profile))
	doc := strings.TrimSpace(run(t, "doc", "new", "--profile", profile, "--passphrase-file", pass))

	// Put the plain file back, as a profile whose store was encrypted by a
	// build that kept the identity file in the clear has it.
	if err := os.WriteFile(identityPath(profile), plain, 0o600); err != nil {
		t.Fatal(err)
	}
	err := runErr("doc", "cat", "--profile", profile, "--passphrase-file", wrong, doc)
	if err == nil || !strings.Contains(err.Error(), "does not unlock this profile's store") {
		t.Errorf("doc cat with a wrong passphrase: err = %v, want it to say the passphrase does not unlock the store", err)
	}
	err = runErr("id", "show", "--profile", profile, "--passphrase-file", wrong)
	if err == nil || !strings.Contains(err.Error(), "does not unlock this profile's store") {
		t.Errorf("id show with a wrong passphrase: err = %v, want it to say the passphrase does not unlock the store", err)
	}
	if !bytes.Equal(readBytes(t, identityPath(profile)), plain) {
		t.Fatal("a wrong passphrase changed the plain identity file")
	}

	run(t, "doc", "cat", "--profile", profile, "--passphrase-file", pass, doc)
	assertNoPrivateKeys(t, profile, plainPrivateKeys(t, plain))
}

// TestPassphraseOnPlainStore gives a passphrase to a profile whose store
// already holds data in the clear: the command fails and the identity
// file stays as it was.
func TestPassphraseOnPlainStore(t *testing.T) {
	profile := filepath.Join(t.TempDir(), "profile")
	pass := writePassphrase(t, "correct horse battery staple\n")
	run(t, "id", "new", "--profile", profile)
	run(t, "doc", "new", "--profile", profile)
	plain := readBytes(t, identityPath(profile))

	err := runErr("doc", "list", "--profile", profile, "--passphrase-file", pass)
	if err == nil || !strings.Contains(err.Error(), "without --passphrase-file") {
		t.Errorf("doc list with a passphrase on a plain store: err = %v, want a hint to run without --passphrase-file", err)
	}
	if !bytes.Equal(readBytes(t, identityPath(profile)), plain) {
		t.Error("a passphrase the store rejected changed the identity file")
	}
}

func TestEmptyPassphraseFileRejected(t *testing.T) {
	cases := []struct {
		name string
		text string
	}{
		{"empty", ""},
		{"newline", "\n"},
		{"spaces", "   \n"},
		{"crlf", "\r\n"},
		{"blank first line", " \t\nsecret on the second line\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			profile := filepath.Join(t.TempDir(), "profile")
			pass := writePassphrase(t, c.text)
			err := runErr("id", "new", "--profile", profile, "--passphrase-file", pass)
			if err == nil || !strings.Contains(err.Error(), "write the passphrase as the file's first line") {
				t.Errorf("id new: err = %v, want it to say to write the passphrase on the first line", err)
			}
			if _, err := os.Stat(identityPath(profile)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("id new with an empty passphrase left an identity file (stat err = %v)", err)
			}

			run(t, "id", "new", "--profile", profile)
			plain := readBytes(t, identityPath(profile))
			err = runErr("doc", "new", "--profile", profile, "--passphrase-file", pass)
			if err == nil || !strings.Contains(err.Error(), "write the passphrase as the file's first line") {
				t.Errorf("doc new: err = %v, want it to say to write the passphrase on the first line", err)
			}
			if !bytes.Equal(readBytes(t, identityPath(profile)), plain) {
				t.Error("doc new with an empty passphrase changed the identity file")
			}
		})
	}
}

// TestPassphraseFileLineEndings reads one passphrase from files that end
// its line differently, or not at all.
func TestPassphraseFileLineEndings(t *testing.T) {
	profile := filepath.Join(t.TempDir(), "profile")
	run(t, "id", "new", "--profile", profile, "--passphrase-file", writePassphrase(t, "correct horse\n"))
	for _, text := range []string{"correct horse", "correct horse\r\n", "correct horse\nignored second line\n"} {
		if err := runErr("id", "show", "--profile", profile, "--passphrase-file", writePassphrase(t, text)); err != nil {
			t.Errorf("passphrase file %q: %v", text, err)
		}
	}
}
