package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestInviteJoinFlow scripts a therapist inviting a client by link: the
// client joins, both see one comparison code, the client reads the
// journal, and the link does not work a second time.
func TestInviteJoinFlow(t *testing.T) {
	relayURL := startTestRelay(t)
	therapist := filepath.Join(t.TempDir(), "therapist")
	patient := filepath.Join(t.TempDir(), "patient")
	stranger := filepath.Join(t.TempDir(), "stranger")
	for _, p := range []string{therapist, patient, stranger} {
		run(t, "id", "new", "--profile", p)
	}

	doc := strings.TrimSpace(run(t, "doc", "new", "--profile", therapist))
	run(t, "doc", "write", "--profile", therapist, doc, "First", "session.")
	run(t, "sync", "--profile", therapist, "--relay", relayURL)
	link := strings.TrimSpace(run(t, "doc", "invite", "--profile", therapist, "--relay", relayURL, doc))
	if !strings.Contains(link, "#invite=") {
		t.Fatalf("doc invite printed %q, want a link with the secret after #invite=", link)
	}

	joined := run(t, "doc", "join", "--profile", patient, "--relay", relayURL, link)
	code, ok := strings.CutPrefix(strings.TrimSpace(joined), "comparison code ")
	if !ok {
		t.Fatalf("doc join printed %q, want the comparison code", joined)
	}
	var stdout, stderr bytes.Buffer
	err := Run(context.Background(), []string{"doc", "join", "--profile", stranger, "--relay", relayURL, link}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "invitation_used") {
		t.Fatalf("second doc join of one link: err = %v, want invitation_used", err)
	}

	run(t, "sync", "--profile", therapist, "--relay", relayURL)
	members := run(t, "doc", "members", "--profile", therapist, doc)
	if !strings.Contains(members, "accepted\tcomparison code "+code) {
		t.Fatalf("doc members = %q, want the invitation accepted with code %s", members, code)
	}
	// The patient joined under its key for this document, which its own
	// listing names, and not under the device id 'id show' prints.
	run(t, "sync", "--profile", patient, "--relay", relayURL)
	patientID := ""
	for _, line := range strings.Split(run(t, "doc", "members", "--profile", patient, doc), "\n") {
		if rest, ok := strings.CutPrefix(line, "this device\t"); ok {
			patientID = rest[strings.LastIndex(rest, "\t")+1:]
		}
	}
	if patientID == "" {
		t.Fatal("doc members on the patient's device names no id for this device")
	}
	if deviceID := strings.TrimSpace(run(t, "id", "show", "--profile", patient)); patientID == deviceID {
		t.Error("the patient joined the document under its device id")
	}
	listed := false
	for _, line := range strings.Split(members, "\n") {
		if strings.HasSuffix(line, "\t"+patientID) {
			listed = true
			if !strings.HasPrefix(line, "member\twriter\t") {
				t.Errorf("doc members line for the patient = %q, want a writer", line)
			}
		}
	}
	if !listed {
		t.Errorf("doc members = %q, want a line ending in the patient's public id, which doc remove takes", members)
	}
	if got := run(t, "doc", "cat", "--profile", patient, doc); got != "First session.\n" {
		t.Fatalf("doc cat on the patient's device = %q, want %q", got, "First session.\n")
	}

	// Removing the patient by the id the list shows works; afterwards the
	// patient's sync succeeds and reports the removal, and its copy stays.
	run(t, "doc", "remove", "--profile", therapist, doc, patientID)
	run(t, "sync", "--profile", therapist, "--relay", relayURL)
	if got := run(t, "sync", "--profile", patient, "--relay", relayURL); !strings.Contains(got, doc+"\tremoved") {
		t.Errorf("sync on the removed patient's device printed %q, want the document marked removed", got)
	}
	if got := run(t, "doc", "list", "--profile", patient); !strings.Contains(got, doc+"\tremoved") {
		t.Errorf("doc list on the removed patient's device = %q, want the document marked removed", got)
	}
	if got := run(t, "doc", "cat", "--profile", patient, doc); got != "First session.\n" {
		t.Errorf("doc cat after the removal = %q, want the copy kept", got)
	}
}

// TestGarbledLinkRejectedAtJoin joins with a link whose inviter keys
// were changed in transit. The link names an invitation that was never
// made, so the relay rejects the response at once and the real link
// still works.
func TestGarbledLinkRejectedAtJoin(t *testing.T) {
	relayURL := startTestRelay(t)
	therapist := filepath.Join(t.TempDir(), "therapist")
	patient := filepath.Join(t.TempDir(), "patient")
	for _, p := range []string{therapist, patient} {
		run(t, "id", "new", "--profile", p)
	}
	doc := strings.TrimSpace(run(t, "doc", "new", "--profile", therapist))
	run(t, "sync", "--profile", therapist, "--relay", relayURL)
	link := strings.TrimSpace(run(t, "doc", "invite", "--profile", therapist, "--relay", relayURL, doc))

	// The last characters encode the inviter's keys and the document id,
	// which the invitation's id covers.
	garbled := []byte(link)
	at := len(garbled) - 5
	if garbled[at] == 'A' {
		garbled[at] = 'B'
	} else {
		garbled[at] = 'A'
	}
	var stdout, stderr bytes.Buffer
	err := Run(context.Background(), []string{"doc", "join", "--profile", patient, "--relay", relayURL, string(garbled)}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "not_found") {
		t.Fatalf("doc join of a garbled link: err = %v, want not_found", err)
	}
	run(t, "doc", "join", "--profile", patient, "--relay", relayURL, link)
	run(t, "sync", "--profile", therapist, "--relay", relayURL)
	if err := Run(context.Background(), []string{"sync", "--profile", therapist, "--relay", relayURL}, &stdout, &stderr); err != nil || strings.Contains(stderr.String(), "refused") {
		t.Errorf("therapist sync after the real answer: err %v, stderr %q, want no refused invitation", err, stderr.String())
	}
	run(t, "sync", "--profile", patient, "--relay", relayURL)
	if got := run(t, "doc", "list", "--profile", patient); !strings.Contains(got, doc) {
		t.Errorf("doc list on the patient's device = %q, want the document", got)
	}
}
