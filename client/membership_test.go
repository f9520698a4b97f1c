package client_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"interlude/client"
	"interlude/crdt"
	"interlude/sync/envelope"
	"interlude/sync/membership"
	"interlude/sync/wire"
)

// syncAll runs SyncOnce on each client and fails on any error.
func syncAll(t *testing.T, ctx context.Context, cs ...*client.Client) {
	t.Helper()
	for _, c := range cs {
		if err := c.SyncOnce(ctx); err != nil {
			t.Fatalf("SyncOnce of %s: %v", c.Identity(), err)
		}
	}
}

func mustText(t *testing.T, c *client.Client, doc envelope.DocID, want string) {
	t.Helper()
	got, err := c.Text(doc)
	if err != nil {
		t.Fatalf("Text on %s: %v", c.Identity(), err)
	}
	if got != want {
		t.Fatalf("%s reads %q, want %q", c.Identity(), got, want)
	}
}

// TestRemovalRotatesKey removes a member and checks that every envelope
// written afterwards stays closed to every key the removed member ever
// held, while the remaining members and a member added later read the
// whole history.
func TestRemovalRotatesKey(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	admin := newClient(t, h.relay.url(), h.clientLogs)
	removed := newClient(t, h.relay.url(), h.clientLogs)
	stays, stayProxy := h.member()

	doc, err := admin.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*client.Client{removed, stays} {
		share(t, ctx, admin, doc, m)
	}
	if err := admin.SetText(ctx, doc, "before "); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, admin, removed, stays)
	mustText(t, removed, doc, "before ")
	before := len(stayProxy.deliveredEnvelopes())

	// 1. Remove, then write.
	if err := admin.RemoveMember(ctx, doc, memberKey(t, removed, doc)); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, admin)
	if err := admin.SetText(ctx, doc, "before after"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, admin, stays)
	mustText(t, stays, doc, "before after")

	// 2. The removed member's device no longer gets the document, learns
	//    of its removal, and reports it instead of failing every sync.
	if err := removed.SyncOnce(ctx); err != nil {
		t.Errorf("removed member's SyncOnce: %v", err)
	}
	if st := removed.Status(doc); !st.Removed {
		t.Errorf("removed member's status = %+v, want Removed", st)
	}
	if err := removed.SetText(ctx, doc, "still here?"); err == nil || !strings.Contains(err.Error(), "was removed") {
		t.Errorf("removed member's write = %v, want an error saying it was removed", err)
	}
	if st := stays.Status(doc); st.Removed {
		t.Errorf("remaining member's status = %+v, want not Removed", st)
	}
	mustText(t, removed, doc, "before ")

	// 3. Every envelope written after the removal stays closed to every
	//    key the removed member holds.
	removedKeys := client.EpochKeysForTest(removed, doc)
	if len(removedKeys) == 0 {
		t.Fatal("removed member holds no key; the check below would prove nothing")
	}
	later := stayProxy.deliveredEnvelopes()[before:]
	if len(later) == 0 {
		t.Fatal("no envelope delivered after the removal; the check below would prove nothing")
	}
	for i, raw := range later {
		env, err := envelope.Unmarshal(raw)
		if err != nil {
			t.Fatal(err)
		}
		if env.Epoch != 2 {
			t.Errorf("envelope %d after the removal has key epoch %d, want 2", i, env.Epoch)
		}
		for j, k := range removedKeys {
			if _, err := env.Open((*[envelope.KeySize]byte)(k)); err == nil {
				t.Errorf("envelope %d written after the removal opens with the removed member's key %d", i, j)
			}
		}
	}
	staysKeys := client.EpochKeysForTest(stays, doc)
	if len(staysKeys) != 2 {
		t.Errorf("remaining member holds %d epoch keys, want 2", len(staysKeys))
	}

	// 4. A member added after the rotation reads the whole history by
	//    walking back from the new key to the old one.
	late := newClient(t, h.relay.url(), h.clientLogs)
	share(t, ctx, admin, doc, late)
	syncAll(t, ctx, admin, late)
	mustText(t, late, doc, "before after")
	if n := len(client.EpochKeysForTest(late, doc)); n != 2 {
		t.Errorf("member added after the rotation holds %d epoch keys, want 2", n)
	}
	for _, c := range []*client.Client{admin, stays, late} {
		if rs := reports(t, c, doc); len(rs) != 0 {
			t.Errorf("%s has reports %+v, want none", c.Identity(), rs)
		}
	}
}

