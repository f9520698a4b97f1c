package relay_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"interlude/sync/envelope"
	"interlude/sync/wire"
)

func TestPushBrokenChainRejected(t *testing.T) {
	r := startRelay(t)
	alice := newDevice(t)
	doc, a := sharedDoc(t, r, alice)
	first := alice.sealed(t, doc, 1)
	a.mustPush(doc, first)

	// An envelope with the next sequence number that names some other
	// envelope as its predecessor.
	h := alice.header(t, doc, 2)
	rand.Read(h.Prev[:])
	var key [envelope.KeySize]byte
	e := wantError(t, a.push(doc, alice.seal(t, h, &key, []byte("x"))), wire.CodeBadChain)

	want := sha256.Sum256(first)
	if !strings.Contains(e.Message, hex.EncodeToString(want[:])) {
		t.Errorf("Error %q does not name the expected previous hash %x", e.Message, want)
	}
	// The rejected push used up nothing.
	if got := a.mustPush(doc, alice.sealed(t, doc, 2)); got != 2 {
		t.Fatalf("chained push after a broken one acked at cursor %d, want 2", got)
	}
}

// TestPushChainedToUnstoredSibling covers a device that sealed two
// envelopes with sequence number 1, pushed one, and chained its next
// envelope to the other: the two histories must not both reach the log.
func TestPushChainedToUnstoredSibling(t *testing.T) {
	r := startRelay(t)
	alice := newDevice(t)
	doc, a := sharedDoc(t, r, alice)
	stored := alice.sealed(t, doc, 1)
	a.mustPush(doc, stored)
	alice.sealed(t, doc, 1) // the sibling: now the one seq 2 chains to

	wantError(t, a.push(doc, alice.sealed(t, doc, 2)), wire.CodeBadChain)

	got, _ := storedEnvelopes(t, r, doc, alice)
	checkDeliveries(t, "log", got, []delivery{{1, string(stored)}})
}

func TestPushChainIsPerAuthorAndDocument(t *testing.T) {
	r := startRelay(t)
	alice, bob := newDevice(t), newDevice(t)
	doc, a := sharedDoc(t, r, alice, bob)
	other := newDocID(t)
	mustOK(t, a.create(other))
	b := connect(t, r, bob)

	// Each author and document starts its own chain at seq 1 with a zero
	// Prev, whatever others stored before.
	a.mustPush(doc, alice.sealed(t, doc, 1))
	b.mustPush(doc, bob.sealed(t, doc, 1))
	a.mustPush(other, alice.sealed(t, other, 1))
	a.mustPush(doc, alice.sealed(t, doc, 2))
	b.mustPush(doc, bob.sealed(t, doc, 2))
	if got := a.mustPush(other, alice.sealed(t, other, 2)); got != 2 {
		t.Fatalf("second push to the other document acked at cursor %d, want 2", got)
	}
}

func TestPushFirstEnvelopeWithPrevRejected(t *testing.T) {
	r := startRelay(t)
	alice := newDevice(t)
	doc, a := sharedDoc(t, r, alice)
	env := alice.sealed(t, doc, 1)
	// Set a byte of Prev in the header. The format reserves a nonzero
	// Prev for later envelopes, so the envelope no longer decodes.
	const prevOffset = 3 + 1 + 1 + 16 + 4 + 32 + 32 + 8
	env[prevOffset] ^= 1

	wantError(t, a.push(doc, env), wire.CodeBadEnvelope)
}

func TestPushEphemeralRejected(t *testing.T) {
	r := startRelay(t)
	alice := newDevice(t)
	doc, a := sharedDoc(t, r, alice)
	h := alice.header(t, doc, 1)
	h.Kind = envelope.KindEphemeral
	var key [envelope.KeySize]byte

	wantError(t, a.push(doc, alice.seal(t, h, &key, []byte("cursor at 12"))), wire.CodeBadEnvelope)

	if got := a.mustPush(doc, alice.sealed(t, doc, 1)); got != 1 {
		t.Fatalf("update after a rejected ephemeral push acked at cursor %d, want 1", got)
	}
}

func TestPushSnapshotJoinsTheChain(t *testing.T) {
	r := startRelay(t)
	alice := newDevice(t)
	doc, a := sharedDoc(t, r, alice)
	a.mustPush(doc, alice.sealed(t, doc, 1))
	h := alice.header(t, doc, 2)
	h.Kind = envelope.KindSnapshot
	var key [envelope.KeySize]byte
	a.mustPush(doc, alice.seal(t, h, &key, []byte("state")))

	if got := a.mustPush(doc, alice.sealed(t, doc, 3)); got != 3 {
		t.Fatalf("update after a snapshot acked at cursor %d, want 3", got)
	}
}

func TestChainSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	alice := newDevice(t)
	r := startRelayWith(t, dir, nil)
	doc, a := sharedDoc(t, r, alice)
	a.mustPush(doc, alice.sealed(t, doc, 1))
	a.mustPush(doc, alice.sealed(t, doc, 2))
	r.stop()

	r = startRelayWith(t, dir, nil)
	a = connect(t, r, alice)
	h := alice.header(t, doc, 3)
	rand.Read(h.Prev[:])
	var key [envelope.KeySize]byte
	wantError(t, a.push(doc, alice.seal(t, h, &key, []byte("x"))), wire.CodeBadChain)
	if got := a.mustPush(doc, alice.sealed(t, doc, 3)); got != 3 {
		t.Fatalf("chained push after restart acked at cursor %d, want 3", got)
	}
}

// TestLargestEnvelopeFitsFrame checks that a Push of the largest envelope
// the format allows, with the most seen entries and the largest
// ciphertext, fits in one frame.
func TestLargestEnvelopeFitsFrame(t *testing.T) {
	e := &envelope.Envelope{Ciphertext: make([]byte, envelope.MaxCiphertext)}
	e.Version, e.Kind, e.Seq = envelope.Version, envelope.KindUpdate, 2
	rand.Read(e.Prev[:])
	for i := range envelope.MaxSeen {
		var s envelope.Seen
		s.Author[0], s.Author[1] = byte(i>>8)+1, byte(i)
		s.Seq = 1
		rand.Read(s.Hash[:])
		e.Seen = append(e.Seen, s)
	}
	raw, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	doc := newDocID(t)
	frame, err := wire.Encode(&wire.Push{Ref: 1<<64 - 1, Doc: doc[:], Envelope: raw})
	if err != nil {
		t.Fatalf("Push of a %d-byte envelope does not encode: %v", len(raw), err)
	}
	if len(frame) > wire.MaxFrame {
		t.Fatalf("Push frame of %d bytes, over the limit of %d", len(frame), wire.MaxFrame)
	}
}
