package client_test

import (
	"context"
	"testing"
	"time"

	"interlude/client"
	"interlude/sync/envelope"
	"interlude/sync/wire"
)

// TestSentEnvelopeNotSealedAgain checks that a sent envelope is never
// sealed again. One whose acknowledgement was lost may be stored on the
// relay, so after a removal it is sent again unchanged, and the relay
// takes it as a retry.
func TestSentEnvelopeNotSealedAgain(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	admin, adminProxy := h.member()
	removed := newClient(t, h.relay.url(), h.clientLogs)
	writer, proxy := h.member()

	doc, err := admin.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*client.Client{removed, writer} {
		share(t, ctx, admin, doc, m)
	}
	syncAll(t, ctx, admin, removed, writer)

	// 1. The writer's edit reaches the relay, but the acknowledgement
	//    does not reach the writer.
	if err := writer.SetText(ctx, doc, "sent once"); err != nil {
		t.Fatal(err)
	}
	proxy.set(func(m wire.Message) []wire.Message {
		if _, ok := m.(*wire.Ack); ok {
			return nil
		}
		return []wire.Message{m}
	}, nil)
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	err = writer.SyncOnce(short)
	cancel()
	if err == nil {
		t.Fatal("SyncOnce returned no error although every acknowledgement was dropped")
	}
	proxy.set(nil, nil)

	// 2. A removal starts epoch 2 before the writer syncs again.
	if err := admin.RemoveMember(ctx, doc, memberKey(t, removed, doc)); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, admin)

	// 3. The writer's retry is the same envelope, which the relay
	//    acknowledges; a sealed-again one would be refused as another
	//    envelope with a stored sequence number.
	syncAll(t, ctx, writer, admin)
	mustText(t, admin, doc, "sent once")
	if n := client.OutboxLenForTest(writer, doc); n != 0 {
		t.Errorf("the writer's outbox holds %d envelopes after the retry, want 0", n)
	}
	author := [32]byte(memberKey(t, writer, doc))
	found := false
	for _, raw := range adminProxy.deliveredEnvelopes() {
		env, err := envelope.Unmarshal(raw)
		if err != nil {
			t.Fatal(err)
		}
		if env.Author == author {
			found = true
			if env.Epoch != 1 {
				t.Errorf("the admin got the writer's envelope under epoch %d, want the 1 it was sent under", env.Epoch)
			}
		}
	}
	if !found {
		t.Error("the admin got no envelope of the writer")
	}
}