// TestInvitationAddsInvitee follows an invitation from link to shared
// document, and checks that a link works once.
func TestInvitationAddsInvitee(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	therapist := newClient(t, h.relay.url(), h.clientLogs)
	patient := newClient(t, h.relay.url(), h.clientLogs)
	other := newClient(t, h.relay.url(), h.clientLogs)

	doc, err := therapist.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := therapist.SetText(ctx, doc, "welcome"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, therapist)
	link, err := therapist.Invite(ctx, doc)
	if err != nil {
		t.Fatal(err)
	}
	secret := link[strings.Index(link, "#"):]

	// Before the inviter syncs, the relay has not heard of the invitation
	// and takes no answer; a link with one character changed names an
	// invitation nobody made and is rejected the same way after the sync.
	if _, err := patient.AcceptInvite(ctx, link); !isCode(err, wire.CodeNotFound) {
		t.Fatalf("AcceptInvite before the inviter synced = %v, want %s", err, wire.CodeNotFound)
	}
	syncAll(t, ctx, therapist)
	garbled := []byte(link)
	at := strings.Index(link, "#invite=") + len("#invite=") + 2
	if garbled[at] == 'A' {
		garbled[at] = 'B'
	} else {
		garbled[at] = 'A'
	}
	if _, err := other.AcceptInvite(ctx, string(garbled)); err == nil {
		t.Fatal("AcceptInvite of a link with a changed character succeeded")
	}

	code, err := patient.AcceptInvite(ctx, link)
	if err != nil {
		t.Fatalf("AcceptInvite: %v", err)
	}
	if _, err := other.AcceptInvite(ctx, link); !isCode(err, wire.CodeInvitationUsed) {
		t.Fatalf("second AcceptInvite of one link = %v, want %s", err, wire.CodeInvitationUsed)
	}
	syncAll(t, ctx, therapist, patient)

	mustText(t, patient, doc, "welcome")
	invs, err := therapist.Invitations(ctx, doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(invs) != 1 || !invs[0].Accepted {
		t.Fatalf("invitations = %+v, want one accepted", invs)
	}
	if invs[0].Code != code {
		t.Errorf("therapist's comparison code %q, patient's %q: want equal", invs[0].Code, code)
	}
	// The patient joined under its key for this document, not its
	// device id, which the relay would see in every document.
	memberID, err := patient.MemberID(doc)
	if err != nil {
		t.Fatal(err)
	}
	if invs[0].Invitee != memberID.String() {
		t.Errorf("invitee %s, want the patient's key for the document %s", invs[0].Invitee, memberID)
	}
	if memberID.String() == patient.Identity().PublicID() {
		t.Error("the patient joined the invitation's document under its device id")
	}
	if _, err := other.Text(doc); !errors.Is(err, client.ErrUnknownDocument) {
		t.Errorf("the second taker of the link holds the document (err %v)", err)
	}
	// The secret in the fragment never reaches the relay.
	h.relay.stop()
	assertNotInFiles(t, h.relay.dir, secret[len("#invite="):])
	if strings.Contains(string(h.relayLogs.Bytes()), secret[len("#invite="):]) {
		t.Error("relay logs contain the invitation secret")
	}
}

func isCode(err error, code wire.Code) bool {
	var e *wire.Error
	return errors.As(err, &e) && e.Code == code
}

// TestForkedMembershipLogDetected runs a relay that shows two admins
// different membership logs: it copies its data folder and serves each
// admin from one copy, under the same countersigning key. The members'
// comparison codes differ, and once the relay serves one admin the other
// copy, that admin's device holds two countersigned entries at one
// index, a proof of the fork, and rejects envelopes naming the other head.
func TestForkedMembershipLogDetected(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	alice := newClient(t, h.relay.url(), h.clientLogs)
	bob, bobProxy := h.member()
	carol := newClient(t, h.relay.url(), h.clientLogs)
	dave := newClient(t, h.relay.url(), h.clientLogs)

	doc, err := alice.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	addMember(t, ctx, alice, doc, bob, membership.RoleAdmin)
	syncAll(t, ctx, alice, bob)

	// 1. Fork: a copy of the relay's data serves bob from now on.
	h.relay.stop()
	forkDir := filepath.Join(t.TempDir(), "fork")
	copyDir(t, h.relay.dir, forkDir)
	h.relay.start()
	fork := &testRelay{t: t, dir: forkDir, addr: "127.0.0.1:0", logs: h.relayLogs}
	fork.start()
	t.Cleanup(fork.stop)
	bobProxy.mu.Lock()
	bobProxy.relayAddr = fork.addr
	bobProxy.mu.Unlock()

	// 2. Each admin adds someone else at the same index, by device key,
	//    since carol and dave reach only the relay that is not forked.
	if err := alice.AddMemberByKey(ctx, doc, carol.Identity().Public(), membership.RoleWriter); err != nil {
		t.Fatal(err)
	}
	if err := bob.AddMemberByKey(ctx, doc, dave.Identity().Public(), membership.RoleWriter); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, alice, bob)
	aliceCode, err := alice.MembershipCode(doc)
	if err != nil {
		t.Fatal(err)
	}
	bobCode, err := bob.MembershipCode(doc)
	if err != nil {
		t.Fatal(err)
	}
	if aliceCode == bobCode {
		t.Fatalf("both admins see membership code %s after the fork, want different codes", aliceCode)
	}

	// 3. alice writes on her copy; the relay now serves bob that copy.
	if err := alice.SetText(ctx, doc, "after the fork"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, alice)
	bobProxy.mu.Lock()
	bobProxy.relayAddr = h.relay.addr
	bobProxy.mu.Unlock()
	if err := bob.SyncOnce(ctx); err != nil {
		t.Fatalf("bob's SyncOnce against the other copy: %v", err)
	}

	rs := reports(t, bob, doc)
	wantReport(t, rs, client.ReportMembershipFork, "", 2)
	var proof bool
	for _, r := range rs {
		if r.Kind == client.ReportMembershipFork && strings.Contains(r.Detail, "both countersigned") {
			proof = true
		}
	}
	if !proof {
		t.Errorf("fork report %+v does not hold a proof with both countersignatures", rs)
	}
	wantReport(t, rs, client.ReportUnknownHead, shortID(t, alice, doc), 1)
	if got, _ := bob.Text(doc); got == "after the fork" {
		t.Error("bob applied an envelope that names a membership head outside his log")
	}
}

