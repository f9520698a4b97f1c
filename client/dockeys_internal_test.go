package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
	"golang.org/x/crypto/nacl/box"

	"interlude/client/keyring"
	"interlude/sync/envelope"
	"interlude/sync/wire"
)

// TestDocumentKeysDerivation checks that a device's keys for a document
// are stable, differ between documents and devices, and seal and open
// a box as a pair.
func TestDocumentKeysDerivation(t *testing.T) {
	id := newTestIdentity(t)
	other := newTestIdentity(t)
	doc1, doc2 := envelope.DocID{1}, envelope.DocID{2}
	a, err := id.documentKeys(doc1)
	if err != nil {
		t.Fatal(err)
	}
	again, err := id.documentKeys(doc1)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.signing, again.signing) || a.boxKey != again.boxKey {
		t.Error("deriving the keys of one document twice gave different keys")
	}
	for name, k := range map[string]*docKeys{"another document": must(id.documentKeys(doc2)), "another device": must(other.documentKeys(doc1))} {
		if bytes.Equal(k.public.Sign, a.public.Sign) || k.public.Box == a.public.Box {
			t.Errorf("keys for %s equal the first document's", name)
		}
	}
	if bytes.Equal(a.public.Sign, id.public.Sign) || a.public.Box == id.public.Box {
		t.Error("document keys equal the device keys")
	}

	sealed, err := box.SealAnonymous(nil, []byte("document key"), &a.public.Box, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := box.OpenAnonymous(nil, sealed, &a.public.Box, &a.boxKey); !ok || string(got) != "document key" {
		t.Error("a box sealed to the public box key does not open with the private one")
	}
	msg := []byte("claim")
	if !ed25519.Verify(a.public.Sign, msg, ed25519.Sign(a.signing, msg)) {
		t.Error("a signature by the signing key does not verify under the public one")
	}
}

func must(k *docKeys, err error) *docKeys {
	if err != nil {
		panic(err)
	}
	return k
}

// TestDocumentKeysRedacted formats and logs document keys in every usual
// way and checks that no private key byte shows.
func TestDocumentKeysRedacted(t *testing.T) {
	id := newTestIdentity(t)
	k, err := id.documentKeys(envelope.DocID{3})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("keys", "keys", k)
	outputs := []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %x %s", k, k, k, k, k), fmt.Sprintf("%v %+v %#v %x", *k, *k, *k, *k), logs.String()}
	secrets := []string{hex.EncodeToString(k.signing.Seed()), hex.EncodeToString(k.boxKey[:]), string(k.signing.Seed()), string(k.boxKey[:])}
	for _, out := range outputs {
		for _, secret := range secrets {
			if strings.Contains(out, secret) || strings.Contains(strings.ToLower(out), secret) {
				t.Errorf("output %q shows a private key", out)
			}
		}
	}
	if !strings.Contains(logs.String(), k.public.Fingerprint()) {
		t.Errorf("log %q lacks the public fingerprint", logs.String())
	}
}

// BenchmarkDocumentKeys measures deriving a device's keys for one
// document, which a session does once per document it claims.
func BenchmarkDocumentKeys(b *testing.B) {
	id, err := NewIdentity()
	if err != nil {
		b.Fatal(err)
	}
	var doc envelope.DocID
	for b.Loop() {
		doc[0]++
		if _, err := id.documentKeys(doc); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDecodeMetaBeforeDocumentKeys decodes a document record as clients
// stored it before document keys: it must open, with the device keys.
func TestDecodeMetaBeforeDocumentKeys(t *testing.T) {
	old := docMetaV1{Key: []byte{1, 2}, Replica: 7, Cursor: 9, LastSeq: 3, Registered: true, NextRecord: 4, EpochKeys: [][]byte{{1, 2}}}
	b, err := msgpack.Marshal(&old)
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeMeta(b)
	if err != nil {
		t.Fatalf("decode a record stored before document keys: %v", err)
	}
	if m.DocKey || m.Replica != 7 || m.Cursor != 9 || m.LastSeq != 3 || !m.Registered || m.NextRecord != 4 || len(m.EpochKeys) != 1 {
		t.Errorf("decoded %+v from %+v", m, old)
	}
	now := docMeta{Replica: 8, DocKey: true}
	b, err = msgpack.Marshal(&now)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := decodeMeta(b); err != nil || !m.DocKey || m.Replica != 8 {
		t.Errorf("decode a current record = %+v, %v", m, err)
	}
	if _, err := decodeMeta([]byte{0x91, 0x01}); err == nil {
		t.Error("a one-element array decoded as a document record")
	}
}

// TestInvitationOfOlderVersionClosed stores an open invitation as the
// version before document keys made it: the next take of responses must
// close it with a reason, without asking the relay for it.
func TestInvitationOfOlderVersionClosed(t *testing.T) {
	ctx := context.Background()
	id := newTestIdentity(t)
	c, err := Open(ctx, Config{Store: NewMemoryStore(), Identity: id})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	inv, err := keyring.NewInvitation(id.deviceKeys().keyringPublic(), [16]byte{})
	if err != nil {
		t.Fatal(err)
	}
	v2, err := inv.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	v1 := append([]byte{1}, v2[1:1+32+64]...)
	v1 = append(v1, v2[1+32+64+16:]...)
	doc := envelope.DocID{4}
	if err := c.saveInvite(ctx, inviteKey(inv.ID()), inviteRecord{Doc: doc[:], Invitation: v1}); err != nil {
		t.Fatal(err)
	}

	// A session without a connection: a request to the relay would fail.
	s := &session{c: c, ctx: ctx, replies: map[uint64]chan wire.Message{}}
	if err := s.takeInvites(ctx); err != nil {
		t.Fatalf("takeInvites: %v", err)
	}
	invs, err := c.Invitations(ctx, doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(invs) != 1 || !strings.Contains(invs[0].Failed, "older version") {
		t.Errorf("invitations after the take = %+v, want the one closed as of the older version", invs)
	}
}
