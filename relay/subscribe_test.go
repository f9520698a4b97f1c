package relay_test

import (
	"fmt"
	"testing"

	"interlude/sync/wire"
)

func TestSubscribersReceiveInOrder(t *testing.T) {
	r := startRelay(t)
	alice, bob, carol := newDevice(t), newDevice(t), newDevice(t)
	doc, a := sharedDoc(t, r, alice, bob, carol)
	subscribers := []*client{connect(t, r, bob), connect(t, r, carol)}
	for _, s := range subscribers {
		mustOK(t, s.subscribe(doc, 0, false))
		if got, last := s.readUntilCaughtUp(doc); len(got) != 0 || last != 0 {
			t.Fatalf("empty document: %d deliveries, CaughtUp at %d; want none at 0", len(got), last)
		}
	}

	var want []delivery
	for seq := uint64(1); seq <= 3; seq++ {
		env := alice.sealed(t, doc, seq)
		want = append(want, delivery{a.mustPush(doc, env), string(env)})
	}

	for i, s := range subscribers {
		checkDeliveries(t, fmt.Sprintf("subscriber %d", i), s.readDeliveries(doc, len(want)), want)
	}
}

func TestSubscribeAfterCursor(t *testing.T) {
	r := startRelay(t)
	alice, bob := newDevice(t), newDevice(t)
	doc, a := sharedDoc(t, r, alice, bob)
	var envs []string
	for seq := uint64(1); seq <= 5; seq++ {
		env := alice.sealed(t, doc, seq)
		a.mustPush(doc, env)
		envs = append(envs, string(env))
	}
	b := connect(t, r, bob)

	mustOK(t, b.subscribe(doc, 3, false))
	got, last := b.readUntilCaughtUp(doc)

	want := []delivery{{4, envs[3]}, {5, envs[4]}}
	checkDeliveries(t, "after cursor 3", got, want)
	if last != 5 {
		t.Errorf("CaughtUp at cursor %d, want 5", last)
	}

	// Live entries follow CaughtUp.
	env := alice.sealed(t, doc, 6)
	a.mustPush(doc, env)
	checkDeliveries(t, "live", b.readDeliveries(doc, 1), []delivery{{6, string(env)}})
}

func TestSubscribeAfterLastCursor(t *testing.T) {
	r := startRelay(t)
	alice := newDevice(t)
	doc, a := sharedDoc(t, r, alice)
	a.mustPush(doc, alice.sealed(t, doc, 1))

	// A client that claims more than the relay holds learns the relay's
	// real last cursor from CaughtUp.
	mustOK(t, a.subscribe(doc, 9, true))
	got, last := a.readUntilCaughtUp(doc)

	if len(got) != 0 {
		t.Errorf("%d deliveries after cursor 9 of a log of 1, want none", len(got))
	}
	if last != 1 {
		t.Errorf("CaughtUp at cursor %d, want the relay's last cursor 1", last)
	}
}

func TestSubscribeSkipsOwnEnvelopes(t *testing.T) {
	r := startRelay(t)
	alice, bob := newDevice(t), newDevice(t)
	doc, a := sharedDoc(t, r, alice, bob)
	b := connect(t, r, bob)
	a.mustPush(doc, alice.sealed(t, doc, 1))
	bobsEnv := bob.sealed(t, doc, 1)
	b.mustPush(doc, bobsEnv)
	a.mustPush(doc, alice.sealed(t, doc, 2))

	mustOK(t, a.subscribe(doc, 0, false))
	got, last := a.readUntilCaughtUp(doc)

	if len(got) != 1 || got[0] != (delivery{2, string(bobsEnv)}) {
		t.Fatalf("backlog without own envelopes = %d deliveries, want only bob's at cursor 2", len(got))
	}
	if last != 3 {
		t.Errorf("CaughtUp at cursor %d, want 3", last)
	}

	// Live: alice's own push is acked but not delivered back to her; the
	// next message she gets is bob's envelope.
	a.mustPush(doc, alice.sealed(t, doc, 3))
	bobsSecond := bob.sealed(t, doc, 2)
	b.mustPush(doc, bobsSecond)
	live := a.readDeliveries(doc, 1)
	if live[0] != (delivery{5, string(bobsSecond)}) {
		t.Errorf("live delivery at cursor %d, want bob's at cursor 5", live[0].Cursor)
	}
}

