package client_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"interlude/client"
	"interlude/sync/envelope"
	"interlude/sync/membership"
	"interlude/sync/wire"
)

// TestDocumentKeysUnlinkable has a therapist create two documents and
// invite the same client to both. Each device must be a member of each
// document under a key of its own for that document. The relay's files
// must hold neither device's key, so nothing the relay stores shows that
// the same two people share both documents.
func TestDocumentKeysUnlinkable(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	therapist := newClient(t, h.relay.url(), h.clientLogs)
	patient := newClient(t, h.relay.url(), h.clientLogs)

	var docs []envelope.DocID
	for _, words := range []string{"mood diary", "thought record"} {
		doc, err := therapist.CreateDocument(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := therapist.SetText(ctx, doc, words); err != nil {
			t.Fatal(err)
		}
		link, err := therapist.Invite(ctx, doc)
		if err != nil {
			t.Fatal(err)
		}
		syncAll(t, ctx, therapist)
		if _, err := patient.AcceptInvite(ctx, link); err != nil {
			t.Fatalf("AcceptInvite: %v", err)
		}
		docs = append(docs, doc)
	}
	syncAll(t, ctx, therapist, patient)
	for _, doc := range docs {
		if err := patient.SetText(ctx, doc, "written by the patient"); err != nil {
			t.Fatalf("patient writes to document %s: %v", doc, err)
		}
	}
	syncAll(t, ctx, patient, therapist)
	for _, doc := range docs {
		mustText(t, therapist, doc, "written by the patient")
	}

	for _, c := range []*client.Client{therapist, patient} {
		device := c.Identity().Public().Sign
		var keys [][]byte
		for _, doc := range docs {
			id, err := c.MemberID(doc)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(id.Sign, device) {
				t.Errorf("%s is a member of document %s under its device key", c.Identity(), doc)
			}
			keys = append(keys, id.Sign)
		}
		if bytes.Equal(keys[0], keys[1]) {
			t.Errorf("%s has the same member key in both documents", c.Identity())
		}
	}

	checkNoDeviceKeys(t, h, patient, docs[0], therapist, patient)
}

// checkNoDeviceKeys stops the relay and fails if any of its records
// holds the device key of one of devices. As a control, the scan must
// find the key member is a member of doc under, which the relay stores.
func checkNoDeviceKeys(t *testing.T, h *harness, member *client.Client, doc envelope.DocID, devices ...*client.Client) {
	t.Helper()
	h.relay.stop()
	records := relayRecords(t, h.relay.dir)
	for _, c := range devices {
		if bytes.Contains(records, c.Identity().Public().Sign) {
			t.Errorf("a relay record holds the device key of %s", c.Identity())
		}
	}
	id, err := member.MemberID(doc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(records, id.Sign) {
		t.Errorf("no relay record holds the member key of %s: the scan cannot find keys", member.Identity())
	}
}

// TestInvitedDocumentReachesRunningClient accepts an invitation on a
// device whose sync loop runs, then lets the inviter take the response:
// the running loop must claim the document key and receive the document
// without another call.
func TestInvitedDocumentReachesRunningClient(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	therapist := newClient(t, h.relay.url(), h.clientLogs)
	patient := newClient(t, h.relay.url(), h.clientLogs)
	doc, err := therapist.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := therapist.SetText(ctx, doc, "first homework"); err != nil {
		t.Fatal(err)
	}
	link, err := therapist.Invite(ctx, doc)
	if err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, therapist)

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go patient.Run(runCtx)
	if _, err := patient.AcceptInvite(ctx, link); err != nil {
		t.Fatalf("AcceptInvite: %v", err)
	}
	// A mistyped copy of the link names the same document with another
	// secret. Its failure must not undo the response to the right one.
	garbled := []byte(link)
	at := strings.Index(link, "#invite=") + len("#invite=") + 2
	if garbled[at] == 'A' {
		garbled[at] = 'B'
	} else {
		garbled[at] = 'A'
	}
	if _, err := patient.AcceptInvite(ctx, string(garbled)); err == nil {
		t.Fatal("AcceptInvite of a mistyped link succeeded")
	}
	syncAll(t, ctx, therapist)
	waitFor(t, "the running patient holds the invited document", func() bool {
		got, err := patient.Text(doc)
		return err == nil && got == "first homework"
	})
}

// TestInvitationCompletesBetweenRunningClients runs both sides' sync
// loops with the timed relist turned off: the invitation must complete
// on the relay's notices alone, the inviter's when the response comes and
// the invitee's when the inviter adds it.
func TestInvitationCompletesBetweenRunningClients(t *testing.T) {
	defer client.SetRelistIntervalForTest(time.Hour)()
	h := newHarness(t)
	ctx := h.ctx
	therapist := newClient(t, h.relay.url(), h.clientLogs)
	patient := newClient(t, h.relay.url(), h.clientLogs)

	doc, err := therapist.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := therapist.SetText(ctx, doc, "week one"); err != nil {
		t.Fatal(err)
	}
	link, err := therapist.Invite(ctx, doc)
	if err != nil {
		t.Fatal(err)
	}
	// The sync opens the invitation on the relay. Once the therapist's
	// loop has caught up, it waits on the relay alone: nothing local
	// wakes it, and its timed pass is an hour away.
	syncAll(t, ctx, therapist)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go therapist.Run(runCtx)
	go patient.Run(runCtx)
	waitFor(t, "the therapist's loop catches up", func() bool {
		st := therapist.Status(doc)
		return st.Connected && st.Synced
	})

	if _, err := patient.AcceptInvite(ctx, link); err != nil {
		t.Fatalf("AcceptInvite: %v", err)
	}
	waitFor(t, "the running patient holds the document", func() bool {
		got, err := patient.Text(doc)
		return err == nil && got == "week one"
	})
}

// TestRemoveNonMemberRejected removes, and changes the role of, the
// device id of a client who joined by invitation and so is a member
// under another id. Both must fail at once with ErrNotMember, because the
// next sync would drop the change. The member id works.
func TestRemoveNonMemberRejected(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	therapist := newClient(t, h.relay.url(), h.clientLogs)
	patient := newClient(t, h.relay.url(), h.clientLogs)
	doc, err := therapist.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	joinByLink(t, ctx, therapist, patient, doc)
	syncAll(t, ctx, therapist, patient)

	device := patient.Identity().Public().Sign
	if err := therapist.RemoveMember(ctx, doc, device); !errors.Is(err, client.ErrNotMember) {
		t.Errorf("RemoveMember of the patient's device id = %v, want ErrNotMember", err)
	}
	if err := therapist.ChangeRole(ctx, doc, device, membership.RoleReader); !errors.Is(err, client.ErrNotMember) {
		t.Errorf("ChangeRole of the patient's device id = %v, want ErrNotMember", err)
	}
	member, err := patient.MemberID(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := therapist.RemoveMember(ctx, doc, member.Sign); err != nil {
		t.Fatalf("RemoveMember of the patient's member id: %v", err)
	}
	syncAll(t, ctx, therapist)
	members, err := therapist.Members(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 1 {
		t.Errorf("document has %d members after the removal, want the therapist alone", len(members))
	}
}

// TestInvitedThenSharedByID responds to an invitation whose maker never
// takes the response, while another admin adds the invitee's device key
// (AddMemberByKey). The document must arrive under the device keys,
// which the log names, and the invitation's mark must go.
func TestInvitedThenSharedByID(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	inviter := newClient(t, h.relay.url(), h.clientLogs)
	admin := newClient(t, h.relay.url(), h.clientLogs)
	patient := newClient(t, h.relay.url(), h.clientLogs)
	doc, err := inviter.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	addMember(t, ctx, inviter, doc, admin, membership.RoleAdmin)
	if err := inviter.SetText(ctx, doc, "shared twice"); err != nil {
		t.Fatal(err)
	}
	link, err := inviter.Invite(ctx, doc)
	if err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, inviter, admin)
	if _, err := patient.AcceptInvite(ctx, link); err != nil {
		t.Fatal(err)
	}
	if err := admin.AddMemberByKey(ctx, doc, patient.Identity().Public(), membership.RoleWriter); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, admin, patient)
	mustText(t, patient, doc, "shared twice")
	checkActsUnder(t, ctx, patient, admin, doc, true, "shared twice, answered")
}

// TestMutualLinkKeepsDocumentKey links a laptop and a phone both ways,
// the phone by the laptop's device key, as a recovery client does. In the
// journal the laptop created under its document key, the laptop's device
// key must not stay a member beside it, or it would remain after the
// laptop's document key is removed.
func TestMutualLinkKeepsDocumentKey(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	laptop := newClient(t, h.relay.url(), h.clientLogs)
	phone := newClient(t, h.relay.url(), h.clientLogs)
	doc, err := laptop.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := laptop.LinkDevice(ctx, phone.Identity().Public()); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, laptop, phone, laptop, phone)
	if _, err := phone.LinkDeviceKey(ctx, laptop.Identity().Public()); err != nil {
		t.Fatal(err)
	}
	// The phone adds the laptop's device key, which it cannot tell from
	// the laptop's document key; the laptop's next sync removes it.
	syncAll(t, ctx, phone, laptop, laptop, phone)

	members, err := laptop.Members(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 2 {
		t.Errorf("the journal has %d members, want the laptop's document key and the phone", len(members))
	}
	for _, m := range members {
		if bytes.Equal(m.Sign[:], laptop.Identity().Public().Sign) {
			t.Error("the laptop's device key stays a member of the journal the laptop created")
		}
	}
}

// TestUnlinkCreatorOfDocument links a laptop and a phone both ways, then
// unlinks the laptop, as lost, from the phone. The laptop created the
// journal under its document key, which the phone cannot derive; its
// offer of the journal told the phone that key, so the unlink removes it
// without asking anyone to check, and the laptop reads nothing written
// afterwards.
func TestUnlinkCreatorOfDocument(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	laptop := newClient(t, h.relay.url(), h.clientLogs)
	phone := newClient(t, h.relay.url(), h.clientLogs)
	doc, err := laptop.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := laptop.SetText(ctx, doc, "before"); err != nil {
		t.Fatal(err)
	}
	if _, err := laptop.LinkDevice(ctx, phone.Identity().Public()); err != nil {
		t.Fatal(err)
	}
	if _, err := phone.LinkDevice(ctx, laptop.Identity().Public()); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, laptop, phone, laptop, phone, laptop)
	mustText(t, phone, doc, "before")
	for _, c := range []*client.Client{laptop, phone} {
		if _, ok := findMemberKey(t, laptop, doc, c.Identity().Public().Sign); ok {
			t.Errorf("the journal names the device key of %s", c.Identity())
		}
	}

	n, err := phone.UnlinkDevice(ctx, laptop.Identity().Public().Sign)
	if err != nil || n != 1 {
		t.Fatalf("UnlinkDevice = %d, %v; want the journal changed and no error", n, err)
	}
	syncAll(t, ctx, phone)
	if _, ok := findMember(t, phone, doc, laptop); ok {
		t.Error("the laptop's key for the journal stays a member after the unlink")
	}
	if err := phone.SetText(ctx, doc, "after the laptop was lost"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, phone, laptop)
	if got, _ := laptop.Text(doc); got != "before" {
		t.Errorf("the unlinked laptop reads %q, want only what it had", got)
	}
	if !laptop.Status(doc).Removed {
		t.Error("the unlinked laptop does not report its removal")
	}
}

