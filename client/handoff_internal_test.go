package client

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// TestHandoffMessageChecks seals a message to one device's inbox slot
// and checks that it opens only there: not from another slot, not for
// another device, not after a byte changes, and not when the sender's
// key inside is swapped for another's.
func TestHandoffMessageChecks(t *testing.T) {
	sender, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	to, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	slot0, err := inboxSlot(to.public, 0)
	if err != nil {
		t.Fatal(err)
	}
	slot1, err := inboxSlot(to.public, 1)
	if err != nil {
		t.Fatal(err)
	}
	if slot0 == slot1 {
		t.Fatal("two slots of one inbox have the same id")
	}
	if s, _ := inboxSlot(other.public, 0); s == slot0 {
		t.Fatal("two devices' inboxes share a slot id")
	}
	items := []handoffItem{{Kind: itemOffer, Doc: make([]byte, 16), Sign: bytes.Repeat([]byte{7}, 32), Box: bytes.Repeat([]byte{8}, 32)}}
	msg, err := sender.sealHandoff(to.public, slot0, items)
	if err != nil {
		t.Fatal(err)
	}
	body, err := to.openHandoff(slot0, msg)
	if err != nil {
		t.Fatalf("the message does not open in its slot: %v", err)
	}
	if !bytes.Equal(body.Sender, sender.public.Sign) || len(body.Items) != 1 || body.Items[0].Kind != itemOffer {
		t.Errorf("opened message = %+v, want the sender's one offer", body)
	}

	if _, err := to.openHandoff(slot1, msg); !errors.Is(err, errHandoff) {
		t.Errorf("the message opens from another slot: %v", err)
	}
	if _, err := other.openHandoff(slot0, msg); !errors.Is(err, errHandoff) {
		t.Errorf("the message opens for another device: %v", err)
	}
	changed := bytes.Clone(msg)
	changed[len(changed)/2] ^= 1
	if _, err := to.openHandoff(slot0, changed); !errors.Is(err, errHandoff) {
		t.Errorf("a changed message opens: %v", err)
	}
	// A message sealed to the right device and slot, but signed by
	// another key than the sender it names.
	forged, err := (&Identity{signing: other.signing, boxKey: sender.boxKey, public: sender.public}).sealHandoff(to.public, slot0, items)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := to.openHandoff(slot0, forged); !errors.Is(err, errHandoff) {
		t.Errorf("a message signed by another key than its sender's opens: %v", err)
	}
}

// TestReplyFromStrangerIgnored hands a client a reply to its open
// offer from a device that is not linked: no membership change follows.
// The same reply from the linked device adds its key.
func TestReplyFromStrangerIgnored(t *testing.T) {
	ctx := context.Background()
	id, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(ctx, Config{Store: NewMemoryStore(), Identity: id})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	doc, err := c.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	phone, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	if n, err := c.LinkDevice(ctx, phone.public); err != nil || n != 1 {
		t.Fatalf("LinkDevice = %d, %v; want 1 document offered", n, err)
	}
	key, err := phone.documentKeys(doc)
	if err != nil {
		t.Fatal(err)
	}
	reply := handoffItem{Kind: itemReply, Doc: doc[:], Sign: key.public.Sign, Box: key.public.Box[:]}
	pending := func() int {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.docs[doc].log.ops)
	}
	before := pending()
	if err := c.takeHandoff(ctx, &handoffBody{Sender: stranger.public.Sign, SenderBox: stranger.public.Box[:], Items: []handoffItem{reply}}); err != nil {
		t.Fatal(err)
	}
	if got := pending(); got != before {
		t.Fatalf("a reply from a device that is not linked queued %d changes", got-before)
	}
	// The phone's keys with a stranger's box key are not the phone either.
	if err := c.takeHandoff(ctx, &handoffBody{Sender: phone.public.Sign, SenderBox: stranger.public.Box[:], Items: []handoffItem{reply}}); err != nil {
		t.Fatal(err)
	}
	if got := pending(); got != before {
		t.Fatalf("a reply naming the phone with another box key queued %d changes", got-before)
	}
	if err := c.takeHandoff(ctx, &handoffBody{Sender: phone.public.Sign, SenderBox: phone.public.Box[:], Items: []handoffItem{reply}}); err != nil {
		t.Fatal(err)
	}
	if got := pending(); got != before+1 {
		t.Fatalf("the linked phone's reply queued %d changes, want 1", got-before)
	}
	// A second reply to the same offer adds nothing more.
	if err := c.takeHandoff(ctx, &handoffBody{Sender: phone.public.Sign, SenderBox: phone.public.Box[:], Items: []handoffItem{reply}}); err != nil {
		t.Fatal(err)
	}
	if got := pending(); got != before+1 {
		t.Errorf("a repeated reply queued %d changes, want 1 in all", got-before)
	}
}
