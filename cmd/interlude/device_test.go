package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"interlude/client"
)

// TestDeviceLinkFlow links a therapist's second device: the link needs the
// new device's fingerprint, the second device then reads and writes the
// journal, and removing it from the first device takes it out again.
func TestDeviceLinkFlow(t *testing.T) {
	relayURL := startTestRelay(t)
	laptop := filepath.Join(t.TempDir(), "laptop")
	phone := filepath.Join(t.TempDir(), "phone")
	for _, p := range []string{laptop, phone} {
		run(t, "id", "new", "--profile", p)
	}
	doc := strings.TrimSpace(run(t, "doc", "new", "--profile", laptop))
	run(t, "doc", "write", "--profile", laptop, doc, "Session", "plan.")
	run(t, "sync", "--profile", laptop, "--relay", relayURL)

	phoneID := strings.TrimSpace(run(t, "id", "show", "--profile", phone))
	var stdout, stderr bytes.Buffer
	err := Run(context.Background(), []string{"id", "show", "--profile", phone}, &stdout, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	fingerprint := fingerprintIn(t, stderr.String())

	// Without the fingerprint, or with another one, nothing is linked.
	for _, flags := range [][]string{nil, {"--fingerprint", "0000-0000-0000"}} {
		args := append([]string{"device", "link", "--profile", laptop, "--relay", relayURL}, flags...)
		args = append(args, phoneID)
		stdout.Reset()
		stderr.Reset()
		err := Run(context.Background(), args, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), "id show") {
			t.Errorf("device link with flags %q: err = %v, want an error that points to 'interlude id show'", flags, err)
		}
		// The fingerprint to type must come from the new device's
		// screen, so no error offers it.
		if err != nil && strings.Contains(err.Error(), fingerprint) {
			t.Errorf("device link with flags %q: the error %q shows the fingerprint to type", flags, err)
		}
	}
	if got := run(t, "device", "list", "--profile", laptop); got != "" {
		t.Fatalf("device list after refused links = %q, want nothing", got)
	}

	out := run(t, "device", "link", "--profile", laptop, "--relay", relayURL, "--fingerprint", strings.ToLower(fingerprint), phoneID)
	if !strings.Contains(out, "linked device "+fingerprint+", 1 document offered") {
		t.Errorf("device link printed %q, want one document offered", out)
	}
	if got := run(t, "device", "list", "--profile", laptop); !strings.Contains(got, phoneID+" "+fingerprint) {
		t.Errorf("device list = %q, want the phone", got)
	}
	// The phone answers the offer, the laptop adds the phone's key for
	// the journal, and the phone fetches it.
	run(t, "sync", "--profile", phone, "--relay", relayURL)
	run(t, "sync", "--profile", laptop, "--relay", relayURL)
	run(t, "sync", "--profile", phone, "--relay", relayURL)
	if got := run(t, "doc", "cat", "--profile", phone, doc); got != "Session plan.\n" {
		t.Fatalf("doc cat on the phone = %q, want the laptop's text", got)
	}
	run(t, "doc", "write", "--profile", phone, doc, " Homework:", "sleep", "diary.")
	run(t, "sync", "--profile", phone, "--relay", relayURL)
	run(t, "sync", "--profile", laptop, "--relay", relayURL)
	if got := run(t, "doc", "cat", "--profile", laptop, doc); !strings.Contains(got, "sleep diary") {
		t.Fatalf("doc cat on the laptop = %q, want the phone's words", got)
	}

	// The phone is lost: remove it by fingerprint.
	out = run(t, "device", "remove", "--profile", laptop, "--relay", relayURL, fingerprint)
	if !strings.Contains(out, "removed device "+fingerprint+" from 1 document") {
		t.Errorf("device remove printed %q, want one document", out)
	}
	members := run(t, "doc", "members", "--profile", laptop, doc)
	if strings.Contains(members, phoneID) {
		t.Errorf("doc members after removal = %q, still lists the phone", members)
	}
	if got := run(t, "device", "list", "--profile", laptop); got != "" {
		t.Errorf("device list after removal = %q, want nothing", got)
	}
}

// fingerprintIn returns the fingerprint that id show writes to stderr.
func fingerprintIn(t *testing.T, s string) string {
	t.Helper()
	for _, word := range strings.Fields(s) {
		word = strings.Trim(word, ".,:()")
		if len(word) == 14 && word[4] == '-' && word[9] == '-' {
			return word
		}
	}
	t.Fatalf("no fingerprint in %q", s)
	return ""
}

