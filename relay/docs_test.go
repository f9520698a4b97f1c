package relay_test

import (
	"bytes"
	"testing"

	"interlude/sync/envelope"
	"interlude/sync/membership"
	"interlude/sync/wire"
)

func TestCreateAddMemberListDocs(t *testing.T) {
	r := startRelay(t)
	alice, bob := newDevice(t), newDevice(t)
	a := connect(t, r, alice)
	b := connect(t, r, bob)
	doc := newDocID(t)

	mustOK(t, a.create(doc))
	mustOK(t, a.addMember(doc, bob))

	docs := b.listDocs()
	if len(docs.Grants) != 1 {
		t.Fatalf("bob has %d grants, want 1", len(docs.Grants))
	}
	g := docs.Grants[0]
	if !bytes.Equal(g.Doc, doc[:]) {
		t.Errorf("grant for document %x, want %s", g.Doc, doc)
	}
	if !bytes.Equal(g.SealedKey, sealedKeyFor(bob, doc)) {
		t.Errorf("bob's grant carries sealed key %q, want %q", g.SealedKey, sealedKeyFor(bob, doc))
	}
	if !bytes.Equal(g.AddedBy, alice.pub) {
		t.Errorf("bob's grant added by %x, want alice %x", g.AddedBy, alice.pub)
	}

	docs = a.listDocs()
	if len(docs.Grants) != 1 {
		t.Fatalf("alice's ListDocs = %#v, want one grant", docs)
	}
	if !bytes.Equal(docs.Grants[0].SealedKey, sealedKeyFor(alice, doc)) {
		t.Errorf("alice's grant carries sealed key %q, want the one in the create entry", docs.Grants[0].SealedKey)
	}
	if !bytes.Equal(docs.Grants[0].AddedBy, alice.pub) {
		t.Errorf("creator's grant added by %x, want the creator itself", docs.Grants[0].AddedBy)
	}
}

func TestListDocsSeveralDocuments(t *testing.T) {
	r := startRelay(t)
	a := connect(t, r, newDevice(t))
	want := map[string]bool{}
	for range 3 {
		doc := newDocID(t)
		mustOK(t, a.create(doc))
		want[string(doc[:])] = true
	}
	// Another device's document must not be listed.
	mustOK(t, connect(t, r, newDevice(t)).create(newDocID(t)))

	docs := a.listDocs()
	if len(docs.Grants) != len(want) {
		t.Fatalf("%d grants, want %d", len(docs.Grants), len(want))
	}
	for _, g := range docs.Grants {
		if !want[string(g.Doc)] {
			t.Errorf("grant for document %x that this device did not create", g.Doc)
		}
	}
}

func TestCreateIsIdempotent(t *testing.T) {
	r := startRelay(t)
	a := connect(t, r, newDevice(t))
	doc := newDocID(t)

	mustOK(t, a.create(doc))
	mustOK(t, a.create(doc))

	docs := a.listDocs()
	if len(docs.Grants) != 1 {
		t.Fatalf("%d grants after creating one document twice, want 1", len(docs.Grants))
	}
}

func TestCreateExistingDocRejected(t *testing.T) {
	r := startRelay(t)
	a := connect(t, r, newDevice(t))
	bob := newDevice(t)
	b := connect(t, r, bob)
	doc := newDocID(t)
	mustOK(t, a.create(doc))

	wantError(t, b.create(doc), wire.CodeStaleLog)

	docs := b.listDocs()
	if len(docs.Grants) != 0 {
		t.Fatalf("rejected create left bob with %d grants, want 0", len(docs.Grants))
	}
}

func TestAppendEntryInvalidRequests(t *testing.T) {
	r := startRelay(t)
	a := connect(t, r, newDevice(t))
	doc := newDocID(t)

	tests := []struct {
		name string
		req  *wire.AppendEntry
		code wire.Code
	}{
		{"short doc id", &wire.AppendEntry{Doc: doc[:8], Entry: []byte("k")}, wire.CodeMalformed},
		{"missing entry", &wire.AppendEntry{Doc: doc[:]}, wire.CodeBadEntry},
		{"garbage entry", &wire.AppendEntry{Doc: doc[:], Entry: make([]byte, 4096)}, wire.CodeBadEntry},
		{"huge entry", &wire.AppendEntry{Doc: doc[:], Entry: make([]byte, 512<<10)}, wire.CodeTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Ref = a.ref()
			wantError(t, a.request(tt.req.Ref, tt.req), tt.code)
		})
	}
}

func TestAddMemberByNonMember(t *testing.T) {
	r := startRelay(t)
	a := connect(t, r, newDevice(t))
	mallory := connect(t, r, newDevice(t))
	doc := newDocID(t)
	mustOK(t, a.create(doc))

	wantError(t, mallory.addMember(doc, mallory.dev), wire.CodeNotMember)

	docs := mallory.listDocs()
	if len(docs.Grants) != 0 {
		t.Fatalf("rejected add left %d grants, want 0", len(docs.Grants))
	}
}