// TestUnlinkReportsUnknownMember unlinks, from a phone that a recovery
// client linked by key, the laptop that created a journal. No offer told
// the phone the laptop's key for the journal, so the phone cannot tell
// it from another device's, and must return the journal to check instead
// of reporting success. The person then removes the member neither
// device recognizes, which cuts the laptop off.
func TestUnlinkReportsUnknownMember(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	laptop := newClient(t, h.relay.url(), h.clientLogs)
	phone := newClient(t, h.relay.url(), h.clientLogs)
	doc, err := laptop.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := laptop.SetText(ctx, doc, "before"); err != nil {
		t.Fatal(err)
	}
	if _, err := laptop.LinkDeviceKey(ctx, phone.Identity().Public()); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, laptop, phone)

	_, err = phone.UnlinkDevice(ctx, laptop.Identity().Public().Sign)
	var unsure *client.UnlinkUnsureError
	if !errors.As(err, &unsure) {
		t.Fatalf("UnlinkDevice = %v, want an UnlinkUnsureError", err)
	}
	if len(unsure.Docs) != 1 || unsure.Docs[0] != doc {
		t.Errorf("documents to check = %v, want the journal %s", unsure.Docs, doc)
	}
	members, err := phone.Members(doc)
	if err != nil {
		t.Fatal(err)
	}
	phoneID, err := phone.MemberID(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		if !bytes.Equal(m.Sign[:], phoneID.Sign) {
			if err := phone.RemoveMember(ctx, doc, m.Sign[:]); err != nil {
				t.Fatalf("RemoveMember of the unrecognized member: %v", err)
			}
		}
	}
	syncAll(t, ctx, phone)
	if err := phone.SetText(ctx, doc, "after the laptop was lost"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, phone, laptop)
	if got, _ := laptop.Text(doc); got != "before" {
		t.Errorf("the unlinked laptop reads %q, want only what it had", got)
	}
}

