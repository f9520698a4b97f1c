package relay_test

import (
	"bytes"
	"testing"

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
		t.Errorf("alice's grant carries sealed key %q, want the one sent with Create", docs.Grants[0].SealedKey)
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

	wantError(t, b.create(doc), wire.CodeDocExists)

	docs := b.listDocs()
	if len(docs.Grants) != 0 {
		t.Fatalf("rejected Create left bob with %d grants, want 0", len(docs.Grants))
	}
	// Once added, bob's Create of the same document is a no-op success.
	mustOK(t, a.addMember(doc, bob))
	mustOK(t, b.create(doc))
}

func TestCreateInvalidRequests(t *testing.T) {
	r := startRelay(t)
	a := connect(t, r, newDevice(t))
	doc := newDocID(t)

	tests := []struct {
		name string
		req  *wire.Create
	}{
		{"short doc id", &wire.Create{Doc: doc[:8], SealedKey: []byte("k")}},
		{"missing sealed key", &wire.Create{Doc: doc[:]}},
		{"huge sealed key", &wire.Create{Doc: doc[:], SealedKey: make([]byte, 4096)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Ref = a.ref()
			wantError(t, a.request(tt.req.Ref, tt.req), wire.CodeMalformed)
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
		t.Fatalf("rejected AddMember left %d grants, want 0", len(docs.Grants))
	}
}

func TestAddMemberBadKey(t *testing.T) {
	r := startRelay(t)
	a := connect(t, r, newDevice(t))
	doc := newDocID(t)
	mustOK(t, a.create(doc))

	ref := a.ref()
	reply := a.request(ref, &wire.AddMember{Ref: ref, Doc: doc[:], Member: []byte("short"), SealedKey: []byte("k")})

	wantError(t, reply, wire.CodeMalformed)
}

func TestAddMemberReplacesSealedKey(t *testing.T) {
	r := startRelay(t)
	a := connect(t, r, newDevice(t))
	bob := newDevice(t)
	doc := newDocID(t)
	mustOK(t, a.create(doc))
	mustOK(t, a.addMember(doc, bob))

	ref := a.ref()
	mustOK(t, a.request(ref, &wire.AddMember{Ref: ref, Doc: doc[:], Member: bob.pub, SealedKey: []byte("second key")}))

	b := connect(t, r, bob)
	docs := b.listDocs()
	if len(docs.Grants) != 1 {
		t.Fatalf("%d grants after adding bob twice, want 1", len(docs.Grants))
	}
	if got := string(docs.Grants[0].SealedKey); got != "second key" {
		t.Errorf("sealed key %q, want the second one", got)
	}
}
