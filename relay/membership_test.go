package relay_test

import (
	"bytes"
	"testing"

	"interlude/sync/envelope"
	"interlude/sync/membership"
	"interlude/sync/wire"
)

func (c *client) getLog(doc envelope.DocID, from uint64) wire.Message {
	ref := c.ref()
	return c.request(ref, &wire.GetLog{Ref: ref, Doc: doc[:], From: from})
}

func TestGetLogReturnsCountersignedEntries(t *testing.T) {
	r := startRelay(t)
	alice, bob, carol := newDevice(t), newDevice(t), newDevice(t)
	a := connect(t, r, alice)
	doc := newDocID(t)
	mustOK(t, a.create(doc))
	mustOK(t, a.addMember(doc, bob))
	mustOK(t, a.removeMember(doc, bob))

	l := testLogs.get(doc)
	lg, ok := a.getLog(doc, 1).(*wire.Log)
	if !ok {
		t.Fatal("GetLog not answered with Log")
	}
	if len(lg.Entries) != 2 {
		t.Fatalf("GetLog from 1 returned %d entries, want 2", len(lg.Entries))
	}
	st := &membership.State{}
	full := a.getLog(doc, 0).(*wire.Log)
	for i, le := range full.Entries {
		e, err := membership.Decode(le.Entry)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if !membership.VerifyCountersign(a.hello.RelayKey, doc, uint64(i), e.Hash(), le.Countersig) {
			t.Errorf("entry %d: countersignature does not verify", i)
		}
		if err := st.Apply(e); err != nil {
			t.Fatalf("entry %d does not apply: %v", i, err)
		}
	}
	if st.Head() != l.state.Head() || st.Epoch() != 2 {
		t.Errorf("log from the relay has head %s epoch %d, want %s epoch 2", st.Head(), st.Epoch(), l.state.Head())
	}
	if !bytes.Equal(lg.Entries[0].Entry, full.Entries[1].Entry) {
		t.Error("GetLog from 1 does not start with entry 1")
	}

	// Only members read the log.
	wantError(t, connect(t, r, carol).getLog(doc, 0), wire.CodeNotMember)
}

func TestRelayKeySurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	r := startRelayWith(t, dir, nil)
	first := connect(t, r, newDevice(t)).hello.RelayKey
	r.stop()
	r = startRelayWith(t, dir, nil)
	second := connect(t, r, newDevice(t)).hello.RelayKey
	if len(first) != 32 || !bytes.Equal(first, second) {
		t.Fatalf("relay key %x after restart, want the first one %x", second, first)
	}
	if other := connect(t, startRelay(t), newDevice(t)).hello.RelayKey; bytes.Equal(other, first) {
		t.Fatal("two relays with their own data share one countersigning key")
	}
}

// TestEntryDeliveredBeforeEnvelopesNamingIt checks the order of a
// subscription: each membership entry comes before the envelopes stored
// after it.
func TestEntryDeliveredBeforeEnvelopesNamingIt(t *testing.T) {
	r := startRelay(t)
	alice, bob, carol := newDevice(t), newDevice(t), newDevice(t)
	a := connect(t, r, alice)
	doc := newDocID(t)
	mustOK(t, a.create(doc))
	a.mustPush(doc, alice.sealed(t, doc, 1))
	mustOK(t, a.addMember(doc, bob))
	mustOK(t, a.addMember(doc, carol))
	a.mustPush(doc, alice.sealed(t, doc, 2))

	b := connect(t, r, bob)
	mustOK(t, b.subscribe(doc, 0, false))
	var order []string
	for len(order) < 6 {
		switch m := b.recv().(type) {
		case *wire.Deliver:
			if m.Entry != nil {
				e, err := membership.Decode(m.Entry)
				if err != nil {
					t.Fatal(err)
				}
				order = append(order, "entry "+e.Op.String())
			} else {
				order = append(order, "envelope")
			}
		case *wire.CaughtUp:
			order = append(order, "caught up")
		default:
			t.Fatalf("got %T", m)
		}
	}
	want := []string{"entry create", "envelope", "entry add", "entry add", "envelope", "caught up"}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("subscription order %v, want %v", order, want)
		}
	}

	// A live entry reaches the subscriber too.
	dave := newDevice(t)
	mustOK(t, a.addMember(doc, dave))
	m, ok := b.recv().(*wire.Deliver)
	if !ok || m.Entry == nil {
		t.Fatalf("live delivery %T, want the new membership entry", m)
	}
}

func TestInvitationTakesOneResponse(t *testing.T) {
	r := startRelay(t)
	a := connect(t, r, newDevice(t))
	b := connect(t, r, newDevice(t))
	id := bytes.Repeat([]byte{7}, 16)

	ref := a.ref()
	reply, ok := a.request(ref, &wire.TakeInvite{Ref: ref, ID: id}).(*wire.Invite)
	if !ok || len(reply.Response) != 0 {
		t.Fatalf("TakeInvite before any response = %+v, want an empty Invite", reply)
	}
	ref = b.ref()
	mustOK(t, b.request(ref, &wire.PostInvite{Ref: ref, ID: id, Response: []byte("first")}))
	ref = b.ref()
	mustOK(t, b.request(ref, &wire.PostInvite{Ref: ref, ID: id, Response: []byte("first")}))
	ref = a.ref()
	wantError(t, a.request(ref, &wire.PostInvite{Ref: ref, ID: id, Response: []byte("second")}), wire.CodeInvitationUsed)

	ref = a.ref()
	reply, ok = a.request(ref, &wire.TakeInvite{Ref: ref, ID: id}).(*wire.Invite)
	if !ok || string(reply.Response) != "first" {
		t.Fatalf("TakeInvite = %+v, want the first response", reply)
	}
	ref = a.ref()
	wantError(t, a.request(ref, &wire.PostInvite{Ref: ref, ID: id[:8], Response: []byte("x")}), wire.CodeMalformed)
}

// TestFormerMemberGetsLogToRemoval checks that a removed member may read
// the membership log up to the entry that removed it and no further, and
// that a device that never was a member still gets not_member.
func TestFormerMemberGetsLogToRemoval(t *testing.T) {
	r := startRelay(t)
	alice, bob, carol := newDevice(t), newDevice(t), newDevice(t)
	doc, a := sharedDoc(t, r, alice, bob)
	mustOK(t, a.removeMember(doc, bob))
	mustOK(t, a.addMember(doc, carol))

	b := connect(t, r, bob)
	ref := b.ref()
	reply := b.request(ref, &wire.GetLog{Ref: ref, Doc: doc[:]})
	log, ok := reply.(*wire.Log)
	if !ok {
		t.Fatalf("GetLog of the removed member answered %T, want Log", reply)
	}
	if len(log.Entries) != 3 || log.More {
		t.Fatalf("removed member got %d entries (more %v), want the 3 up to its removal", len(log.Entries), log.More)
	}
	last, err := membership.Decode(log.Entries[2].Entry)
	if err != nil {
		t.Fatal(err)
	}
	if last.Op != membership.OpRemove || last.Subject.Sign != [32]byte(bob.pub) {
		t.Errorf("last entry for the removed member is %s of %x, want its removal", last.Op, last.Subject.Sign[:8])
	}
	wantError(t, b.subscribe(doc, 0, false), wire.CodeNotMember)

	stranger := connect(t, r, newDevice(t))
	ref = stranger.ref()
	wantError(t, stranger.request(ref, &wire.GetLog{Ref: ref, Doc: doc[:]}), wire.CodeNotMember)
}
