package relay_test

import (
	"testing"

	"interlude/sync/wire"
)

// TestSharedNoticeOnAdd adds a connected device to a document and checks
// that the relay notifies that device's connection at once, with a Shared
// notice, so its client lists its documents again without waiting.
func TestSharedNoticeOnAdd(t *testing.T) {
	r := startRelay(t)
	admin, member := newDevice(t), newDevice(t)
	a := connect(t, r, admin)
	m := connect(t, r, member)
	doc := newDocID(t)
	mustOK(t, a.create(doc))

	mustOK(t, a.addMember(doc, member))
	got, err := m.tryRecvRaw()
	if err != nil {
		t.Fatalf("read the member's next message: %v", err)
	}
	if _, ok := got.(*wire.Shared); !ok {
		t.Fatalf("the added member's connection got %T, want *wire.Shared", got)
	}
	// The notice changed nothing else: the list now names the document.
	docs := m.listDocs()
	if len(docs.Grants) != 1 || string(docs.Grants[0].Doc) != string(doc[:]) {
		t.Errorf("ListDocs after the notice lists %d documents, want the one shared", len(docs.Grants))
	}
}
