package relay_test

import (
	"bytes"
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

// TestSharedNoticeOnInvitationResponse opens an invitation on one
// connection and posts its response on another: the first must get a
// Shared notice, so its client takes the response at once.
func TestSharedNoticeOnInvitationResponse(t *testing.T) {
	r := startRelay(t)
	inviter := connect(t, r, newDevice(t))
	invitee := connect(t, r, newDevice(t))
	id := bytes.Repeat([]byte{5}, 16)

	ref := inviter.ref()
	if got, ok := inviter.request(ref, &wire.TakeInvite{Ref: ref, ID: id}).(*wire.Invite); !ok || len(got.Response) != 0 {
		t.Fatalf("TakeInvite of a new invitation answered %+v, want an empty response", got)
	}
	ref = invitee.ref()
	mustOK(t, invitee.request(ref, &wire.PostInvite{Ref: ref, ID: id, Response: []byte("response")}))

	got, err := inviter.tryRecvRaw()
	if err != nil {
		t.Fatalf("read the inviter's next message: %v", err)
	}
	if _, ok := got.(*wire.Shared); !ok {
		t.Fatalf("the inviter's connection got %T, want *wire.Shared", got)
	}
	// The invitee, which waits on nothing, gets no notice: its next
	// message is the reply to its next request.
	if docs := invitee.listDocs(); len(docs.Grants) != 0 || invitee.shared != 0 {
		t.Errorf("the invitee got %d notices and %d documents, want none", invitee.shared, len(docs.Grants))
	}
}
