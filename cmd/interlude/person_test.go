package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestPersonShareFlow has a client start a person on a laptop and link a
// phone, and a therapist share a journal with the person id. Both of the
// client's devices read it, then the phone is removed as lost, which
// revokes it in the person's sigchain.
func TestPersonShareFlow(t *testing.T) {
	relayURL := startTestRelay(t)
	dir := t.TempDir()
	laptop, phone, therapist := filepath.Join(dir, "laptop"), filepath.Join(dir, "phone"), filepath.Join(dir, "therapist")
	for _, p := range []string{laptop, phone, therapist} {
		run(t, "id", "new", "--profile", p)
	}
	var stdout, stderr bytes.Buffer
	if err := Run(context.Background(), []string{"id", "show", "--profile", phone}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	phoneID, fingerprint := strings.TrimSpace(stdout.String()), fingerprintIn(t, stderr.String())
	run(t, "device", "link", "--profile", laptop, "--relay", relayURL, "--fingerprint", fingerprint, phoneID)

	person := strings.TrimSpace(run(t, "id", "person", "--profile", laptop))
	if !strings.HasPrefix(person, "ilp1") {
		t.Fatalf("id person printed %q, want a person id", person)
	}
	if again := strings.TrimSpace(run(t, "id", "person", "--profile", laptop)); again != person {
		t.Errorf("id person printed %q the second time, want %q", again, person)
	}
	run(t, "sync", "--profile", laptop, "--relay", relayURL)
	// The phone did not link the laptop, so it only shows the request.
	stdout.Reset()
	stderr.Reset()
	if err := Run(context.Background(), []string{"sync", "--profile", phone, "--relay", relayURL}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	laptopID := strings.TrimSpace(run(t, "id", "show", "--profile", laptop))
	if !strings.Contains(stderr.String(), "added this device to its person "+person) || !strings.Contains(stderr.String(), laptopID) {
		t.Fatalf("sync on the phone wrote %q, want the laptop's link request", stderr.String())
	}
	laptopFingerprint := fingerprintIn(t, stderr.String())
	run(t, "device", "link", "--profile", phone, "--relay", relayURL, "--fingerprint", laptopFingerprint, laptopID)
	for range 2 {
		run(t, "sync", "--profile", laptop, "--relay", relayURL)
		run(t, "sync", "--profile", phone, "--relay", relayURL)
	}
	if got := strings.TrimSpace(run(t, "id", "person", "--profile", phone)); got != person {
		t.Fatalf("id person on the linked phone = %q, want the laptop's %q", got, person)
	}

	doc := strings.TrimSpace(run(t, "doc", "new", "--profile", therapist))
	run(t, "doc", "write", "--profile", therapist, doc, "Notice", "three", "good", "things.")
	if out := run(t, "doc", "share", "--profile", therapist, doc, person); !strings.Contains(out, "shared "+doc+" with person") {
		t.Errorf("doc share with a person printed %q", out)
	}
	for range 3 {
		for _, p := range []string{therapist, laptop, phone} {
			run(t, "sync", "--profile", p, "--relay", relayURL)
		}
	}
	for name, p := range map[string]string{"laptop": laptop, "phone": phone} {
		if got := run(t, "doc", "cat", "--profile", p, doc); got != "Notice three good things.\n" {
			t.Errorf("doc cat on the %s = %q, want the therapist's text", name, got)
		}
	}

	if out := run(t, "device", "remove", "--profile", laptop, "--relay", relayURL, fingerprint); !strings.Contains(out, "revoked device "+fingerprint+" in your person") {
		t.Errorf("device remove printed %q, want the revocation in the person", out)
	}
	run(t, "sync", "--profile", laptop, "--relay", relayURL)
	stdout.Reset()
	stderr.Reset()
	if err := Run(context.Background(), []string{"id", "person", "--profile", laptop}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), "generation 2") || !strings.Contains(stderr.String(), fingerprint+"\tdevice\trevoked") {
		t.Errorf("id person after removing the phone wrote %q, want the phone revoked at generation 2", stderr.String())
	}

	// The removed phone prints a warning on its next sync, and cannot be
	// linked again under the same keys.
	stdout.Reset()
	stderr.Reset()
	if err := Run(context.Background(), []string{"sync", "--profile", phone, "--relay", relayURL}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), "removed this device as lost") {
		t.Errorf("sync on the removed phone wrote %q, want the removal named", stderr.String())
	}
	err := Run(context.Background(), []string{"device", "link", "--profile", laptop, "--relay", relayURL, "--fingerprint", fingerprint, phoneID}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "removed from your person as lost") || !strings.Contains(err.Error(), "id new") {
		t.Errorf("device link of the removed phone: err = %v, want it refused with how to use the device again", err)
	}

	for _, bad := range []string{"ilp1short", "ILP1short"} {
		err := Run(context.Background(), []string{"doc", "share", "--profile", therapist, doc, bad}, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), "invalid person id") || !strings.Contains(err.Error(), "id person") {
			t.Errorf("doc share with person id %q: err = %v, want an invalid person id and where to copy it from", bad, err)
		}
	}
	err = Run(context.Background(), []string{"device", "link", "--profile", laptop, "--fingerprint", fingerprint, person}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "is a person id") {
		t.Errorf("device link with a person id: err = %v, want it named as a person id", err)
	}

	// A share with a well-formed id that no person has goes nowhere, and
	// sync prints that.
	nobody := "ilp1" + strings.Repeat("A", 43)
	run(t, "doc", "share", "--profile", therapist, doc, nobody)
	stdout.Reset()
	stderr.Reset()
	if err := Run(context.Background(), []string{"sync", "--profile", therapist, "--relay", relayURL}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), "not sent: the relay has no person with this id") {
		t.Errorf("sync after a share with an unknown person wrote %q, want the share named as not sent", stderr.String())
	}
}