func TestSubscribeIncludeOwn(t *testing.T) {
	r := startRelay(t)
	alice, bob := newDevice(t), newDevice(t)
	doc, a := sharedDoc(t, r, alice, bob)
	b := connect(t, r, bob)
	a.mustPush(doc, alice.sealed(t, doc, 1))
	b.mustPush(doc, bob.sealed(t, doc, 1))

	// A second connection of alice's device, as after losing local data.
	restored := connect(t, r, alice)
	mustOK(t, restored.subscribe(doc, 0, true))
	got, last := restored.readUntilCaughtUp(doc)

	if len(got) != 2 || got[0].Cursor != 1 || got[1].Cursor != 2 {
		t.Fatalf("IncludeOwn backlog = %v, want cursors 1 and 2", got)
	}
	if last != 2 {
		t.Errorf("CaughtUp at cursor %d, want 2", last)
	}
}

func TestSubscribeByNonMemberRejected(t *testing.T) {
	r := startRelay(t)
	doc, _ := sharedDoc(t, r, newDevice(t))
	mallory := connect(t, r, newDevice(t))

	wantError(t, mallory.subscribe(doc, 0, true), wire.CodeNotMember)
}

func TestSubscribeLargeBacklog(t *testing.T) {
	r := startRelay(t)
	alice := newDevice(t)
	doc, a := sharedDoc(t, r, alice)
	// Five envelopes of 1 MiB take more than one batch read of the log.
	const n = 5
	var want []delivery
	for seq := uint64(1); seq <= n; seq++ {
		env := alice.sealedSize(t, doc, seq, 1<<20)
		want = append(want, delivery{a.mustPush(doc, env), string(env)})
	}

	got, last := storedEnvelopes(t, r, doc, alice)

	checkDeliveries(t, "backlog", got, want)
	if last != n {
		t.Errorf("CaughtUp at cursor %d, want %d", last, n)
	}
}

func TestAckNotHeldBehindBacklog(t *testing.T) {
	r := startRelay(t)
	alice := newDevice(t)
	doc, a := sharedDoc(t, r, alice)
	for seq := uint64(1); seq <= 3; seq++ {
		a.mustPush(doc, alice.sealedSize(t, doc, seq, 1<<20))
	}

	// Subscribe and push at once on one connection: the Ack and the
	// deliveries share the socket, and all of them must arrive.
	c := connect(t, r, alice)
	mustOK(t, c.subscribe(doc, 0, true))
	ref := c.ref()
	c.send(&wire.Push{Ref: ref, Doc: doc[:], Envelope: alice.sealed(t, doc, 4)})

	var acked, caughtUp bool
	var cursors []uint64
	for !acked || !caughtUp {
		switch m := c.recv().(type) {
		case *wire.Ack:
			if m.Ref != ref || m.Cursor != 4 {
				t.Fatalf("Ack ref %d cursor %d, want ref %d cursor 4", m.Ref, m.Cursor, ref)
			}
			acked = true
		case *wire.Deliver:
			if m.Entry == nil {
				cursors = append(cursors, m.Cursor)
			}
		case *wire.CaughtUp:
			caughtUp = true
		default:
			t.Fatalf("unexpected %T", m)
		}
	}
	for len(cursors) < 4 {
		cursors = append(cursors, c.readDeliveries(doc, 1)[0].Cursor)
	}
	for i, cursor := range cursors {
		if cursor != uint64(i+1) {
			t.Fatalf("deliveries at cursors %v, want 1 to 4 in order", cursors)
		}
	}
}

func TestSubscribeAgainRestarts(t *testing.T) {
	r := startRelay(t)
	alice, bob := newDevice(t), newDevice(t)
	doc, a := sharedDoc(t, r, alice, bob)
	env := alice.sealed(t, doc, 1)
	a.mustPush(doc, env)
	b := connect(t, r, bob)
	mustOK(t, b.subscribe(doc, 0, false))
	first, _ := b.readUntilCaughtUp(doc)
	checkDeliveries(t, "first subscription", first, []delivery{{1, string(env)}})

	// A second Subscribe replaces the first and starts from its cursor.
	mustOK(t, b.subscribe(doc, 0, false))
	again, last := b.readUntilCaughtUp(doc)

	checkDeliveries(t, "second subscription", again, []delivery{{1, string(env)}})
	if last != 1 {
		t.Errorf("CaughtUp at cursor %d, want 1", last)
	}
	// Only one subscription is left, so a new entry arrives once.
	second := alice.sealed(t, doc, 2)
	a.mustPush(doc, second)
	checkDeliveries(t, "live", b.readDeliveries(doc, 1), []delivery{{2, string(second)}})
	if docs := b.listDocs(); len(docs.Grants) != 1 {
		t.Fatalf("%d grants, want 1", len(docs.Grants))
	}
}
