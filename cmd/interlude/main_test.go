package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"interlude/relay"
)

// run runs the command line and returns its standard output.
func run(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if err := Run(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("interlude %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

func startTestRelay(t *testing.T) string {
	t.Helper()
	srv, err := relay.Open(relay.Config{DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return "ws://" + ln.Addr().String() + "/v1/sync"
}

// TestSecondDeviceFlow scripts what a therapist's second device does: make
// an identity, receive a journal shared with its public id, sync and print.
func TestSecondDeviceFlow(t *testing.T) {
	relayURL := startTestRelay(t)
	patient := filepath.Join(t.TempDir(), "patient")
	therapist := filepath.Join(t.TempDir(), "therapist")

	run(t, "id", "new", "--profile", patient)
	therapistID := strings.TrimSpace(run(t, "id", "new", "--profile", therapist))
	if shown := strings.TrimSpace(run(t, "id", "show", "--profile", therapist)); shown != therapistID {
		t.Fatalf("id show = %s, id new printed %s", shown, therapistID)
	}

	doc := strings.TrimSpace(run(t, "doc", "new", "--profile", patient))
	run(t, "doc", "write", "--profile", patient, doc, "Slept", "well.")
	if out := run(t, "doc", "share", "--profile", patient, doc, therapistID); !strings.Contains(out, "offered "+doc) {
		t.Errorf("doc share printed %q, want the offer of %s", out, doc)
	}
	// The share is an offer: the therapist's device replies with its key
	// for the journal, and the patient's device adds that key. Until then
	// the patient's device shows the offer waiting.
	var stdout, stderr bytes.Buffer
	if err := Run(context.Background(), []string{"sync", "--profile", patient, "--relay", relayURL}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), "offered to") {
		t.Errorf("sync after a share wrote %q to stderr, want the offer waiting for a reply", stderr.String())
	}
	if members := run(t, "doc", "members", "--profile", patient, doc); !strings.Contains(members, "offer\twriter\t") {
		t.Errorf("doc members after a share = %q, want the offer listed", members)
	}
	run(t, "sync", "--profile", therapist, "--relay", relayURL)
	run(t, "sync", "--profile", patient, "--relay", relayURL)
	if members := run(t, "doc", "members", "--profile", patient, doc); strings.Contains(members, "offer\t") {
		t.Errorf("doc members after the reply = %q, want no offer waiting", members)
	}
	// Sharing again with a member is refused, instead of adding a key
	// that opens nothing.
	stdout.Reset()
	stderr.Reset()
	err := Run(context.Background(), []string{"doc", "share", "--profile", patient, doc, therapistID}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "member of document") {
		t.Errorf("sharing again with a member: err = %v, want it refused as a member already", err)
	}

	synced := run(t, "sync", "--profile", therapist, "--relay", relayURL)
	if !strings.Contains(synced, doc) {
		t.Fatalf("therapist sync listed %q, want document %s", synced, doc)
	}
	if got := run(t, "doc", "cat", "--profile", therapist, doc); got != "Slept well.\n" {
		t.Fatalf("doc cat = %q, want %q", got, "Slept well.\n")
	}
	if list := run(t, "doc", "list", "--profile", therapist); !strings.Contains(list, doc+"\tsynced") {
		t.Fatalf("doc list = %q, want %s with nothing pending", list, doc)
	}
}

func TestCommandErrors(t *testing.T) {
	profile := t.TempDir()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"doc", "cat", "--profile", profile, "abc"}, "invalid document id"},
		{[]string{"doc", "new", "--profile", profile}, "id new"},
		{[]string{"sync", "--profile", profile}, "id new"},
		{[]string{"doc", "share", "--profile", profile, "00000000000000000000000000000000", "nope"}, "invalid public id"},
		{[]string{"bench", "trace", "--batch", "0", "x.json.gz"}, "invalid --batch 0"},
	}
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		err := Run(context.Background(), c.args, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("interlude %s: err = %v, want it to mention %q", strings.Join(c.args, " "), err, c.want)
		}
	}
	withID := filepath.Join(t.TempDir(), "profile")
	run(t, "id", "new", "--profile", withID)
	var out, msgs bytes.Buffer
	err := Run(context.Background(), []string{"doc", "cat", "--profile", withID, "00000000000000000000000000000000"}, &out, &msgs)
	if err == nil || !strings.Contains(err.Error(), "interlude sync") {
		t.Errorf("doc cat of an unknown document: err = %v, want a hint to run 'interlude sync'", err)
	}

	var stdout, stderr bytes.Buffer
	if err := Run(context.Background(), nil, &stdout, &stderr); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("no arguments: err = %v, want flag.ErrHelp", err)
	}
}

