package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"log/slog"
	"net"
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
	run(t, "doc", "share", "--profile", patient, doc, therapistID)
	run(t, "sync", "--profile", patient, "--relay", relayURL)

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
