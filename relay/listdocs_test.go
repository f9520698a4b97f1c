package relay_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"slices"
	"testing"

	"golang.org/x/crypto/nacl/box"

	"interlude/relay"
	"interlude/sync/envelope"
	"interlude/sync/membership"
	"interlude/sync/wire"
)

// listDocsPage sends ListDocs with after and limit and returns the Docs
// reply.
func (c *client) listDocsPage(after []byte, limit uint64) *wire.Docs {
	c.t.Helper()
	ref := c.ref()
	reply := c.request(ref, &wire.ListDocs{Ref: ref, After: after, Limit: limit})
	docs, ok := reply.(*wire.Docs)
	if !ok {
		c.t.Fatalf("ListDocs after %x with limit %d returned %T, want Docs", after, limit, reply)
	}
	return docs
}

// listAllDocs pages through the device's documents as a client does,
// starting each request after the last document of the previous reply,
// and returns the size of each page and every grant in the order listed.
// It fails on a grant that does not sort after the one before it, so a
// repeated page ends the test instead of looping.
func (c *client) listAllDocs(limit uint64) (pages []int, grants []wire.Grant) {
	c.t.Helper()
	var after []byte
	for {
		docs := c.listDocsPage(after, limit)
		pages = append(pages, len(docs.Grants))
		for _, g := range docs.Grants {
			if after != nil && bytes.Compare(g.Doc, after) <= 0 {
				c.t.Fatalf("page %d lists document %x after %x, out of document id order", len(pages), g.Doc, after)
			}
			after = g.Doc
		}
		grants = append(grants, docs.Grants...)
		if !docs.More {
			return pages, grants
		}
		if len(docs.Grants) == 0 {
			c.t.Fatalf("page %d after %x has no grants but More set", len(pages), after)
		}
	}
}

// checkGrantDocs fails unless grants name exactly the documents in want,
// which is sorted by document id, once each and in that order.
func checkGrantDocs(t *testing.T, grants []wire.Grant, want []envelope.DocID) {
	t.Helper()
	if len(grants) != len(want) {
		t.Errorf("listed %d grants, want %d", len(grants), len(want))
	}
	for i := range min(len(grants), len(want)) {
		if !bytes.Equal(grants[i].Doc, want[i][:]) {
			t.Fatalf("grant %d is for document %x, want %s", i, grants[i].Doc, want[i])
		}
	}
}

func sortDocIDs(docs []envelope.DocID) {
	slices.SortFunc(docs, func(x, y envelope.DocID) int { return bytes.Compare(x[:], y[:]) })
}

// docIDWithFirstByte returns a random document id that starts with b, so
// a test can predict the id order.
func docIDWithFirstByte(t *testing.T, b byte) envelope.DocID {
	doc := newDocID(t)
	doc[0] = b
	return doc
}

// TestListDocsPagesPastCap gives one device one membership more than the
// relay's maximum for one Docs reply, and another device memberships of
// its own. Paging with no Limit must return the first device's documents
// once each, in order, in a full page with More set and a last page
// without it.
func TestListDocsPagesPastCap(t *testing.T) {
	r := startRelay(t)
	alice, bob := newDevice(t), newDevice(t)
	docs := make([]envelope.DocID, relay.MaxListGrants+1)
	for i := range docs {
		docs[i] = newDocID(t)
	}
	bobDocs := make([]envelope.DocID, 10)
	for i := range bobDocs {
		bobDocs[i] = newDocID(t)
	}
	// Real sealed keys have this size, so each page has its real size.
	sealed := make([]byte, membership.KeySize+box.AnonymousOverhead)
	rand.Read(sealed)
	var admin [32]byte
	rand.Read(admin[:])
	if err := relay.WriteMemberships(r.srv, [32]byte(alice.pub), admin, docs, sealed); err != nil {
		t.Fatalf("store %d memberships of alice: %v", len(docs), err)
	}
	if err := relay.WriteMemberships(r.srv, [32]byte(bob.pub), admin, bobDocs, sealed); err != nil {
		t.Fatalf("store %d memberships of bob: %v", len(bobDocs), err)
	}
	sortDocIDs(docs)
	a := connect(t, r, alice)

	pages, grants := a.listAllDocs(0)

	if want := []int{relay.MaxListGrants, 1}; !slices.Equal(pages, want) {
		t.Errorf("pages of %v grants, want %v", pages, want)
	}
	checkGrantDocs(t, grants, docs)
	for i, g := range grants {
		if !bytes.Equal(g.SealedKey, sealed) || !bytes.Equal(g.AddedBy, admin[:]) {
			t.Fatalf("grant %d carries another sealed key or adder than the ones stored", i)
		}
	}

	// A Limit above the relay's maximum is capped to it.
	page := a.listDocsPage(nil, 4*relay.MaxListGrants)
	if len(page.Grants) != relay.MaxListGrants || !page.More {
		t.Errorf("ListDocs with Limit %d returned %d grants, More %v, want %d and true", 4*relay.MaxListGrants, len(page.Grants), page.More, relay.MaxListGrants)
	}
}