// TestEncryptedProfile keeps a profile's store encrypted under a
// passphrase: the journal reads back with it, not without it, and the
// store's files do not contain the words.
func TestEncryptedProfile(t *testing.T) {
	profile := filepath.Join(t.TempDir(), "profile")
	pass := filepath.Join(t.TempDir(), "passphrase")
	if err := os.WriteFile(pass, []byte("correct horse battery staple\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, "id", "new", "--profile", profile)
	doc := strings.TrimSpace(run(t, "doc", "new", "--profile", profile, "--passphrase-file", pass))
	run(t, "doc", "write", "--profile", profile, "--passphrase-file", pass, doc, "marker-5c1e", "slept", "well")
	if got := run(t, "doc", "cat", "--profile", profile, "--passphrase-file", pass, doc); got != "marker-5c1e slept well\n" {
		t.Fatalf("doc cat with the passphrase = %q", got)
	}

	var stdout, stderr bytes.Buffer
	err := Run(context.Background(), []string{"doc", "cat", "--profile", profile, doc}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "--passphrase-file") {
		t.Errorf("doc cat without the passphrase: err = %v, want a hint to pass --passphrase-file", err)
	}
	wrong := filepath.Join(t.TempDir(), "wrong")
	if err := os.WriteFile(wrong, []byte("not it\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = Run(context.Background(), []string{"doc", "cat", "--profile", profile, "--passphrase-file", wrong, doc}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "does not unlock") {
		t.Errorf("doc cat with a wrong passphrase: err = %v, want it to say the passphrase does not unlock the store", err)
	}

	files := 0
	err = filepath.WalkDir(filepath.Join(profile, "store"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte("marker-5c1e")) {
			t.Errorf("%s contains the journal's words", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatal("no store files: the scan checked nothing")
	}
}

// TestCommandLineMistakes checks the messages for three common slips: a
// command group without its command, a flag after the arguments, and an
// unknown flag, which the flag package reports once with the usage.
func TestCommandLineMistakes(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := Run(context.Background(), []string{"doc"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), `"doc new"`) {
		t.Errorf("doc alone: err = %v, want it to name a doc command", err)
	}

	profile := filepath.Join(t.TempDir(), "p")
	run(t, "id", "new", "--profile", profile)
	doc := strings.TrimSpace(run(t, "doc", "new", "--profile", profile))
	err = Run(context.Background(), []string{"doc", "cat", doc, "--profile", profile}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "put flags first") {
		t.Errorf("flag after the document id: err = %v, want it to say to put flags first", err)
	}
	// Text that merely starts with a dash is not taken for a flag, and
	// after "--" not even a flag's name is.
	run(t, "doc", "write", "--profile", profile, doc, "-5", "mood")
	run(t, "doc", "write", "--profile", profile, "--", doc, "-profile")
	if got := run(t, "doc", "cat", "--profile", profile, doc); got != "-5 mood-profile\n" {
		t.Errorf("doc cat = %q, want the text written", got)
	}

	stderr.Reset()
	err = Run(context.Background(), []string{"doc", "cat", "--bogus"}, &stdout, &stderr)
	var fe *flagError
	if !errors.As(err, &fe) {
		t.Errorf("unknown flag: err = %v, want a flagError that main does not print again", err)
	}
	if n := strings.Count(stderr.String(), "-bogus"); n != 1 {
		t.Errorf("stderr names the unknown flag %d times, want once:\n%s", n, stderr.String())
	}
}