// TestRemovedMemberAddedBack removes a patient, then invites the patient
// again by a new link while the patient's sync loop runs: the loop must
// see the removal, then the new addition, and read what is written after.
func TestRemovedMemberAddedBack(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	therapist := newClient(t, h.relay.url(), h.clientLogs)
	patient := newClient(t, h.relay.url(), h.clientLogs)
	doc, err := therapist.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	invite := func() {
		t.Helper()
		link, err := therapist.Invite(ctx, doc)
		if err != nil {
			t.Fatal(err)
		}
		syncAll(t, ctx, therapist)
		if _, err := patient.AcceptInvite(ctx, link); err != nil {
			t.Fatalf("AcceptInvite: %v", err)
		}
		syncAll(t, ctx, therapist)
	}
	invite()
	syncAll(t, ctx, patient)
	member, err := patient.MemberID(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := therapist.RemoveMember(ctx, doc, member.Sign); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, therapist)

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go patient.Run(runCtx)
	waitFor(t, "the patient sees its removal", func() bool { return patient.Status(doc).Removed })

	invite()
	if err := therapist.SetText(ctx, doc, "welcome back"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, therapist)
	waitFor(t, "the running patient reads the document again", func() bool {
		got, err := patient.Text(doc)
		return err == nil && got == "welcome back"
	})
}

