package client_test

import (
	"context"
	"log/slog"
	"testing"

	"interlude/client"
	"interlude/client/wstransport"
	"interlude/crdt"
)

// openFlaky opens a client whose store fails writes on request, reaching
// the relay at relayURL.
func openFlaky(t *testing.T, h *harness, relayURL string) (*client.Client, *flakyStore) {
	t.Helper()
	id, err := client.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	store := &flakyStore{Store: openStore(t, t.TempDir())}
	c, err := client.Open(h.ctx, client.Config{Store: store, Identity: id, Dialer: wstransport.Dialer{}, RelayURL: relayURL, Logger: slog.New(slog.NewJSONHandler(h.clientLogs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, store
}

// TestFailedDeliveryWriteRefetches makes the store fail while deliveries
// are saved: the next sync fetches them again, and the chain check takes
// them as what they are, not as replays.
func TestFailedDeliveryWriteRefetches(t *testing.T) {
	h := newHarness(t)
	c, store := openFlaky(t, h, h.relay.url())
	doc := h.author.createDoc(c)
	_, u1 := h.author.write(doc, "one-secretword ")
	_, u2 := h.author.write(doc, "two-secretword ")
	// The first sync accepts the shared document, then fails to save the
	// deliveries.
	h.sync(c)
	_, u3 := h.author.write(doc, "three-secretword ")
	store.failing = true
	ctx, cancel := context.WithTimeout(h.ctx, hangGuard)
	err := c.SyncOnce(ctx)
	cancel()
	if err == nil {
		t.Fatal("SyncOnce on a failing store succeeded")
	}
	store.failing = false

	h.sync(c)

	got, err := c.Text(doc)
	if err != nil {
		t.Fatal(err)
	}
	if want := expectedText(t, u1, u2, u3); got != want {
		t.Errorf("text = %q, want %q", got, want)
	}
	if rs := reports(t, c, doc); len(rs) != 0 {
		t.Errorf("reports after a failed write and a refetch: %+v", rs)
	}
}

// TestFailedLocalSaveKeepsChain fails one local edit's write and checks
// that the next edit still chains to the last saved one: the relay,
// which checks the chain, accepts it.
func TestFailedLocalSaveKeepsChain(t *testing.T) {
	h := newHarness(t)
	c, store := openFlaky(t, h, h.relay.url())
	doc, err := c.CreateDocument(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetText(h.ctx, doc, "first-secretword"); err != nil {
		t.Fatal(err)
	}
	h.sync(c)
	store.failing = true
	if err := c.SetText(h.ctx, doc, "lost-secretword"); err == nil {
		t.Fatal("SetText on a failing store succeeded")
	}
	store.failing = false
	if err := c.Edit(h.ctx, doc, func(t *crdt.Text) error { return t.Insert(t.Len(), " second-secretword") }); err != nil {
		t.Fatal(err)
	}

	h.sync(c)

	if st := c.Status(doc); st.Pending != 0 {
		t.Fatalf("%d updates still pending after sync: the relay rejected the chain", st.Pending)
	}
}