// shortID returns the hex prefix of c's member key in doc, as reports
// name authors.
func shortID(t *testing.T, c *client.Client, doc envelope.DocID) string {
	t.Helper()
	id, err := c.MemberID(doc)
	if err != nil {
		t.Fatal(err)
	}
	k := id.Sign
	const hexDigits = "0123456789abcdef"
	b := make([]byte, 0, 16)
	for _, x := range k[:8] {
		b = append(b, hexDigits[x>>4], hexDigits[x&15])
	}
	return string(b)
}

// copyDir copies the files of a stopped relay's data folder.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o600)
	})
	if err != nil {
		t.Fatalf("copy relay data folder: %v", err)
	}
}

// TestRelayInjectsNonWriterEnvelope has the relay deliver an envelope
// signed by a key that is no member, sealed under the real document key
// (as a removed member could), and one of the real author under a key
// epoch the log never started. The client reports both and applies
// neither.
func TestRelayInjectsNonWriterEnvelope(t *testing.T) {
	h := newHarness(t)
	v, p := h.member()
	doc := h.author.createDoc(v)
	d := h.author.docs[doc]

	_, outsider, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hdr := envelope.Header{Kind: envelope.KindUpdate, Doc: doc, Seq: 1, Epoch: d.log.Epoch(), MembershipHead: envelope.Hash(d.log.Head())}
	env, err := envelope.Seal(hdr, &d.key, outsider, edit(t, crdt.NewDoc(crdt.ReplicaID(5)), "injected"))
	if err != nil {
		t.Fatal(err)
	}
	injected, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// The author's own envelope, but under a key epoch the log never
	// started.
	hdr.Epoch = 2
	wrongEpoch, err := envelope.Seal(hdr, &d.key, h.author.priv, edit(t, crdt.NewDoc(crdt.ReplicaID(6)), "wrong epoch"))
	if err != nil {
		t.Fatal(err)
	}
	wrongRaw, err := wrongEpoch.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p.set(func(m wire.Message) []wire.Message {
		if dl, ok := m.(*wire.Deliver); ok && dl.Entry == nil {
			return []wire.Message{
				&wire.Deliver{Doc: dl.Doc, Cursor: dl.Cursor, Envelope: wrongRaw},
				&wire.Deliver{Doc: dl.Doc, Cursor: dl.Cursor + 1, Envelope: injected},
				&wire.Deliver{Doc: dl.Doc, Cursor: dl.Cursor + 2, Envelope: dl.Envelope},
			}
		}
		return []wire.Message{m}
	}, nil)
	_, real := h.author.write(doc, "real")
	h.sync(v)

	rs := reports(t, v, doc)
	wantReport(t, rs, client.ReportNotWriter, hex.EncodeToString(env.Author[:8]), 1)
	wantReport(t, rs, client.ReportNoEpochKey, h.author.prefix(), 1)
	checkText(t, v, doc, expectedText(t, real))
}