// TestDeviceKeyOfAnotherPersonStays has a laptop create a journal and
// share it with a phone's public id, so the phone is a member in its own
// right. The phone then links the laptop, whose device key joins the
// journal as a device of the phone's person. The laptop may not remove
// that key, so it must not try on every sync, and nothing stays pending.
// The phone links the laptop by key, as a recovery client does; through
// an offer, the laptop would reply with the key it is a member under.
func TestDeviceKeyOfAnotherPersonStays(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	laptop := newClient(t, h.relay.url(), h.clientLogs)
	phone := newClient(t, h.relay.url(), h.clientLogs)
	doc, err := laptop.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	share(t, ctx, laptop, doc, phone)
	syncAll(t, ctx, laptop, phone)
	if _, err := phone.LinkDeviceKey(ctx, laptop.Identity().Public()); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, phone, laptop, laptop)
	if st := laptop.Status(doc); st.Pending != 0 {
		t.Errorf("the laptop has %d changes pending, want none: it may not remove a key of another person", st.Pending)
	}
	if bytes.Contains(h.clientLogs.Bytes(), []byte("membership change dropped")) {
		t.Error("a client queued a membership change that the log does not allow, and dropped it")
	}
	members, err := laptop.Members(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 3 {
		t.Errorf("the journal has %d members, want the laptop's document key, the phone and the laptop's device key", len(members))
	}
}

// TestInvitationAnswerWithLostReply drops the relay's reply to the
// invitee's response, which the relay stored. The invitee must keep
// claiming its document key, so the document arrives once the inviter
// takes the response.
func TestInvitationAnswerWithLostReply(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	therapist := newClient(t, h.relay.url(), h.clientLogs)
	patient, proxy := h.member()
	doc, err := therapist.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := therapist.SetText(ctx, doc, "homework"); err != nil {
		t.Fatal(err)
	}
	link, err := therapist.Invite(ctx, doc)
	if err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, therapist)

	// Once the response has gone to the relay, nothing comes back.
	var answered atomic.Bool
	proxy.set(func(m wire.Message) []wire.Message {
		if answered.Load() {
			return nil
		}
		return []wire.Message{m}
	}, func(m wire.Message) []wire.Message {
		if _, ok := m.(*wire.PostInvite); ok {
			answered.Store(true)
		}
		return []wire.Message{m}
	})
	// The deadline plays the part of a connection that breaks.
	lostCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = patient.AcceptInvite(lostCtx, link)
	cancel()
	if err == nil {
		t.Fatal("AcceptInvite succeeded although its reply was lost")
	}
	proxy.set(nil, nil)

	syncAll(t, ctx, therapist, patient)
	mustText(t, patient, doc, "homework")
}

// TestGarbledLinkLeavesInvitation responds to a link whose document part
// has one character changed. The relay must reject the response, because
// the link names an invitation that was never made, so the real link
// still works.
func TestGarbledLinkLeavesInvitation(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	therapist := newClient(t, h.relay.url(), h.clientLogs)
	patient := newClient(t, h.relay.url(), h.clientLogs)
	doc, err := therapist.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	link, err := therapist.Invite(ctx, doc)
	if err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, therapist)

	garbled := []byte(link)
	at := len(garbled) - 5 // in the document id, the link's last part
	if garbled[at] == 'A' {
		garbled[at] = 'B'
	} else {
		garbled[at] = 'A'
	}
	if _, err := patient.AcceptInvite(ctx, string(garbled)); !isCode(err, wire.CodeNotFound) {
		t.Fatalf("AcceptInvite of a link with its document part changed = %v, want %s", err, wire.CodeNotFound)
	}
	if _, err := patient.AcceptInvite(ctx, link); err != nil {
		t.Fatalf("AcceptInvite of the real link after a mistyped one: %v", err)
	}
	syncAll(t, ctx, therapist, patient)
	if _, err := patient.MemberID(doc); err != nil {
		t.Errorf("the patient lacks the document after answering the real link: %v", err)
	}
}

