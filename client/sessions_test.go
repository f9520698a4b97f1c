package client_test

import (
	"context"
	"testing"
)

// TestSecondSessionKeepsStatus runs the client's long session and a
// SyncOnce beside it, as the web app does for an invitation: when the
// short session ends, the document must still show connected and synced,
// because the long session still is.
func TestSecondSessionKeepsStatus(t *testing.T) {
	h := newHarness(t)
	c := newClient(t, h.relay.url(), h.clientLogs)
	doc, err := c.CreateDocument(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetText(h.ctx, doc, "entry"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(h.ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	waitFor(t, "the long session synced the document", func() bool { return c.Status(doc).Synced })

	if err := c.SyncOnce(h.ctx); err != nil {
		t.Fatal(err)
	}
	if st := c.Status(doc); !st.Connected || !st.Synced {
		t.Errorf("after a second session ended, status is %+v; want connected and synced, as the long session still is", st)
	}
}