func TestAddMemberByWriterForbidden(t *testing.T) {
	r := startRelay(t)
	a := connect(t, r, newDevice(t))
	bob, carol := newDevice(t), newDevice(t)
	b := connect(t, r, bob)
	doc := newDocID(t)
	mustOK(t, a.create(doc))
	mustOK(t, a.addMember(doc, bob))

	wantError(t, b.addMember(doc, carol), wire.CodeForbidden)
	if docs := connect(t, r, carol).listDocs(); len(docs.Grants) != 0 {
		t.Fatalf("writer's rejected add left carol with %d grants, want 0", len(docs.Grants))
	}
}

func TestForgedEntryRejected(t *testing.T) {
	r := startRelay(t)
	alice, bob := newDevice(t), newDevice(t)
	a := connect(t, r, alice)
	doc := newDocID(t)
	mustOK(t, a.create(doc))

	l := testLogs.get(doc)
	e, err := l.state.NewAdd(alice.priv, bob.member(membership.RoleWriter), l.key)
	if err != nil {
		t.Fatal(err)
	}
	e.Subject.Role = membership.RoleAdmin // changed after alice signed
	ref := a.ref()
	wantError(t, a.request(ref, &wire.AppendEntry{Ref: ref, Doc: doc[:], Entry: e.Encode()}), wire.CodeBadEntry)
}

func TestEntryOnWrongChainRejected(t *testing.T) {
	r := startRelay(t)
	alice, bob := newDevice(t), newDevice(t)
	a := connect(t, r, alice)
	doc := newDocID(t)
	mustOK(t, a.create(doc))

	l := testLogs.get(doc)
	e, err := l.state.NewAdd(alice.priv, bob.member(membership.RoleWriter), l.key)
	if err != nil {
		t.Fatal(err)
	}
	e.Prev[0] ^= 1
	e.Sign(alice.priv)
	ref := a.ref()
	wantError(t, a.request(ref, &wire.AppendEntry{Ref: ref, Doc: doc[:], Entry: e.Encode()}), wire.CodeBadEntry)

	e.Index = 5
	e.Sign(alice.priv)
	ref = a.ref()
	wantError(t, a.request(ref, &wire.AppendEntry{Ref: ref, Doc: doc[:], Entry: e.Encode()}), wire.CodeStaleLog)
}

func TestRemovedMemberCannotPushOrSubscribe(t *testing.T) {
	r := startRelay(t)
	alice, bob := newDevice(t), newDevice(t)
	a := connect(t, r, alice)
	b := connect(t, r, bob)
	doc := newDocID(t)
	mustOK(t, a.create(doc))
	mustOK(t, a.addMember(doc, bob))
	b.mustPush(doc, bob.sealed(t, doc, 1))

	mustOK(t, a.removeMember(doc, bob))

	wantError(t, b.push(doc, bob.sealed(t, doc, 2)), wire.CodeNotMember)
	wantError(t, b.subscribe(doc, 0, false), wire.CodeNotMember)
	if docs := b.listDocs(); len(docs.Grants) != 0 {
		t.Fatalf("removed member still lists %d documents", len(docs.Grants))
	}
	// alice's grant now carries the new epoch's key.
	docs := a.listDocs()
	if len(docs.Grants) != 1 || !bytes.Equal(docs.Grants[0].SealedKey, sealedKeyFor(alice, doc)) {
		t.Fatalf("alice's grant after the removal = %+v, want the new epoch's sealed key", docs.Grants)
	}
}

func TestPushWithWrongEpochRejected(t *testing.T) {
	r := startRelay(t)
	alice := newDevice(t)
	a := connect(t, r, alice)
	doc := newDocID(t)
	mustOK(t, a.create(doc))

	var key [envelope.KeySize]byte
	h := alice.header(t, doc, 1)
	h.Epoch = 2
	wantError(t, a.push(doc, alice.seal(t, h, &key, []byte("x"))), wire.CodeBadEpoch)
	h.Epoch = 1
	h.MembershipHead[0] ^= 1
	wantError(t, a.push(doc, alice.seal(t, h, &key, []byte("x"))), wire.CodeBadEpoch)
}

func TestReaderCannotPush(t *testing.T) {
	r := startRelay(t)
	alice, bob := newDevice(t), newDevice(t)
	a := connect(t, r, alice)
	b := connect(t, r, bob)
	doc := newDocID(t)
	mustOK(t, a.create(doc))
	mustOK(t, a.addMemberAs(doc, bob, membership.RoleReader))

	wantError(t, b.push(doc, bob.sealed(t, doc, 1)), wire.CodeForbidden)
	mustOK(t, b.subscribe(doc, 0, false))
}