// TestListDocsLimitPages pages through six documents with limits that
// divide their number, do not, and exceed it. A page that ends exactly at
// the last document must not set More.
func TestListDocsLimitPages(t *testing.T) {
	r := startRelay(t)
	alice, bob := newDevice(t), newDevice(t)
	var docs []envelope.DocID
	for b := byte(0x10); b <= 0x60; b += 0x10 {
		docs = append(docs, docIDWithFirstByte(t, b))
	}
	var admin [32]byte
	if err := relay.WriteMemberships(r.srv, [32]byte(alice.pub), admin, docs, []byte("sealed")); err != nil {
		t.Fatal(err)
	}
	// bob's documents sort between and after alice's, and must never
	// show up in her list.
	bobDocs := []envelope.DocID{docIDWithFirstByte(t, 0x35), docIDWithFirstByte(t, 0xf0)}
	if err := relay.WriteMemberships(r.srv, [32]byte(bob.pub), admin, bobDocs, []byte("sealed")); err != nil {
		t.Fatal(err)
	}
	a := connect(t, r, alice)

	tests := []struct {
		limit uint64
		pages []int
	}{
		{1, []int{1, 1, 1, 1, 1, 1}},
		{3, []int{3, 3}},
		{4, []int{4, 2}},
		{6, []int{6}},
		{7, []int{6}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("limit %d", tt.limit), func(t *testing.T) {
			pages, grants := a.listAllDocs(tt.limit)
			if !slices.Equal(pages, tt.pages) {
				t.Errorf("pages of %v grants, want %v", pages, tt.pages)
			}
			checkGrantDocs(t, grants, docs)
		})
	}
}

// TestListDocsAfter lists from After values that match no document of
// the device: before, between and after its documents, and from its last
// document.
func TestListDocsAfter(t *testing.T) {
	r := startRelay(t)
	alice := newDevice(t)
	var docs []envelope.DocID
	for b := byte(0x10); b <= 0x60; b += 0x10 {
		docs = append(docs, docIDWithFirstByte(t, b))
	}
	var admin [32]byte
	if err := relay.WriteMemberships(r.srv, [32]byte(alice.pub), admin, docs, []byte("sealed")); err != nil {
		t.Fatal(err)
	}
	a := connect(t, r, alice)

	between := make([]byte, 16)
	between[0] = 0x25
	tests := []struct {
		name  string
		after []byte
		want  []envelope.DocID
	}{
		{"zero id", make([]byte, 16), docs},
		{"between documents", between, docs[2:]},
		{"last document", docs[5][:], nil},
		{"highest id", bytes.Repeat([]byte{0xff}, 16), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page := a.listDocsPage(tt.after, 0)
			checkGrantDocs(t, page.Grants, tt.want)
			if page.More {
				t.Error("More set on a page of every remaining document")
			}
		})
	}
}

// TestListDocsInvalidAfter sends After values of other lengths than a
// document id. The relay must reject each request and keep the
// connection open.
func TestListDocsInvalidAfter(t *testing.T) {
	r := startRelay(t)
	a := connect(t, r, newDevice(t))
	doc := newDocID(t)
	mustOK(t, a.create(doc))

	for _, n := range []int{1, 15, 17, 32} {
		ref := a.ref()
		e := wantError(t, a.request(ref, &wire.ListDocs{Ref: ref, After: make([]byte, n)}), wire.CodeMalformed)
		t.Logf("After of %d bytes: %s", n, e.Message)
	}

	page := a.listDocsPage(nil, 0)
	checkGrantDocs(t, page.Grants, []envelope.DocID{doc})
}
