package relay_test

import (
	"strings"
	"sync"
	"testing"

	"interlude/sync/envelope"
	"interlude/sync/wire"
)

// sharedDoc creates a document with alice as creator and the other devices
// added as members, and returns it with alice's connection.
func sharedDoc(t *testing.T, r *testRelay, alice device, others ...device) (envelope.DocID, *client) {
	t.Helper()
	a := connect(t, r, alice)
	doc := newDocID(t)
	mustOK(t, a.create(doc))
	for _, d := range others {
		mustOK(t, a.addMember(doc, d))
	}
	return doc, a
}

// storedEnvelopes returns every envelope of doc the relay holds, read
// through a fresh subscription of member with IncludeOwn.
func storedEnvelopes(t *testing.T, r *testRelay, doc envelope.DocID, member device) ([]delivery, uint64) {
	t.Helper()
	c := connect(t, r, member)
	mustOK(t, c.subscribe(doc, 0, true))
	return c.readUntilCaughtUp(doc)
}

func TestPushAcksCursorsInOrder(t *testing.T) {
	r := startRelay(t)
	alice, bob := newDevice(t), newDevice(t)
	doc, a := sharedDoc(t, r, alice, bob)
	b := connect(t, r, bob)

	steps := []struct {
		c    *client
		seq  uint64
		want uint64
	}{
		{a, 1, 1},
		{a, 2, 2},
		{b, 1, 3},
		{a, 3, 4},
	}
	for _, s := range steps {
		if got := s.c.mustPush(doc, s.c.dev.sealed(t, doc, s.seq)); got != s.want {
			t.Errorf("push of seq %d acked at cursor %d, want %d", s.seq, got, s.want)
		}
	}
}

func TestPushByNonMemberRejected(t *testing.T) {
	r := startRelay(t)
	alice := newDevice(t)
	doc, _ := sharedDoc(t, r, alice)
	mallory := connect(t, r, newDevice(t))

	wantError(t, mallory.push(doc, mallory.dev.sealed(t, doc, 1)), wire.CodeNotMember)

	got, last := storedEnvelopes(t, r, doc, alice)
	if len(got) != 0 || last != 0 {
		t.Fatalf("log holds %d envelopes up to cursor %d after a rejected push, want none", len(got), last)
	}
}

func TestPushToMissingDocRejected(t *testing.T) {
	r := startRelay(t)
	c := connect(t, r, newDevice(t))
	doc := newDocID(t)

	wantError(t, c.push(doc, c.dev.sealed(t, doc, 1)), wire.CodeNotMember)
}

func TestPushForgedSignatureRejected(t *testing.T) {
	r := startRelay(t)
	alice := newDevice(t)
	doc, a := sharedDoc(t, r, alice)
	env := alice.sealed(t, doc, 1)
	forged := []byte(string(env))
	forged[len(forged)-envelopeSignatureTail] ^= 1 // inside the ciphertext

	wantError(t, a.push(doc, forged), wire.CodeBadSignature)

	// The rejected push did not use up the sequence number.
	if got := a.mustPush(doc, env); got != 1 {
		t.Fatalf("valid push after a forged one acked at cursor %d, want 1", got)
	}
}

// envelopeSignatureTail is an offset from the end of a marshaled envelope
// that lands in the ciphertext: past the 64-byte signature and its
// 2-byte msgpack prefix.
const envelopeSignatureTail = 64 + 2 + 1

func TestPushEnvelopeOfAnotherDocRejected(t *testing.T) {
	r := startRelay(t)
	alice := newDevice(t)
	doc, a := sharedDoc(t, r, alice)
	other := newDocID(t)
	mustOK(t, a.create(other))

	e := wantError(t, a.push(doc, alice.sealed(t, other, 1)), wire.CodeBadEnvelope)
	if !strings.Contains(e.Message, other.String()) {
		t.Errorf("Error %q does not name the envelope's document %s", e.Message, other)
	}
}

