package relay_test

import (
	"bytes"
	"crypto/ed25519"
	"strings"
	"testing"

	"interlude/internal/badgerscan"
	"interlude/relay"
	"interlude/sync/envelope"
	"interlude/sync/wire"
)

// docClaim returns key's claim for doc on connection c.
func (c *client) docClaim(doc envelope.DocID, key device) wire.DocClaim {
	sig := ed25519.Sign(key.priv, wire.ClaimMessage(c.hello.Relay, c.hello.Challenge, doc[:]))
	return wire.DocClaim{Doc: bytes.Clone(doc[:]), Key: key.pub, Signature: sig}
}

// claim sends one Claim of the given proofs and returns the reply.
func (c *client) claim(claims ...wire.DocClaim) wire.Message {
	c.t.Helper()
	ref := c.ref()
	return c.request(ref, &wire.Claim{Ref: ref, Claims: claims})
}

// as returns a view of connection c that signs entries and envelopes with
// key instead of the device key it authenticated with.
func (c *client) as(key device) *client {
	v := *c
	v.dev = key
	return &v
}

// TestClaimedDocumentKeyActs checks that a connection acts in a document
// under a document key once it claims it, and that the same connection
// without the claim cannot.
func TestClaimedDocumentKeyActs(t *testing.T) {
	r := startRelay(t)
	phone, docKey := newDevice(t), newDevice(t)
	doc := newDocID(t)

	// Unclaimed, the document key is a stranger to the connection.
	c := connect(t, r, phone)
	wantError(t, c.as(docKey).create(doc), wire.CodeNotMember)

	mustOK(t, c.claim(c.docClaim(doc, docKey)))
	k := c.as(docKey)
	mustOK(t, k.create(doc))
	k.mustPush(doc, docKey.sealed(t, doc, 1))
	mustOK(t, k.subscribe(doc, 0, true))
	if got, _ := k.readUntilCaughtUp(doc); len(got) != 1 {
		t.Errorf("subscription delivered %d envelopes, want the one pushed", len(got))
	}
	docs := c.listDocs()
	if len(docs.Grants) != 1 || !bytes.Equal(docs.Grants[0].Doc, doc[:]) {
		t.Fatalf("ListDocs lists %d documents, want the one of the claimed key", len(docs.Grants))
	}

	// A new connection of the same device has not claimed the key.
	c2 := connect(t, r, phone)
	wantError(t, c2.subscribe(doc, 0, false), wire.CodeNotMember)
	wantError(t, c2.as(docKey).push(doc, docKey.sealed(t, doc, 2)), wire.CodeNotMember)
	if docs := c2.listDocs(); len(docs.Grants) != 0 {
		t.Errorf("a connection without the claim lists %d documents, want 0", len(docs.Grants))
	}
}

// TestClaimBoundToConnectionAndDocument replays claims where they do not
// belong and checks that the relay refuses each and keeps none of a
// Claim with one bad proof.
func TestClaimBoundToConnectionAndDocument(t *testing.T) {
	r := startRelay(t)
	phone, docKey := newDevice(t), newDevice(t)
	doc, other := newDocID(t), newDocID(t)

	first := connect(t, r, phone)
	proof := first.docClaim(doc, docKey)
	mustOK(t, first.claim(proof))
	mustOK(t, first.as(docKey).create(doc))

	// The proof names the first connection's challenge.
	second := connect(t, r, phone)
	wantError(t, second.claim(proof), wire.CodeAuthFailed)
	// A proof for doc does not claim the key for another document.
	moved := second.docClaim(doc, docKey)
	moved.Doc = bytes.Clone(other[:])
	wantError(t, second.claim(moved), wire.CodeAuthFailed)
	// One bad proof voids the whole message, the good one included.
	wantError(t, second.claim(second.docClaim(doc, docKey), moved), wire.CodeAuthFailed)
	wantError(t, second.subscribe(doc, 0, false), wire.CodeNotMember)

	wantError(t, second.claim(), wire.CodeMalformed)
	// The connection still works after the refusals.
	mustOK(t, second.claim(second.docClaim(doc, docKey)))
	mustOK(t, second.subscribe(doc, 0, false))
}

