package client_test

import (
	"context"
	"testing"
	"time"

	"interlude/client"
)

// TestSharedNoticeBringsDocument runs two clients with the timed relist
// taken out of play and has one share a journal with the other: the
// offer, the reply, the addition and the journal each arrive through the
// relay's Shared notice alone.
func TestSharedNoticeBringsDocument(t *testing.T) {
	defer client.SetRelistIntervalForTest(time.Hour)()
	h := newHarness(t)
	therapist := newClient(t, h.relay.url(), h.clientLogs)
	patient := newClient(t, h.relay.url(), h.clientLogs)

	ctx, cancel := context.WithCancel(h.ctx)
	done := make(chan error, 1)
	go func() { done <- patient.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	waitFor(t, "the patient's session started", func() bool { return patient.Status([16]byte{}).Connected })

	doc, err := therapist.CreateDocument(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := therapist.SetText(h.ctx, doc, "week 3"); err != nil {
		t.Fatal(err)
	}
	if err := therapist.Share(h.ctx, doc, patient.Identity().Public()); err != nil {
		t.Fatal(err)
	}
	therapistDone := make(chan error, 1)
	go func() { therapistDone <- therapist.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-therapistDone
	})
	waitFor(t, "the shared journal reached the running client", func() bool {
		got, err := patient.Text(doc)
		return err == nil && got == "week 3"
	})
}
