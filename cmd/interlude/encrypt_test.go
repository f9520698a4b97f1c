package main

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestIDEncryptConvertsProfile encrypts a profile made without a
// passphrase. Afterwards no file contains the journal's text or a private
// key in the clear. The journal opens and syncs with the passphrase, and
// no longer opens without it.
func TestIDEncryptConvertsProfile(t *testing.T) {
	relayURL := startTestRelay(t)
	dir := t.TempDir()
	profile := filepath.Join(dir, "p")
	run(t, "id", "new", "--profile", profile)
	keys := plainPrivateKeys(t, readBytes(t, identityPath(profile)))
	doc := strings.TrimSpace(run(t, "doc", "new", "--profile", profile))
	const secret = "Worried about the meeting on Thursday."
	run(t, "doc", "write", "--profile", profile, doc, secret)
	run(t, "sync", "--profile", profile, "--relay", relayURL)
	if !profileContains(t, profile, []byte(secret)) {
		t.Fatal("the unencrypted profile does not hold the text in the clear; the check below would prove nothing")
	}

	pass := filepath.Join(dir, "pass")
	if err := os.WriteFile(pass, []byte("correct horse battery staple\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := run(t, "id", "encrypt", "--profile", profile, "--passphrase-file", pass)
	if !strings.Contains(out, "encrypted this profile") {
		t.Errorf("id encrypt printed %q", out)
	}
	if profileContains(t, profile, []byte(secret)) {
		t.Error("a file of the encrypted profile still holds the text in the clear")
	}
	assertNoPrivateKeys(t, profile, keys)

	if got := run(t, "doc", "cat", "--profile", profile, "--passphrase-file", pass, doc); got != secret+"\n" {
		t.Errorf("doc cat with the passphrase = %q, want the journal", got)
	}
	run(t, "doc", "write", "--profile", profile, "--passphrase-file", pass, doc, " Call on Friday.")
	run(t, "sync", "--profile", profile, "--passphrase-file", pass, "--relay", relayURL)
	var stdout, stderr bytes.Buffer
	if err := Run(context.Background(), []string{"doc", "cat", "--profile", profile, doc}, &stdout, &stderr); err == nil {
		t.Error("doc cat without the passphrase succeeded on an encrypted profile")
	}
	if err := Run(context.Background(), []string{"id", "encrypt", "--profile", profile, "--passphrase-file", pass}, &stdout, &stderr); err == nil {
		t.Error("a second id encrypt succeeded")
	}
}

// TestIDEncryptFinishesAfterCrash leaves a profile as a conversion cut
// short between its two renames would, and checks that the next command
// puts the complete encrypted store in place and deletes the plain one.
func TestIDEncryptFinishesAfterCrash(t *testing.T) {
	dir := t.TempDir()
	profile := filepath.Join(dir, "p")
	run(t, "id", "new", "--profile", profile)
	doc := strings.TrimSpace(run(t, "doc", "new", "--profile", profile))
	run(t, "doc", "write", "--profile", profile, doc, "Before the cut.")
	pass := filepath.Join(dir, "pass")
	if err := os.WriteFile(pass, []byte("correct horse battery staple\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, "id", "encrypt", "--profile", profile, "--passphrase-file", pass)

	// Rebuild the state of a cut: the encrypted store still under its
	// temporary name, and a plain folder aside.
	if err := os.Rename(filepath.Join(profile, storeDir), filepath.Join(profile, storeNewDir)); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(profile, storeOldDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if got := run(t, "doc", "cat", "--profile", profile, "--passphrase-file", pass, doc); got != "Before the cut.\n" {
		t.Errorf("doc cat after the cut = %q, want the journal", got)
	}
	for _, leftover := range []string{storeNewDir, storeOldDir} {
		if _, err := os.Stat(filepath.Join(profile, leftover)); err == nil {
			t.Errorf("%s is still there after the next command", leftover)
		}
	}
}

// profileContains reports whether any file under profile contains b.
func profileContains(t *testing.T, profile string, b []byte) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir(profile, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, b) {
			found = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
