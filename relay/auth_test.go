package relay_test

import (
	"bytes"
	"crypto/ed25519"
	"testing"

	"interlude/sync/membership"
	"interlude/sync/wire"
)

func TestAuthValid(t *testing.T) {
	r := startRelay(t)
	c := dial(t, r, newDevice(t))

	if c.hello.Version != wire.Version {
		t.Errorf("Hello.Version = %d, want %d", c.hello.Version, wire.Version)
	}
	if c.hello.Relay != r.addr {
		t.Errorf("Hello.Relay = %q, want the Host the client dialed, %q", c.hello.Relay, r.addr)
	}
	if len(c.hello.Challenge) != wire.ChallengeSize {
		t.Errorf("challenge of %d bytes, want %d", len(c.hello.Challenge), wire.ChallengeSize)
	}

	c.send(c.auth(wire.Version, c.hello.Relay))
	welcome, ok := c.recv().(*wire.Welcome)
	if !ok {
		t.Fatal("valid Auth not answered with Welcome")
	}
	if welcome.Version != wire.Version {
		t.Errorf("Welcome.Version = %d, want %d", welcome.Version, wire.Version)
	}
}

func TestAuthChallengeIsFresh(t *testing.T) {
	r := startRelay(t)
	dev := newDevice(t)
	first := dial(t, r, dev)
	second := dial(t, r, dev)

	if bytes.Equal(first.hello.Challenge, second.hello.Challenge) {
		t.Fatal("two connections got the same challenge, so a signed Auth could be replayed")
	}
}

func TestAuthBadSignature(t *testing.T) {
	r := startRelay(t)
	c := dial(t, r, newDevice(t))
	auth := c.auth(wire.Version, c.hello.Relay)
	// Sign with another key but claim this device's key.
	other := newDevice(t)
	auth.Signature = ed25519.Sign(other.priv, wire.AuthMessage(c.hello.Relay, c.hello.Challenge))

	c.send(auth)

	e := wantError(t, c.recv(), wire.CodeAuthFailed)
	if e.Ref != 0 {
		t.Errorf("auth Error has Ref %d, want 0", e.Ref)
	}
	c.expectClosed()
}

func TestAuthWrongRelayHost(t *testing.T) {
	r := startRelay(t)
	c := dial(t, r, newDevice(t))

	c.send(c.auth(wire.Version, "other-relay.example:443"))

	wantError(t, c.recv(), wire.CodeAuthFailed)
	c.expectClosed()
}

func TestAuthShortDeviceKey(t *testing.T) {
	r := startRelay(t)
	c := dial(t, r, newDevice(t))
	auth := c.auth(wire.Version, c.hello.Relay)
	auth.Device = auth.Device[:16]

	c.send(auth)

	wantError(t, c.recv(), wire.CodeAuthFailed)
	c.expectClosed()
}

func TestAuthUnsupportedVersion(t *testing.T) {
	r := startRelay(t)
	c := dial(t, r, newDevice(t))

	c.send(c.auth(wire.Version+1, c.hello.Relay))

	wantError(t, c.recv(), wire.CodeUnsupportedVersion)
	c.expectClosed()
}

func TestRequestBeforeAuth(t *testing.T) {
	r := startRelay(t)
	c := dial(t, r, newDevice(t))
	doc := newDocID(t)

	key, _ := membership.NewKey()
	first, err := membership.NewCreate(doc, c.dev.priv, c.dev.boxPub, key)
	if err != nil {
		t.Fatal(err)
	}
	reply := c.request(7, &wire.AppendEntry{Ref: 7, Doc: doc[:], Entry: first.Encode()})
	wantError(t, reply, wire.CodeNotAuthenticated)

	// The connection stays open for Auth, and the early create did nothing.
	c.send(c.auth(wire.Version, c.hello.Relay))
	if _, ok := c.recv().(*wire.Welcome); !ok {
		t.Fatal("Auth after a rejected request not answered with Welcome")
	}
	docs, ok := c.request(8, &wire.ListDocs{Ref: 8}).(*wire.Docs)
	if !ok {
		t.Fatal("ListDocs not answered with Docs")
	}
	if len(docs.Grants) != 0 {
		t.Errorf("device has %d documents after a Create sent before Auth, want 0", len(docs.Grants))
	}
}

func TestAuthTwiceRejected(t *testing.T) {
	r := startRelay(t)
	c := connect(t, r, newDevice(t))

	c.send(c.auth(wire.Version, c.hello.Relay))

	wantError(t, c.recv(), wire.CodeMalformed)
	// The session goes on.
	docs, ok := c.request(1, &wire.ListDocs{Ref: 1}).(*wire.Docs)
	if !ok || len(docs.Grants) != 0 {
		t.Fatalf("ListDocs after a second Auth = %#v, want empty Docs", docs)
	}
}

// TestAuthProofForAnotherRelayRejected replays a valid proof made for one
// relay against another: the challenge and the host name it signs belong
// to the first relay, so the second must refuse it.
func TestAuthProofForAnotherRelayRejected(t *testing.T) {
	first, second := startRelay(t), startRelay(t)
	dev := newDevice(t)
	a := dial(t, first, dev)
	proof := a.auth(wire.Version, a.hello.Relay)
	b := dial(t, second, dev)
	if b.hello.Relay == a.hello.Relay {
		t.Fatalf("both relays name themselves %q", a.hello.Relay)
	}

	b.send(proof)

	wantError(t, b.recv(), wire.CodeAuthFailed)
	b.expectClosed()
	// The proof is still good for the relay it was made for.
	a.send(proof)
	if _, ok := a.recv().(*wire.Welcome); !ok {
		t.Fatal("proof not accepted by the relay it was made for")
	}
}