// TestClaimedKeyGetsSharedNotice adds a key that a connection claimed
// before it was a member, as an invitee's device does, and checks that
// the connection gets the Shared notice and the document in its list.
func TestClaimedKeyGetsSharedNotice(t *testing.T) {
	r := startRelay(t)
	admin, invitee, inviteeKey := newDevice(t), newDevice(t), newDevice(t)
	a := connect(t, r, admin)
	doc := newDocID(t)
	mustOK(t, a.create(doc))

	m := connect(t, r, invitee)
	mustOK(t, m.claim(m.docClaim(doc, inviteeKey)))
	if docs := m.listDocs(); len(docs.Grants) != 0 {
		t.Fatalf("ListDocs before the addition lists %d documents, want 0", len(docs.Grants))
	}
	mustOK(t, a.addMember(doc, inviteeKey))
	got, err := m.tryRecvRaw()
	if err != nil {
		t.Fatalf("read the invitee's next message: %v", err)
	}
	if _, ok := got.(*wire.Shared); !ok {
		t.Fatalf("the claimed key's connection got %T, want *wire.Shared", got)
	}
	docs := m.listDocs()
	if len(docs.Grants) != 1 || !bytes.Equal(docs.Grants[0].SealedKey, sealedKeyFor(inviteeKey, doc)) {
		t.Errorf("ListDocs after the addition lists %d documents, want the one with the key sealed to the document key", len(docs.Grants))
	}
}

// TestStoredRecordsNameDocumentKeys writes to two documents from one
// device under a key of each, then reads every record the relay stored.
// The device's key must be in none, because nothing the relay stores
// about a document needs it. Each document key must be there, as the
// scan's control.
func TestStoredRecordsNameDocumentKeys(t *testing.T) {
	dir := t.TempDir()
	r := startRelayWith(t, dir, nil)
	phone, key1, key2 := newDevice(t), newDevice(t), newDevice(t)
	doc1, doc2 := newDocID(t), newDocID(t)
	c := connect(t, r, phone)
	mustOK(t, c.claim(c.docClaim(doc1, key1), c.docClaim(doc2, key2)))
	for doc, key := range map[envelope.DocID]device{doc1: key1, doc2: key2} {
		k := c.as(key)
		mustOK(t, k.create(doc))
		k.mustPush(doc, key.sealed(t, doc, 1))
	}
	r.stop()

	records := storedRecords(t, dir)
	if bytes.Contains(records, phone.pub) {
		t.Error("the relay stores the device key, though the device acted only under document keys")
	}
	for name, k := range map[string]device{"first": key1, "second": key2} {
		if !bytes.Contains(records, k.pub) {
			t.Errorf("the relay stores no record with the %s document key: the scan cannot see keys", name)
		}
	}
}

// TestClaimLimitPerConnection fills a connection's claims to the limit
// and checks that one more is rejected while the claims made still work.
func TestClaimLimitPerConnection(t *testing.T) {
	defer relay.SetMaxConnClaims(2)()
	r := startRelay(t)
	phone := newDevice(t)
	docs := []envelope.DocID{newDocID(t), newDocID(t), newDocID(t)}
	keys := []device{newDevice(t), newDevice(t), newDevice(t)}
	c := connect(t, r, phone)
	mustOK(t, c.claim(c.docClaim(docs[0], keys[0]), c.docClaim(docs[1], keys[1])))
	e := wantError(t, c.claim(c.docClaim(docs[2], keys[2])), wire.CodeTooLarge)
	if !strings.Contains(e.Message, "another connection") {
		t.Errorf("limit error %q does not say what to do", e.Message)
	}
	// Claiming a key again adds nothing, so it stays within the limit,
	// but one key for another document is one more pair.
	mustOK(t, c.claim(c.docClaim(docs[0], keys[0])))
	wantError(t, c.claim(c.docClaim(docs[2], keys[0])), wire.CodeTooLarge)
	mustOK(t, c.as(keys[1]).create(docs[1]))
}

// storedRecords returns every key and value in the stopped relay's Badger
// database in dir.
func storedRecords(t *testing.T, dir string) []byte {
	t.Helper()
	all, err := badgerscan.Records(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) == 0 {
		t.Fatal("the relay's database holds no records: the scan would prove nothing")
	}
	return all
}