func TestPushAnotherAuthorsEnvelopeRejected(t *testing.T) {
	r := startRelay(t)
	alice, bob := newDevice(t), newDevice(t)
	doc, _ := sharedDoc(t, r, alice, bob)
	b := connect(t, r, bob)

	wantError(t, b.push(doc, alice.sealed(t, doc, 1)), wire.CodeBadEnvelope)

	got, _ := storedEnvelopes(t, r, doc, alice)
	if len(got) != 0 {
		t.Fatalf("log holds %d envelopes after a rejected push, want none", len(got))
	}
}

func TestPushMalformedEnvelopeRejected(t *testing.T) {
	r := startRelay(t)
	alice := newDevice(t)
	doc, a := sharedDoc(t, r, alice)

	wantError(t, a.push(doc, []byte("not an envelope")), wire.CodeBadEnvelope)
}

func TestPushSequenceGapRejected(t *testing.T) {
	r := startRelay(t)
	alice := newDevice(t)
	doc, a := sharedDoc(t, r, alice)

	e := wantError(t, a.push(doc, alice.sealed(t, doc, 2)), wire.CodeBadSequence)
	if !strings.Contains(e.Message, "expected 1") {
		t.Errorf("Error %q does not say which sequence number is expected", e.Message)
	}

	a.mustPush(doc, alice.sealed(t, doc, 1))
	e = wantError(t, a.push(doc, alice.sealed(t, doc, 3)), wire.CodeBadSequence)
	if !strings.Contains(e.Message, "expected 2") {
		t.Errorf("Error %q does not say which sequence number is expected", e.Message)
	}
}

func TestPushDuplicateAckedOnce(t *testing.T) {
	r := startRelay(t)
	alice := newDevice(t)
	doc, a := sharedDoc(t, r, alice)
	first := alice.sealed(t, doc, 1)
	second := alice.sealed(t, doc, 2)

	c1 := a.mustPush(doc, first)
	c2 := a.mustPush(doc, second)
	again := a.mustPush(doc, first)

	if again != c1 {
		t.Errorf("retried push acked at cursor %d, want the first cursor %d", again, c1)
	}
	got, last := storedEnvelopes(t, r, doc, alice)
	want := []delivery{{c1, string(first)}, {c2, string(second)}}
	checkDeliveries(t, "log", got, want)
	if last != c2 {
		t.Errorf("CaughtUp at cursor %d, want %d", last, c2)
	}
}

func TestPushReusedSequenceRejected(t *testing.T) {
	r := startRelay(t)
	alice := newDevice(t)
	doc, a := sharedDoc(t, r, alice)
	a.mustPush(doc, alice.sealed(t, doc, 1))

	// Same sequence number, other content: a replica that forgot what it
	// pushed. Storing it would give two updates one identity.
	wantError(t, a.push(doc, alice.sealed(t, doc, 1)), wire.CodeBadSequence)

	got, _ := storedEnvelopes(t, r, doc, alice)
	if len(got) != 1 {
		t.Fatalf("log holds %d envelopes, want 1", len(got))
	}
}

func TestConcurrentPushesGetDistinctCursors(t *testing.T) {
	r := startRelay(t)
	const writers, pushes = 4, 10
	alice := newDevice(t)
	devices := []device{alice}
	for range writers - 1 {
		devices = append(devices, newDevice(t))
	}
	doc, _ := sharedDoc(t, r, alice, devices[1:]...)

	cursors := make([][]uint64, writers)
	var wg sync.WaitGroup
	for i, d := range devices {
		c := connect(t, r, d)
		wg.Go(func() {
			for seq := uint64(1); seq <= pushes; seq++ {
				cursors[i] = append(cursors[i], c.mustPush(doc, d.sealed(t, doc, seq)))
			}
		})
	}
	wg.Wait()

	seen := map[uint64]bool{}
	for i, cs := range cursors {
		for j, cursor := range cs {
			if seen[cursor] {
				t.Errorf("cursor %d acked twice", cursor)
			}
			seen[cursor] = true
			if j > 0 && cursor <= cs[j-1] {
				t.Errorf("writer %d: push %d acked at cursor %d, not after its previous push at %d", i, j+1, cursor, cs[j-1])
			}
		}
	}
	for cursor := uint64(1); cursor <= writers*pushes; cursor++ {
		if !seen[cursor] {
			t.Errorf("cursor %d never acked", cursor)
		}
	}
}
