package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"interlude/relay"
)

// TestRelayAuditCommand runs a relay with some traffic, stops it, and
// checks its audit log with the command: the head it prints is accepted
// as an anchor by a later check, and an anchor that names another hash
// fails it.
func TestRelayAuditCommand(t *testing.T) {
	data := t.TempDir()
	srv, err := relay.Open(relay.Config{DataDir: data, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	relayURL := "ws://" + ln.Addr().String() + "/v1/sync"
	profile := filepath.Join(t.TempDir(), "p")
	run(t, "id", "new", "--profile", profile)
	doc := strings.TrimSpace(run(t, "doc", "new", "--profile", profile))
	run(t, "doc", "write", "--profile", profile, doc, "Audit", "me.")
	run(t, "sync", "--profile", profile, "--relay", relayURL)
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	head := strings.TrimSpace(run(t, "relay", "audit", "--data", data))
	anchor, err := relay.ParseAuditAnchor(head)
	if err != nil {
		t.Fatalf("relay audit printed %q: %v", head, err)
	}
	if anchor.Seq < 2 {
		t.Errorf("audit head is record %d, want the records of an authentication and a push at least", anchor.Seq)
	}
	if again := strings.TrimSpace(run(t, "relay", "audit", "--data", data, "--anchor", head)); again != head {
		t.Errorf("second check printed %q, want the same head %q", again, head)
	}

	anchor.Hash[0] ^= 1
	var stdout, stderr bytes.Buffer
	err = Run(context.Background(), []string{"relay", "audit", "--data", data, "--anchor", anchor.String()}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "fails its check") {
		t.Errorf("relay audit with a wrong anchor: err = %v, want the check to fail", err)
	}
	if err := Run(context.Background(), []string{"relay", "audit", "--data", filepath.Join(data, "missing")}, &stdout, &stderr); err == nil {
		t.Error("relay audit of a missing directory succeeded")
	}
}
