package relay_test

import (
	"testing"

	"github.com/gorilla/websocket"

	"interlude/sync/wire"
)

// checkStillServing fails the test unless the relay authenticates a new
// connection and stores a push.
func checkStillServing(t *testing.T, r *testRelay) {
	t.Helper()
	dev := newDevice(t)
	c := connect(t, r, dev)
	doc := newDocID(t)
	mustOK(t, c.create(doc))
	if got := c.mustPush(doc, dev.sealed(t, doc, 1)); got != 1 {
		t.Fatalf("push on a new connection acked at cursor %d, want 1", got)
	}
}

func TestMalformedFrameClosesConnection(t *testing.T) {
	r := startRelay(t)
	alice := newDevice(t)
	doc, a := sharedDoc(t, r, alice)
	bad := connect(t, r, newDevice(t))

	bad.sendFrame([]byte{0x92, 0xff, 0x00})

	e := wantError(t, bad.recv(), wire.CodeMalformed)
	if e.Ref != 0 {
		t.Errorf("Error for an undecodable frame has Ref %d, want 0", e.Ref)
	}
	bad.expectClosed()
	// A connection opened before the bad one is unaffected.
	if got := a.mustPush(doc, alice.sealed(t, doc, 1)); got != 1 {
		t.Fatalf("push on another connection acked at cursor %d, want 1", got)
	}
	checkStillServing(t, r)
}

func TestMalformedFrameBeforeAuth(t *testing.T) {
	r := startRelay(t)
	c := dial(t, r, newDevice(t))

	c.sendFrame([]byte("hello"))

	wantError(t, c.recv(), wire.CodeMalformed)
	c.expectClosed()
	checkStillServing(t, r)
}

func TestTextFrameClosesConnection(t *testing.T) {
	r := startRelay(t)
	c := connect(t, r, newDevice(t))

	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"push"}`)); err != nil {
		t.Fatal(err)
	}

	wantError(t, c.recv(), wire.CodeMalformed)
	c.expectClosed()
}

func TestOversizedFrameClosesConnection(t *testing.T) {
	sizes := map[string]int{
		"one byte over": wire.MaxFrame + 1,
		"1 MiB over":    wire.MaxFrame + 1<<20,
	}
	for name, size := range sizes {
		t.Run(name, func(t *testing.T) {
			r := startRelay(t)
			alice := newDevice(t)
			doc, a := sharedDoc(t, r, alice)
			bad := connect(t, r, alice)

			// The relay stops reading at the limit, so the write may
			// only finish once the relay has drained or closed.
			written := make(chan error, 1)
			go func() { written <- bad.ws.WriteMessage(websocket.BinaryMessage, make([]byte, size)) }()

			wantError(t, bad.recv(), wire.CodeTooLarge)
			bad.expectClosed()
			<-written

			got, _ := storedEnvelopes(t, r, doc, alice)
			if len(got) != 0 {
				t.Errorf("log holds %d envelopes after an oversized frame, want none", len(got))
			}
			if cursor := a.mustPush(doc, alice.sealed(t, doc, 1)); cursor != 1 {
				t.Errorf("push on another connection acked at cursor %d, want 1", cursor)
			}
		})
	}
}

func TestOversizedFrameBeforeAuth(t *testing.T) {
	r := startRelay(t)
	c := dial(t, r, newDevice(t))

	c.sendFrame(make([]byte, wire.MaxFrame+1))

	wantError(t, c.recv(), wire.CodeTooLarge)
	c.expectClosed()
	checkStillServing(t, r)
}

func TestFrameAtLimitAccepted(t *testing.T) {
	r := startRelay(t)
	c := connect(t, r, newDevice(t))
	// A Push frame of exactly MaxFrame bytes: the envelope field is
	// padded so that the encoded frame hits the limit.
	// Measure the overhead with an envelope long enough to take the same
	// 5-byte msgpack header as the final one, then grow it to the limit.
	doc := newDocID(t)
	push := &wire.Push{Ref: 1, Doc: doc[:], Envelope: make([]byte, 1<<16)}
	frame, err := wire.Encode(push)
	if err != nil {
		t.Fatal(err)
	}
	push.Envelope = make([]byte, len(push.Envelope)+wire.MaxFrame-len(frame))
	frame, err = wire.Encode(push)
	if err != nil {
		t.Fatal(err)
	}
	if len(frame) != wire.MaxFrame {
		t.Fatalf("test frame is %d bytes, want %d", len(frame), wire.MaxFrame)
	}

	c.sendFrame(frame)

	// Decoded and handled as a request: the device is no member.
	wantError(t, c.recv(), wire.CodeNotMember)
}

func TestNonRequestMessageRejected(t *testing.T) {
	r := startRelay(t)
	c := connect(t, r, newDevice(t))

	c.send(&wire.Ack{Ref: 3, Cursor: 1})

	wantError(t, c.recv(), wire.CodeMalformed)
	// The session goes on.
	if docs := c.listDocs(); len(docs.Grants) != 0 {
		t.Fatalf("%d grants, want 0", len(docs.Grants))
	}
}