// TestReaderCannotEdit checks that a reader's device refuses to seal an
// edit, and that a change of role to writer lets it write.
func TestReaderCannotEdit(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	admin := newClient(t, h.relay.url(), h.clientLogs)
	reader := newClient(t, h.relay.url(), h.clientLogs)
	doc, err := admin.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	addMember(t, ctx, admin, doc, reader, membership.RoleReader)
	syncAll(t, ctx, admin, reader)
	if err := reader.SetText(ctx, doc, "not allowed"); err == nil {
		t.Fatal("reader's SetText succeeded, want an error")
	}
	if err := reader.Share(ctx, doc, admin.Identity().Public()); !errors.Is(err, client.ErrNotAdmin) {
		t.Fatalf("reader's Share = %v, want ErrNotAdmin", err)
	}

	if err := admin.ChangeRole(ctx, doc, memberKey(t, reader, doc), membership.RoleWriter); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, admin, reader)
	if err := reader.SetText(ctx, doc, "allowed now"); err != nil {
		t.Fatalf("SetText after the change to writer: %v", err)
	}
	syncAll(t, ctx, reader, admin)
	mustText(t, admin, doc, "allowed now")
}

// addMember has from offer doc to to with role, and syncs from, to and
// from again: the offer, the reply, and the addition reach the relay. to
// fetches doc on its next sync.
func addMember(t *testing.T, ctx context.Context, from *client.Client, doc envelope.DocID, to *client.Client, role membership.Role) {
	t.Helper()
	if err := from.AddMember(ctx, doc, to.Identity().Public(), role); err != nil {
		t.Fatalf("AddMember of %s: %v", to.Identity(), err)
	}
	syncAll(t, ctx, from, to, from)
}

// share is addMember with the writer role, as Share gives.
func share(t *testing.T, ctx context.Context, from *client.Client, doc envelope.DocID, to *client.Client) {
	t.Helper()
	addMember(t, ctx, from, doc, to, membership.RoleWriter)
}

// memberKey returns the key c is a member of doc under.
func memberKey(t *testing.T, c *client.Client, doc envelope.DocID) []byte {
	t.Helper()
	id, err := c.MemberID(doc)
	if err != nil {
		t.Fatal(err)
	}
	return id.Sign
}