// TestRemovedMemberAddedBackUnderOtherKey shares a journal with a
// patient's public id, removes the patient, and invites the patient back
// by link, so the patient returns under its document key: its copy must
// follow, read what was written since and write again.
func TestRemovedMemberAddedBackUnderOtherKey(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	therapist := newClient(t, h.relay.url(), h.clientLogs)
	patient := newClient(t, h.relay.url(), h.clientLogs)
	doc, err := therapist.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := therapist.SetText(ctx, doc, "first"); err != nil {
		t.Fatal(err)
	}
	if err := therapist.AddMemberByKey(ctx, doc, patient.Identity().Public(), membership.RoleWriter); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, therapist, patient)
	if err := therapist.RemoveMember(ctx, doc, patient.Identity().Public().Sign); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, therapist, patient)
	if !patient.Status(doc).Removed {
		t.Fatal("the patient does not report its removal")
	}

	link, err := therapist.Invite(ctx, doc)
	if err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, therapist)
	if _, err := patient.AcceptInvite(ctx, link); err != nil {
		t.Fatalf("AcceptInvite after the removal: %v", err)
	}
	syncAll(t, ctx, therapist)
	if err := therapist.SetText(ctx, doc, "first, then welcome back"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, therapist, patient)

	mustText(t, patient, doc, "first, then welcome back")
	if patient.Status(doc).Removed {
		t.Error("the patient still reports its removal after it was added back")
	}
	checkActsUnder(t, ctx, patient, therapist, doc, false, "first, then welcome back. Thanks.")
}

// TestRemovedInviteeSharedBackByID is the reverse: a patient who joined
// by link is removed and then shared back by public id, so it returns
// under its device key.
func TestRemovedInviteeSharedBackByID(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	therapist := newClient(t, h.relay.url(), h.clientLogs)
	patient := newClient(t, h.relay.url(), h.clientLogs)
	doc, err := therapist.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	joinByLink(t, ctx, therapist, patient, doc)
	syncAll(t, ctx, therapist, patient)
	member, err := patient.MemberID(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := therapist.RemoveMember(ctx, doc, member.Sign); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, therapist, patient)
	if !patient.Status(doc).Removed {
		t.Fatal("the patient does not report its removal")
	}

	share(t, ctx, therapist, doc, patient)
	if err := therapist.SetText(ctx, doc, "shared again"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, therapist, patient)
	mustText(t, patient, doc, "shared again")
	if err := patient.SetText(ctx, doc, "shared again, read"); err != nil {
		t.Fatalf("the patient writes after coming back: %v", err)
	}
	syncAll(t, ctx, patient, therapist)
	mustText(t, therapist, doc, "shared again, read")
}

// joinByLink makes an invitation to doc on inviter, opens it on the relay
// with a sync, answers it from invitee and returns the link.
func joinByLink(t *testing.T, ctx context.Context, inviter, invitee *client.Client, doc envelope.DocID) string {
	t.Helper()
	link, err := inviter.Invite(ctx, doc)
	if err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, inviter)
	if _, err := invitee.AcceptInvite(ctx, link); err != nil {
		t.Fatalf("AcceptInvite: %v", err)
	}
	return link
}

// checkActsUnder checks that member holds doc under its device key, or
// under its document key when deviceKey is false, keeps no invitation
// mark for it, and writes text that reader then reads.
func checkActsUnder(t *testing.T, ctx context.Context, member, reader *client.Client, doc envelope.DocID, deviceKey bool, text string) {
	t.Helper()
	id, err := member.MemberID(doc)
	if err != nil {
		t.Fatal(err)
	}
	if got := bytes.Equal(id.Sign, member.Identity().Public().Sign); got != deviceKey {
		t.Errorf("the member acts under its device key: %v, want %v, as the log names it", got, deviceKey)
	}
	if client.InvitedForTest(member, doc) {
		t.Error("the invitation's mark stays after the document arrived")
	}
	if err := member.SetText(ctx, doc, text); err != nil {
		t.Fatalf("the member writes: %v", err)
	}
	syncAll(t, ctx, member, reader)
	mustText(t, reader, doc, text)
}
