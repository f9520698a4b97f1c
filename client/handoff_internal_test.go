package client

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"interlude/client/keyring"
	"interlude/sync/envelope"
)

// TestHandoffMessageChecks seals a message to one device's inbox slot
// and checks that it opens only there: not from another slot, not for
// another device, not after a byte changes, and not when the sender's
// key inside is swapped for another's.
func TestHandoffMessageChecks(t *testing.T) {
	sender := newTestIdentity(t)
	to := newTestIdentity(t)
	other := newTestIdentity(t)
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
	c := openMemoryClient(t)
	doc, phone := linkedPhone(t, c)
	stranger := newTestIdentity(t)
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

// TestOfferReplyHidesMembership offers a client a document it is a member
// of, once from a device it did not link and once from one it linked.
// Only the linked device gets the key the client is a member under; the
// other gets a key that is neither that one nor the client's document or
// device key, so an offer cannot test whether the client is a member.
func TestOfferReplyHidesMembership(t *testing.T) {
	ctx := context.Background()
	c := openMemoryClient(t)
	id := c.id
	doc, err := c.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	self, err := c.MemberID(doc)
	if err != nil {
		t.Fatal(err)
	}
	stranger := newTestIdentity(t)
	laptop := newTestIdentity(t)
	if _, err := c.LinkDevice(ctx, laptop.public); err != nil {
		t.Fatal(err)
	}
	offer := handoffItem{Kind: itemOffer, Doc: doc[:], Sign: bytes.Repeat([]byte{1}, 32), Box: bytes.Repeat([]byte{2}, 32)}
	replied := func(to *Identity) []byte {
		t.Helper()
		if err := c.takeHandoff(ctx, &handoffBody{Sender: to.public.Sign, SenderBox: to.public.Box[:], Items: []handoffItem{offer}}); err != nil {
			t.Fatal(err)
		}
		v, err := c.store.Get(ctx, peerKey(queuePrefix, to.public.Sign, []byte{itemReply}, doc[:]))
		if err != nil {
			t.Fatalf("no reply queued to %s: %v", to, err)
		}
		var q queuedItem
		if err := msgpack.Unmarshal(v, &q); err != nil {
			t.Fatal(err)
		}
		return q.Item.Sign
	}
	if got := replied(laptop); !bytes.Equal(got, self.Sign) {
		t.Errorf("the reply to the linked laptop names key %x, want the member key %x", got[:6], self.Sign[:6])
	}
	got := replied(stranger)
	for name, key := range map[string][]byte{"member key": self.Sign, "device key": id.public.Sign} {
		if bytes.Equal(got, key) {
			t.Errorf("the reply to a device that is not linked names the client's %s", name)
		}
	}
	if _, ok, _ := c.LinkedDeviceOf(ctx, doc, got); ok {
		t.Error("the stranger's offer recorded a linked device")
	}
}

// TestStrangerOffersBounded has a device that is not linked offer a
// client more made-up documents than maxOfferMarks: the client claims at
// most that many, so offers cannot push its claims past the relay's
// limit. A therapist's real share after the flood still gets claimed,
// the oldest made-up one giving way, and so does a linked device's offer.
func TestStrangerOffersBounded(t *testing.T) {
	ctx := context.Background()
	c := openMemoryClient(t)
	stranger := newTestIdentity(t)
	items := make([]handoffItem, maxOfferMarks+10)
	for i := range items {
		doc := envelope.DocID{byte(i >> 8), byte(i), 0xAA}
		items[i] = handoffItem{Kind: itemOffer, Doc: bytes.Clone(doc[:]), Sign: bytes.Repeat([]byte{1}, 32), Box: bytes.Repeat([]byte{2}, 32)}
	}
	if err := c.takeHandoff(ctx, &handoffBody{Sender: stranger.public.Sign, SenderBox: stranger.public.Box[:], Items: items}); err != nil {
		t.Fatal(err)
	}
	if n, _, err := c.offerMarks(ctx); err != nil || n != maxOfferMarks {
		t.Errorf("claims after %d offers from a stranger = %d, %v; want %d", len(items), n, err, maxOfferMarks)
	}
	therapist := newTestIdentity(t)
	shared := envelope.DocID{0xCC}
	share := handoffItem{Kind: itemOffer, Doc: shared[:], Sign: bytes.Repeat([]byte{3}, 32), Box: bytes.Repeat([]byte{4}, 32)}
	if err := c.takeHandoff(ctx, &handoffBody{Sender: therapist.public.Sign, SenderBox: therapist.public.Box[:], Items: []handoffItem{share}}); err != nil {
		t.Fatal(err)
	}
	if marked, err := c.invitedTo(ctx, shared); err != nil || !marked {
		t.Errorf("a therapist's share after the flood is not claimed: %v, %v", marked, err)
	}
	if n, _, err := c.offerMarks(ctx); err != nil || n != maxOfferMarks {
		t.Errorf("claims after the share = %d, %v; want still %d", n, err, maxOfferMarks)
	}
	laptop := newTestIdentity(t)
	if _, err := c.LinkDevice(ctx, laptop.public); err != nil {
		t.Fatal(err)
	}
	mine := envelope.DocID{0xBB}
	offer := handoffItem{Kind: itemOffer, Doc: mine[:], Sign: bytes.Repeat([]byte{1}, 32), Box: bytes.Repeat([]byte{2}, 32)}
	if err := c.takeHandoff(ctx, &handoffBody{Sender: laptop.public.Sign, SenderBox: laptop.public.Box[:], Items: []handoffItem{offer}}); err != nil {
		t.Fatal(err)
	}
	if marked, err := c.invitedTo(ctx, mine); err != nil || !marked {
		t.Errorf("a linked device's offer beyond the bound is not claimed: %v, %v", marked, err)
	}
}

// TestLinkAgainOffersAgain links a device twice: the second link offers
// every document again, in case the relay lost the first offer.
func TestLinkAgainOffersAgain(t *testing.T) {
	ctx := context.Background()
	c := openMemoryClient(t)
	if _, err := c.CreateDocument(ctx); err != nil {
		t.Fatal(err)
	}
	phone := newTestIdentity(t)
	for i := range 2 {
		if n, err := c.LinkDevice(ctx, phone.public); err != nil || n != 1 {
			t.Errorf("link %d offered %d documents, %v; want 1", i+1, n, err)
		}
	}
}

// TestUnlinkDropsQueuedAddition takes a linked phone's reply, which
// queues the addition of its key, and unlinks the phone before the
// addition is sent: the addition is dropped and nothing stays pending.
func TestUnlinkDropsQueuedAddition(t *testing.T) {
	ctx := context.Background()
	c := openMemoryClient(t)
	doc, phone := linkedPhone(t, c)
	before := c.Status(doc).Pending
	if err := takeReplyFrom(c, phone, doc); err != nil {
		t.Fatal(err)
	}
	if st := c.Status(doc); st.Pending != before+1 {
		t.Fatalf("%d changes pending after the reply, want %d and the addition", st.Pending, before)
	}
	if _, err := c.UnlinkDevice(ctx, phone.public.Sign); err != nil {
		t.Fatalf("UnlinkDevice: %v", err)
	}
	if st := c.Status(doc); st.Pending != before {
		t.Errorf("%d changes pending after the unlink, want %d: the phone's addition must go", st.Pending, before)
	}
}

func openMemoryClient(t *testing.T) *Client {
	t.Helper()
	c, err := Open(context.Background(), Config{Store: NewMemoryStore(), Identity: newTestIdentity(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// newTestIdentity returns a new device identity.
func newTestIdentity(t *testing.T) *Identity {
	t.Helper()
	id, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// linkedPhone creates a document on c and links a new phone, which the
// document is offered to, and returns both.
func linkedPhone(t *testing.T, c *Client) (envelope.DocID, *Identity) {
	t.Helper()
	ctx := context.Background()
	doc, err := c.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	phone := newTestIdentity(t)
	if n, err := c.LinkDevice(ctx, phone.public); err != nil || n != 1 {
		t.Fatalf("LinkDevice = %d, %v; want 1 document offered", n, err)
	}
	return doc, phone
}

// BenchmarkHandoffMessage measures sealing and opening one inbox message
// that offers 50 documents, as linking a device to 50 journals sends.
func BenchmarkHandoffMessage(b *testing.B) {
	sender, err := NewIdentity()
	if err != nil {
		b.Fatal(err)
	}
	to, err := NewIdentity()
	if err != nil {
		b.Fatal(err)
	}
	slot, err := inboxSlot(to.public, 0)
	if err != nil {
		b.Fatal(err)
	}
	items := make([]handoffItem, 50)
	for i := range items {
		items[i] = handoffItem{Kind: itemOffer, Doc: bytes.Repeat([]byte{byte(i)}, 16), Sign: bytes.Repeat([]byte{1}, 32), Box: bytes.Repeat([]byte{2}, 32)}
	}
	b.Run("seal", func(b *testing.B) {
		for b.Loop() {
			if _, err := sender.sealHandoff(to.public, slot, items); err != nil {
				b.Fatal(err)
			}
		}
	})
	msg, err := sender.sealHandoff(to.public, slot, items)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("open", func(b *testing.B) {
		for b.Loop() {
			if _, err := to.openHandoff(slot, msg); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(msg)), "bytes")
	})
}

// TestLinkedRecordsOfOlderVersions decodes link records as the versions
// before offers (two fields) and before recovery roots (three) stored
// them: both must load, or every sync of such a device would fail.
func TestLinkedRecordsOfOlderVersions(t *testing.T) {
	ctx := context.Background()
	c := openMemoryClient(t)
	phone := newTestIdentity(t)
	tablet := newTestIdentity(t)
	type beforeOffers struct {
		_msgpack struct{} `msgpack:",as_array"`
		Sign     []byte
		Box      []byte
	}
	type beforeRoots struct {
		_msgpack struct{} `msgpack:",as_array"`
		Sign     []byte
		Box      []byte
		ByKey    bool
	}
	v2, err := msgpack.Marshal(&beforeOffers{Sign: phone.public.Sign, Box: phone.public.Box[:]})
	if err != nil {
		t.Fatal(err)
	}
	v3, err := msgpack.Marshal(&beforeRoots{Sign: tablet.public.Sign, Box: tablet.public.Box[:], ByKey: true})
	if err != nil {
		t.Fatal(err)
	}
	var b Batch
	b.Put(linkedKey(phone.public.Sign), v2)
	b.Put(linkedKey(tablet.public.Sign), v3)
	if err := c.store.Write(ctx, &b); err != nil {
		t.Fatal(err)
	}
	linked, err := c.LinkedDevices(ctx)
	if err != nil {
		t.Fatalf("LinkedDevices with records of older versions: %v", err)
	}
	byKey := map[string]bool{}
	for _, l := range linked {
		byKey[l.String()] = l.ByKey
	}
	if len(linked) != 2 || byKey[phone.PublicID()] || !byKey[tablet.PublicID()] {
		t.Errorf("linked devices = %v, want the phone by offers and the tablet by key", linked)
	}
	if _, err := decodeLinked([]byte{0x91, 0xc4, 0x00}); err == nil {
		t.Error("a record of one field decodes")
	}
}

// TestOfferRecordOfFirstVersion stores an open offer as the first
// version of offers did, one byte: a reply to it neither fails nor adds
// anything, and linking again makes the offer in the current form.
func TestOfferRecordOfFirstVersion(t *testing.T) {
	ctx := context.Background()
	c := openMemoryClient(t)
	doc, phone := linkedPhone(t, c)
	var b Batch
	b.Put(peerKey(offerPrefix, phone.public.Sign, doc[:]), []byte{1})
	if err := c.store.Write(ctx, &b); err != nil {
		t.Fatal(err)
	}
	before := c.Status(doc).Pending
	if err := takeReplyFrom(c, phone, doc); err != nil {
		t.Fatalf("a reply to an offer of the first version: %v", err)
	}
	if got := c.Status(doc).Pending; got != before {
		t.Errorf("a reply to an offer of the first version queued %d changes", got-before)
	}
	if offers, err := c.Offers(ctx, doc); err != nil || len(offers) != 0 {
		t.Errorf("Offers = %v, %v; want the old offer skipped without error", offers, err)
	}
	if n, err := c.LinkDevice(ctx, phone.public); err != nil || n != 1 {
		t.Errorf("linking again = %d, %v; want the offer made again", n, err)
	}
}

// TestHandoffItemWithoutProof decodes an item as the first version of
// offers encoded it, without Proof, and one with an unknown field count.
func TestHandoffItemWithoutProof(t *testing.T) {
	type firstItem struct {
		_msgpack struct{} `msgpack:",as_array"`
		Kind     uint8
		Doc      []byte
		Sign     []byte
		Box      []byte
	}
	old, err := msgpack.Marshal(&firstItem{Kind: itemOffer, Doc: make([]byte, 16), Sign: bytes.Repeat([]byte{1}, 32), Box: bytes.Repeat([]byte{2}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	var it handoffItem
	if err := msgpack.Unmarshal(old, &it); err != nil {
		t.Fatalf("an item without Proof: %v", err)
	}
	if it.Kind != itemOffer || len(it.Sign) != 32 || it.Proof != nil {
		t.Errorf("decoded item = %+v, want the offer without a proof", it)
	}
	if err := msgpack.Unmarshal([]byte{0x92, 0x01, 0xc0}, &it); err == nil {
		t.Error("an item of two fields decodes")
	}
	// An item of this version, its proof aside, decodes as four fields,
	// which is what versions before proofs take.
	now, err := msgpack.Marshal(&handoffItem{Kind: itemOffer, Doc: make([]byte, 16), Sign: bytes.Repeat([]byte{1}, 32), Box: bytes.Repeat([]byte{2}, 32), Proof: bytes.Repeat([]byte{3}, 64)})
	if err != nil {
		t.Fatal(err)
	}
	var first firstItem
	if err := msgpack.Unmarshal(now, &first); err != nil {
		t.Errorf("an item of this version does not decode as four fields: %v", err)
	}
}

// takeReplyFrom hands c the reply of device from to an offer of doc,
// naming from's document key, as its inbox message would.
func takeReplyFrom(c *Client, from *Identity, doc envelope.DocID) error {
	key, err := from.documentKeys(doc)
	if err != nil {
		return err
	}
	reply := handoffItem{Kind: itemReply, Doc: doc[:], Sign: key.public.Sign, Box: key.public.Box[:]}
	return c.takeHandoff(context.Background(), &handoffBody{Sender: from.public.Sign, SenderBox: from.public.Box[:], Items: []handoffItem{reply}})
}

// TestAcceptedInvitationMarkStays has a stranger offer a document before
// this device accepts an invitation to it, then floods offers: the
// invitation's mark must not be the one that gives way.
func TestAcceptedInvitationMarkStays(t *testing.T) {
	ctx := context.Background()
	c := openMemoryClient(t)
	stranger := newTestIdentity(t)
	doc := envelope.DocID{0xDD}
	offer := func(docs ...envelope.DocID) {
		t.Helper()
		items := make([]handoffItem, len(docs))
		for i, d := range docs {
			items[i] = handoffItem{Kind: itemOffer, Doc: bytes.Clone(d[:]), Sign: bytes.Repeat([]byte{1}, 32), Box: bytes.Repeat([]byte{2}, 32)}
		}
		if err := c.takeHandoff(ctx, &handoffBody{Sender: stranger.public.Sign, SenderBox: stranger.public.Box[:], Items: items}); err != nil {
			t.Fatal(err)
		}
	}
	offer(doc)
	if _, err := c.markInvited(ctx, doc); err != nil {
		t.Fatal(err)
	}
	flood := make([]envelope.DocID, maxOfferMarks+5)
	for i := range flood {
		flood[i] = envelope.DocID{byte(i >> 8), byte(i), 0xEE}
	}
	offer(flood...)
	if marked, err := c.invitedTo(ctx, doc); err != nil || !marked {
		t.Errorf("the accepted invitation's mark gave way to a flood of offers: %v, %v", marked, err)
	}
}

// TestMessageBatchesKeepProofs splits more items than one message takes,
// with the boundary falling between an offer and its proof: every
// message stays within maxHandoffItems, keeps each offer with its proof,
// and no item is lost.
func TestMessageBatchesKeepProofs(t *testing.T) {
	var all []queued
	add := func(kind uint8, doc envelope.DocID) {
		all = append(all, queued{key: []byte{kind, doc[0], doc[1]}, item: queuedItem{Item: handoffItem{Kind: kind, Doc: bytes.Clone(doc[:])}}})
	}
	// One reply first, so that offer and proof pairs straddle the
	// boundary at maxHandoffItems.
	add(itemReply, envelope.DocID{0, 0})
	for i := range maxHandoffItems {
		doc := envelope.DocID{byte(i>>8) + 1, byte(i)}
		add(itemProof, doc)
		add(itemOffer, doc)
	}
	total := len(all)
	got := 0
	for i, batch := range messageBatches(all) {
		if len(batch) > maxHandoffItems {
			t.Errorf("message %d has %d items, more than %d", i, len(batch), maxHandoffItems)
		}
		for j, q := range batch {
			got++
			if q.item.Item.Kind != itemOffer {
				continue
			}
			if j+1 == len(batch) || batch[j+1].item.Item.Kind != itemProof || !bytes.Equal(batch[j+1].item.Item.Doc, q.item.Item.Doc) {
				t.Fatalf("message %d ends or goes on after an offer without its proof", i)
			}
		}
	}
	if got != total {
		t.Errorf("the messages hold %d items, want %d", got, total)
	}
}

// failingStore fails every write that saves a membership change, as a
// full disk or a crash would at that moment.
type failingStore struct{ Store }

func (s failingStore) Write(ctx context.Context, b *Batch) error {
	for _, op := range b.Ops {
		if bytes.Contains(op.Key, []byte("/mop/")) {
			return errors.New("disk full")
		}
	}
	return s.Store.Write(ctx, b)
}

// TestReplyKeptWhenChangeFails hands a client a reply to its share while
// its store fails to save the membership change: the offer must stay
// open, so the reply still counts when it comes again.
func TestReplyKeptWhenChangeFails(t *testing.T) {
	ctx := context.Background()
	mem := NewMemoryStore()
	id := newTestIdentity(t)
	c, err := Open(ctx, Config{Store: mem, Identity: id})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	doc, err := c.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	patient := newTestIdentity(t)
	if err := c.Share(ctx, doc, patient.public); err != nil {
		t.Fatal(err)
	}
	c.store = failingStore{mem}
	if err := takeReplyFrom(c, patient, doc); err == nil {
		t.Fatal("the reply was taken although the change could not be saved")
	}
	if offers, err := c.Offers(ctx, doc); err != nil || len(offers) != 1 {
		t.Fatalf("offers after the failed write = %v, %v; want the share still open", offers, err)
	}
	c.store = mem
	before := c.Status(doc).Pending
	if err := takeReplyFrom(c, patient, doc); err != nil {
		t.Fatal(err)
	}
	if got := c.Status(doc).Pending; got != before+1 {
		t.Errorf("the reply taken again queued %d changes, want the addition", got-before)
	}
}

// TestLinkRequestsBounded has more devices than maxLinkRequests, none of
// them linked, add this device to their persons. It keeps the first
// maxLinkRequests as requests and drops the rest, and joins none.
func TestLinkRequestsBounded(t *testing.T) {
	c := openMemoryClient(t)
	ctx := context.Background()
	for i := range maxLinkRequests + 5 {
		stranger, err := NewIdentity()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.takePerson(ctx, stranger.Public(), false, PersonID{byte(i), 1}, nil); err != nil {
			t.Fatal(err)
		}
	}
	requests, err := c.LinkRequests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(requests) != maxLinkRequests {
		t.Errorf("%d link requests kept, want the bound %d", len(requests), maxLinkRequests)
	}
	if _, ok, err := c.personID(ctx); err != nil || ok {
		t.Errorf("the device joined a person from a request (%v, %v)", ok, err)
	}
}

// TestRecoveryNeedsNoticeMAC gives a recovery client two person notices
// from devices it has no link to. A stranger's, without a valid MAC,
// stays a request. The other carries the MAC that the device that made
// the phrase computes under the root of the phrase's document keys, and
// the recovery client joins that person.
func TestRecoveryNeedsNoticeMAC(t *testing.T) {
	ctx := context.Background()
	phrase, err := keyring.NewRecoveryPhrase()
	if err != nil {
		t.Fatal(err)
	}
	id, err := RecoveryIdentity(phrase)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(ctx, Config{Store: NewMemoryStore(), Identity: id})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stranger, laptop := openMemoryClient(t), openMemoryClient(t)

	forged := PersonID{1}
	if err := c.takePerson(ctx, stranger.id.public, false, forged, make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := c.personID(ctx); err != nil || ok {
		t.Fatalf("the recovery client joined a person from a notice without a MAC (%v, %v)", ok, err)
	}
	if requests, err := c.LinkRequests(ctx); err != nil || len(requests) != 1 {
		t.Errorf("link requests = %+v, %v; want the stranger's", requests, err)
	}

	root, err := id.recoveryRootOf()
	if err != nil {
		t.Fatal(err)
	}
	real := PersonID{2}
	if err := c.takePerson(ctx, laptop.id.public, false, real, personNoticeMAC(root, real)); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := c.personID(ctx); err != nil || !ok || got != real {
		t.Errorf("after a notice with the MAC the recovery client belongs to %v (%v, %v), want %v", got, ok, err, real)
	}
}