// TestRecoveryPhraseFlow makes a recovery phrase on a laptop, then brings
// the laptop's journal to a new device with it. The new device reads and
// writes the journal and removes the lost laptop. A wrong phrase is
// rejected, and the error does not quote it.
func TestRecoveryPhraseFlow(t *testing.T) {
	relayURL := startTestRelay(t)
	dir := t.TempDir()
	laptop := filepath.Join(dir, "laptop")
	fresh := filepath.Join(dir, "new")
	for _, p := range []string{laptop, fresh} {
		run(t, "id", "new", "--profile", p)
	}
	doc := strings.TrimSpace(run(t, "doc", "new", "--profile", laptop))
	run(t, "doc", "write", "--profile", laptop, doc, "Thought", "record.")
	run(t, "sync", "--profile", laptop, "--relay", relayURL)

	words := strings.TrimSpace(run(t, "device", "recovery", "--profile", laptop, "--relay", relayURL))
	if n := len(strings.Fields(words)); n != 18 {
		t.Fatalf("device recovery printed %d words, want 18", n)
	}
	laptopID := strings.TrimSpace(run(t, "id", "show", "--profile", laptop))

	// Phrases with two neighbouring words swapped are rejected. The errors
	// of two different swaps must be equal, so neither quotes a word of
	// its phrase, and no two neighbouring words appear in them.
	var messages []string
	fields := strings.Fields(words)
	for i := 0; i+1 < len(fields) && len(messages) < 2; i++ {
		if fields[i] == fields[i+1] {
			continue // swapping equal words would give the right phrase
		}
		swapped := append([]string(nil), fields...)
		swapped[i], swapped[i+1] = swapped[i+1], swapped[i]
		wrong := filepath.Join(dir, "wrong")
		if err := os.WriteFile(wrong, []byte(strings.Join(swapped, " ")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		err := Run(context.Background(), []string{"device", "recover", "--profile", fresh, "--relay", relayURL, "--phrase-file", wrong}, &stdout, &stderr)
		if err == nil {
			t.Fatalf("device recover with words %d and %d swapped succeeded", i+1, i+2)
		}
		messages = append(messages, err.Error()+"\n"+stderr.String())
	}
	if len(messages) != 2 {
		t.Fatalf("found %d swaps of different neighbouring words, want 2", len(messages))
	}
	if messages[0] != messages[1] {
		t.Errorf("two wrong phrases gave different errors, so an error depends on the words:\n%s\n%s", messages[0], messages[1])
	}
	for i := 0; i+1 < len(fields); i++ {
		if pair := fields[i] + " " + fields[i+1]; strings.Contains(messages[0], pair) {
			t.Errorf("the error quotes words %d and %d of the phrase: %s", i+1, i+2, messages[0])
		}
	}

	// The laptop is lost. The right phrase links the new device.
	phrase := filepath.Join(dir, "phrase")
	if err := os.WriteFile(phrase, []byte(words+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := run(t, "device", "recover", "--profile", fresh, "--relay", relayURL, "--phrase-file", phrase)
	if !strings.Contains(out, "linked to 1 document") {
		t.Errorf("device recover printed %q, want one document", out)
	}
	if got := run(t, "doc", "cat", "--profile", fresh, doc); got != "Thought record.\n" {
		t.Fatalf("doc cat on the new device = %q, want the laptop's text", got)
	}
	run(t, "doc", "write", "--profile", fresh, doc, " Evidence", "for", "and", "against.")
	// The recovery names the laptop as a previous device, and removing
	// it by fingerprint removes its key for the journal, with nothing left
	// to check.
	lost, err := client.ParsePublicID(laptopID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "previous device\t"+lost.Fingerprint()) {
		t.Errorf("device recover printed %q, want the laptop listed as a previous device", out)
	}
	before := run(t, "doc", "members", "--profile", fresh, doc)
	var stdout, stderr bytes.Buffer
	if err := Run(context.Background(), []string{"device", "remove", "--profile", fresh, "--relay", relayURL, lost.Fingerprint()}, &stdout, &stderr); err != nil {
		t.Fatalf("device remove of the laptop by fingerprint: %v", err)
	}
	if !strings.Contains(stdout.String(), "from 1 document") || strings.Contains(stderr.String(), "cannot match") {
		t.Errorf("device remove of the laptop printed %q and %q, want one document and nothing to check", stdout.String(), stderr.String())
	}
	if after := run(t, "doc", "members", "--profile", fresh, doc); strings.Count(after, "member\t") != strings.Count(before, "member\t")-1 {
		t.Errorf("doc members after removing the laptop = %q, before %q: want one member fewer", after, before)
	}
	run(t, "sync", "--profile", fresh, "--relay", relayURL)
	if got := run(t, "doc", "cat", "--profile", fresh, doc); !strings.Contains(got, "Evidence for and against.") {
		t.Errorf("doc cat after the write = %q", got)
	}

	// The new device linked the recovery device, so a document made after
	// the recovery is covered by the phrase as well.
	later := strings.TrimSpace(run(t, "doc", "new", "--profile", fresh))
	run(t, "sync", "--profile", fresh, "--relay", relayURL)
	if members := run(t, "doc", "members", "--profile", fresh, later); strings.Count(members, "member\t") != 2 {
		t.Errorf("doc members of a document made after the recovery = %q, want this device and the recovery device", members)
	}
}

// TestRecoveryFromRelayBackup makes a recovery phrase with a backup
// passphrase, then recovers a new device with the passphrase alone: the
// relay's sealed copy of the phrase brings the documents back. A short
// passphrase is refused, and a wrong one finds no backup.
func TestRecoveryFromRelayBackup(t *testing.T) {
	relayURL := startTestRelay(t)
	dir := t.TempDir()
	laptop := filepath.Join(dir, "laptop")
	fresh := filepath.Join(dir, "new")
	for _, p := range []string{laptop, fresh} {
		run(t, "id", "new", "--profile", p)
	}
	doc := strings.TrimSpace(run(t, "doc", "new", "--profile", laptop))
	run(t, "doc", "write", "--profile", laptop, doc, "Mood", "log.")
	run(t, "sync", "--profile", laptop, "--relay", relayURL)

	file := func(name, line string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(line+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	var stdout, stderr bytes.Buffer
	err := Run(context.Background(), []string{"device", "recovery", "--profile", laptop, "--relay", relayURL, "--backup-passphrase-file", file("short", "too short")}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "at least 12") {
		t.Errorf("device recovery with a 9-character backup passphrase: err = %v, want it refused", err)
	}
	// The refusal came before any recovery device was linked.
	if devices := run(t, "device", "list", "--profile", laptop); strings.TrimSpace(devices) != "" {
		t.Errorf("device list after the refused backup passphrase = %q, want no linked device", devices)
	}
	pass := file("pass", "the ferry leaves at dawn on Sundays")
	run(t, "device", "recovery", "--profile", laptop, "--relay", relayURL, "--backup-passphrase-file", pass)

	err = Run(context.Background(), []string{"device", "recover", "--profile", fresh, "--relay", relayURL, "--backup-passphrase-file", file("wrong", "the ferry leaves at dusk on Sundays")}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "no recovery backup found") {
		t.Errorf("device recover with a wrong backup passphrase: err = %v, want no backup found", err)
	}
	out := run(t, "device", "recover", "--profile", fresh, "--relay", relayURL, "--backup-passphrase-file", pass)
	if !strings.Contains(out, "linked to 1 document") {
		t.Errorf("device recover printed %q, want one document", out)
	}
	run(t, "sync", "--profile", fresh, "--relay", relayURL)
	if got := run(t, "doc", "cat", "--profile", fresh, doc); got != "Mood log.\n" {
		t.Errorf("doc cat on the recovered device = %q, want %q", got, "Mood log.\n")
	}
}

// TestMembersLabelsOwnDevices links a phone from a laptop and checks that
// 'doc members' names the person's devices: the linked phone on the
// laptop, and the laptop's document key, which the phone cannot match to
// a device, on the phone.
func TestMembersLabelsOwnDevices(t *testing.T) {
	relayURL := startTestRelay(t)
	dir := t.TempDir()
	laptop, phone := filepath.Join(dir, "laptop"), filepath.Join(dir, "phone")
	for _, p := range []string{laptop, phone} {
		run(t, "id", "new", "--profile", p)
	}
	doc := strings.TrimSpace(run(t, "doc", "new", "--profile", laptop))
	phoneID := strings.TrimSpace(run(t, "id", "show", "--profile", phone))
	var stdout, stderr bytes.Buffer
	if err := Run(context.Background(), []string{"id", "show", "--profile", phone}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	phoneFP := fingerprintIn(t, stderr.String())
	run(t, "device", "link", "--profile", laptop, "--relay", relayURL, "--fingerprint", phoneFP, phoneID)
	for _, p := range []string{phone, laptop, phone} {
		run(t, "sync", "--profile", p, "--relay", relayURL)
	}

	if got := run(t, "doc", "members", "--profile", laptop, doc); !strings.Contains(got, "your linked device\t") || !strings.Contains(got, "device "+phoneFP) {
		t.Errorf("doc members on the laptop = %q, want the phone labelled as a linked device with fingerprint %s", got, phoneFP)
	}
	got := run(t, "doc", "members", "--profile", phone, doc)
	if !strings.Contains(got, "your device, not linked from here\t") {
		t.Errorf("doc members on the phone = %q, want the laptop's key labelled as a device of the person", got)
	}
}
