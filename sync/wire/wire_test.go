package wire

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"reflect"
	"testing"
)

func TestEncodeDecodeEveryType(t *testing.T) {
	msgs := []Message{
		&Hello{Version: Version, Relay: "127.0.0.1:8080", Challenge: bytes.Repeat([]byte{7}, ChallengeSize), RelayKey: make([]byte, 32)},
		&Auth{Version: Version, Device: make([]byte, 32), Signature: make([]byte, 64)},
		&Welcome{Version: Version},
		&Error{Ref: 3, Code: CodeNotMember, Message: "device is not a member"},
		&OK{Ref: 4},
		&AppendEntry{Ref: 5, Doc: make([]byte, 16), Entry: []byte{1, 2}},
		&EntryAck{Ref: 6, Doc: make([]byte, 16), Index: 2, Countersig: []byte{3}},
		&GetLog{Ref: 16, Doc: make([]byte, 16), From: 1},
		&Log{Ref: 17, Doc: make([]byte, 16), Entries: []LogEntry{{Entry: []byte{1}, Countersig: []byte{2}}}, More: true},
		&PostInvite{Ref: 18, ID: make([]byte, 16), Response: []byte{4}},
		&TakeInvite{Ref: 19, ID: make([]byte, 16)},
		&Invite{Ref: 20, ID: make([]byte, 16), Response: []byte{5}},
		&ListDocs{Ref: 7},
		&ListDocs{Ref: 21, After: bytes.Repeat([]byte{0xab}, 16), Limit: 100},
		&Docs{Ref: 8, Grants: []Grant{{Doc: make([]byte, 16), SealedKey: []byte{4}, AddedBy: make([]byte, 32)}}},
		&Docs{Ref: 22, Grants: []Grant{{Doc: make([]byte, 16), SealedKey: []byte{4}, AddedBy: make([]byte, 32)}}, More: true},
		&Subscribe{Ref: 9, Doc: make([]byte, 16), After: 12, IncludeOwn: true},
		&Push{Ref: 10, Doc: make([]byte, 16), Envelope: []byte{5, 6}},
		&Ack{Ref: 11, Doc: make([]byte, 16), Cursor: 13},
		&Deliver{Doc: make([]byte, 16), Cursor: 14, Envelope: []byte{7}},
		&Deliver{Doc: make([]byte, 16), Cursor: 15, Entry: []byte{8}, Countersig: []byte{9}},
		&CaughtUp{Doc: make([]byte, 16), Cursor: 15},
		&Shared{},
		&Claim{Ref: 23, Claims: []DocClaim{{Doc: make([]byte, 16), Key: make([]byte, 32), Signature: make([]byte, 64)}}},
		&PutChain{Ref: 24, ID: make([]byte, 32), From: 2, Entries: [][]byte{{1}}, Blobs: [][]byte{{2}, {3}}, Writers: [][]byte{make([]byte, 32)}},
		&GetChain{Ref: 25, ID: make([]byte, 32), From: 1, BlobsFrom: 3},
		&Chain{Ref: 26, ID: make([]byte, 32), Entries: [][]byte{{4}}, Blobs: [][]byte{{5}}},
	}
	for _, m := range msgs {
		frame, err := Encode(m)
		if err != nil {
			t.Fatalf("Encode(%T): %v", m, err)
		}
		got, err := Decode(frame)
		if err != nil {
			t.Fatalf("Decode(%T): %v", m, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("round trip of %T = %+v, want %+v", m, got, m)
		}
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	for _, frame := range [][]byte{nil, {0x90}, {0x92, 0xff, 0x90}, {0x92, 99, 0x90}, []byte("hello")} {
		if _, err := Decode(frame); !errors.Is(err, ErrMalformed) {
			t.Errorf("Decode(%x): err = %v, want ErrMalformed", frame, err)
		}
	}
}

// TestDecodeRejectsVersion3DocumentList decodes ListDocs and Docs frames
// as version 3 encoded them, without the paging fields. They must fail
// as malformed, the reason version 4 needs its own number.
func TestDecodeRejectsVersion3DocumentList(t *testing.T) {
	frames := map[string][]byte{
		// [8, [Ref 7]]
		"ListDocs": {0x92, byte(TypeListDocs), 0x91, 0x07},
		// [9, [Ref 7, Grants []]]
		"Docs": {0x92, byte(TypeDocs), 0x92, 0x07, 0x90},
	}
	for name, frame := range frames {
		if _, err := Decode(frame); !errors.Is(err, ErrMalformed) {
			t.Errorf("Decode of a version 3 %s frame: err = %v, want ErrMalformed", name, err)
		}
	}
}

// TestDocsOfMaxGrantsDecodes checks the arithmetic of frameLimits: a
// Docs frame of 16382 grants decodes, and one of 16383 does not.
func TestDocsOfMaxGrantsDecodes(t *testing.T) {
	docs := func(n int) *Docs {
		d := &Docs{Ref: 1, Grants: make([]Grant, n), More: true}
		for i := range d.Grants {
			d.Grants[i] = Grant{Doc: make([]byte, 16), SealedKey: make([]byte, 80), AddedBy: make([]byte, 32)}
		}
		return d
	}
	frame, err := Encode(docs(16382))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(frame)
	if err != nil {
		t.Fatalf("Decode of Docs with 16382 grants: %v", err)
	}
	if n := len(got.(*Docs).Grants); n != 16382 {
		t.Errorf("decoded %d grants, want 16382", n)
	}

	frame, err = Encode(docs(16383))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(frame); !errors.Is(err, ErrMalformed) {
		t.Errorf("Decode of Docs with 16383 grants: err = %v, want ErrMalformed for too many elements", err)
	}
}

func TestDecodeRejectsOversizedFrame(t *testing.T) {
	if _, err := Decode(make([]byte, MaxFrame+1)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed", err)
	}
}

func TestVerifyAuth(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	challenge := bytes.Repeat([]byte{9}, ChallengeSize)
	a := &Auth{Version: Version, Device: pub, Signature: ed25519.Sign(priv, AuthMessage("relay.example:443", challenge))}
	if err := VerifyAuth(a, "relay.example:443", challenge); err != nil {
		t.Fatalf("valid proof: %v", err)
	}
	if err := VerifyAuth(a, "other.example:443", challenge); err == nil {
		t.Error("proof made for another relay host verified")
	}
	if err := VerifyAuth(a, "relay.example:443", bytes.Repeat([]byte{8}, ChallengeSize)); err == nil {
		t.Error("proof over another challenge verified")
	}
	a.Device = a.Device[:31]
	if err := VerifyAuth(a, "relay.example:443", challenge); err == nil {
		t.Error("short device key verified")
	}
}

func TestVerifyClaim(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	challenge := bytes.Repeat([]byte{9}, ChallengeSize)
	doc := bytes.Repeat([]byte{3}, 16)
	valid := func() *DocClaim {
		return &DocClaim{Doc: bytes.Clone(doc), Key: pub, Signature: ed25519.Sign(priv, ClaimMessage("relay.example:443", challenge, doc))}
	}
	if err := VerifyClaim(valid(), "relay.example:443", challenge); err != nil {
		t.Fatalf("valid claim: %v", err)
	}
	if err := VerifyClaim(valid(), "other.example:443", challenge); err == nil {
		t.Error("claim made for another relay host verified")
	}
	if err := VerifyClaim(valid(), "relay.example:443", bytes.Repeat([]byte{8}, ChallengeSize)); err == nil {
		t.Error("claim over another connection's challenge verified")
	}
	other := valid()
	other.Doc[0] ^= 1
	if err := VerifyClaim(other, "relay.example:443", challenge); err == nil {
		t.Error("claim moved to another document verified")
	}
	// An Auth signature over the same challenge is no claim: the domains
	// differ.
	auth := valid()
	auth.Signature = ed25519.Sign(priv, AuthMessage("relay.example:443", challenge))
	if err := VerifyClaim(auth, "relay.example:443", challenge); err == nil {
		t.Error("an Auth signature verified as a claim")
	}
	short := valid()
	short.Doc = short.Doc[:15]
	if err := VerifyClaim(short, "relay.example:443", challenge); err == nil {
		t.Error("claim with a 15-byte document id verified")
	}
}

func FuzzDecode(f *testing.F) {
	seeds := []Message{
		&Push{Ref: 1, Doc: make([]byte, 16), Envelope: []byte{1}},
		&ListDocs{Ref: 2, After: make([]byte, 16), Limit: 3},
		&Claim{Ref: 4, Claims: []DocClaim{{Doc: make([]byte, 16), Key: make([]byte, 32), Signature: make([]byte, 64)}}},
		&Docs{Ref: 3, Grants: []Grant{{Doc: make([]byte, 16), SealedKey: []byte{4}, AddedBy: make([]byte, 32)}}, More: true},
	}
	for _, m := range seeds {
		frame, err := Encode(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(frame)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		if _, err := Encode(m); err != nil && len(b) <= MaxFrame {
			t.Fatalf("decoded message does not encode: %v", err)
		}
	})
}

// BenchmarkClaim measures what one document key's claim costs each side
// on every connection: the client's signature and the relay's check.
func BenchmarkClaim(b *testing.B) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	challenge := bytes.Repeat([]byte{9}, ChallengeSize)
	doc := bytes.Repeat([]byte{3}, 16)
	b.Run("sign", func(b *testing.B) {
		for b.Loop() {
			ed25519.Sign(priv, ClaimMessage("relay.example:443", challenge, doc))
		}
	})
	c := &DocClaim{Doc: doc, Key: pub, Signature: ed25519.Sign(priv, ClaimMessage("relay.example:443", challenge, doc))}
	b.Run("verify", func(b *testing.B) {
		for b.Loop() {
			if err := VerifyClaim(c, "relay.example:443", challenge); err != nil {
				b.Fatal(err)
			}
		}
	})
}
