package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"

	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/hkdf"

	"interlude/client/keyring"
	"interlude/sync/envelope"
	"interlude/sync/wire"
)

// Document keys.
//
// A device is a member of each document it creates, or joins through an
// invitation, under key pairs of its own for that document. Its Ed25519
// key signs the device's envelopes and membership entries there, and the
// document key is sealed to its X25519 key. Both are derived with HKDF
// from the device's private keys and the document id, so the device
// stores nothing more and a new key never needs a backup. The relay, and
// anyone with a copy of its storage, finds a different member key in each
// document and cannot tell from the documents that one device is in
// several. On every connection the device claims the keys of its
// documents (wire.Claim), which the relay needs to serve them.
//
// A document shared with a device's public id, and one a linked device is
// added to, names the device key itself, because the sharer knows no
// other key of that device.

// docKeyInfo is the HKDF info prefix of document keys; the document id
// follows it.
const docKeyInfo = "interlude/client/v1 document key\x00"

// docKeys is a device's key pairs in one document. Its String, Format and
// LogValue show only the public fingerprint.
type docKeys struct {
	signing ed25519.PrivateKey
	boxKey  [32]byte // X25519 private key
	public  PublicID
}

// member returns the key the membership log and envelopes name.
func (k *docKeys) member() authorKey { return authorKey(k.public.Sign) }

// documentKeys derives the device's key pairs for document doc.
func (id *Identity) documentKeys(doc envelope.DocID) (*docKeys, error) {
	secret := append(id.signing.Seed(), id.boxKey[:]...)
	defer clear(secret)
	if id.recovery {
		root, err := recoveryRoot(secret)
		if err != nil {
			return nil, err
		}
		defer clear(root)
		return deriveDocKeys(root, doc)
	}
	return deriveDocKeys(secret, doc)
}

// deriveDocKeys derives the key pairs for document doc from secret.
func deriveDocKeys(secret []byte, doc envelope.DocID) (*docKeys, error) {
	var out [ed25519.SeedSize + 32]byte
	defer clear(out[:])
	r := hkdf.New(sha256.New, secret, nil, append([]byte(docKeyInfo), doc[:]...))
	if _, err := io.ReadFull(r, out[:]); err != nil {
		return nil, fmt.Errorf("client: derive the keys of document %s: %w", doc, err)
	}
	k := &docKeys{signing: ed25519.NewKeyFromSeed(out[:ed25519.SeedSize])}
	copy(k.boxKey[:], out[ed25519.SeedSize:])
	boxPub, err := curve25519.X25519(k.boxKey[:], curve25519.Basepoint)
	if err != nil {
		return nil, fmt.Errorf("client: derive the keys of document %s: %w", doc, err)
	}
	k.public = PublicID{Sign: k.signing.Public().(ed25519.PublicKey), Box: [32]byte(boxPub)}
	return k, nil
}

// deviceKeys returns the device's own key pairs as the keys of a
// document shared with its public id.
func (id *Identity) deviceKeys() *docKeys {
	return &docKeys{signing: id.signing, boxKey: id.boxKey, public: id.public}
}

// keysFor returns this device's keys in document doc: its document keys
// when perDocument is set, else its device keys.
func (c *Client) keysFor(doc envelope.DocID, perDocument bool) (*docKeys, error) {
	if !perDocument {
		return c.id.deviceKeys(), nil
	}
	return c.id.documentKeys(doc)
}

// String returns the keys' public fingerprint.
func (k docKeys) String() string { return "document keys " + k.public.Fingerprint() }

// Format prints String for every verb, so %x or %#v cannot print the
// private keys.
func (k docKeys) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

// LogValue keeps the private keys out of logs.
func (k docKeys) LogValue() slog.Value { return slog.StringValue(k.public.Fingerprint()) }

// keyringPublic returns the public keys in package keyring's form.
func (k *docKeys) keyringPublic() keyring.PublicKeys {
	return keyring.PublicKeys{Sign: [32]byte(k.public.Sign), Box: k.public.Box}
}

// signalWake wakes the running session, if there is one, so it does its
// work at once instead of at its next timed pass.
func (c *Client) signalWake() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// invitedPrefix starts the store keys that mark documents this device
// accepted an invitation to and does not hold yet.
const invitedPrefix = "invited/"

func invitedKey(doc envelope.DocID) []byte { return append([]byte(invitedPrefix), doc[:]...) }

// markInvited records that this device accepted an invitation to doc, so
// that sessions claim its document key until the document arrives. It
// reports whether doc was marked before.
func (c *Client) markInvited(ctx context.Context, doc envelope.DocID) (marked bool, err error) {
	c.mu.Lock()
	d, known := c.docs[doc]
	member := known && !d.removed()
	c.mu.Unlock()
	if member {
		return false, fmt.Errorf("client: this device is already a member of document %s: open it instead of accepting the invitation", doc)
	}
	value, err := c.store.Get(ctx, invitedKey(doc))
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return false, fmt.Errorf("client: read invitation mark of document %s: %w", doc, err)
	case !isOfferMark(value):
		return true, nil
	default:
		// A mark that an offer from a device not linked made can give
		// way to other offers; the accepted invitation's must not. It is
		// replaced, and removed as a new one if the invitation fails.
	}
	var b Batch
	b.Put(invitedKey(doc), []byte{1})
	if err := c.store.Write(ctx, &b); err != nil {
		return false, fmt.Errorf("client: save invitation to document %s: %w", doc, err)
	}
	return marked, nil
}

// invitedTo reports whether this device accepted an invitation to doc
// that has not brought the document yet.
func (c *Client) invitedTo(ctx context.Context, doc envelope.DocID) (bool, error) {
	marked, err := c.exists(ctx, invitedKey(doc))
	if err != nil {
		return false, fmt.Errorf("client: read invitation mark of document %s: %w", doc, err)
	}
	return marked, nil
}

// claimKeys claims on the session the document keys it has not claimed
// yet: those of the documents this device holds under document keys, and
// those of the documents it accepted invitations to.
func (s *session) claimKeys(ctx context.Context) error {
	var docs []envelope.DocID
	s.c.mu.Lock()
	for id, d := range s.c.docs {
		if d.meta.DocKey {
			docs = append(docs, id)
		}
	}
	s.c.mu.Unlock()
	err := s.c.store.Scan(ctx, []byte(invitedPrefix), func(key, _ []byte) error {
		if len(key) == len(invitedPrefix)+len(envelope.DocID{}) {
			docs = append(docs, envelope.DocID(key[len(invitedPrefix):]))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("client: read invitation marks: %w", err)
	}
	return s.claim(ctx, docs)
}

// claimHeld claims the document keys of those of docs that this device
// holds under document keys. A step that sends requests about documents
// calls it first, because a document can be created, or registered by
// another session, after this session's last claimKeys.
func (s *session) claimHeld(ctx context.Context, docs []envelope.DocID) error {
	s.c.mu.Lock()
	docs = slices.DeleteFunc(slices.Clone(docs), func(id envelope.DocID) bool {
		d, ok := s.c.docs[id]
		return !ok || !d.meta.DocKey
	})
	s.c.mu.Unlock()
	return s.claim(ctx, docs)
}

// claim sends Claim for the documents of docs whose keys the session has
// not claimed yet, wire.MaxClaims to a message.
func (s *session) claim(ctx context.Context, docs []envelope.DocID) error {
	docs = slices.DeleteFunc(docs, func(id envelope.DocID) bool { return s.claimed[id] })
	slices.SortFunc(docs, func(a, b envelope.DocID) int { return bytes.Compare(a[:], b[:]) })
	docs = slices.Compact(docs)
	for chunk := range slices.Chunk(docs, wire.MaxClaims) {
		m := &wire.Claim{Claims: make([]wire.DocClaim, 0, len(chunk))}
		for _, id := range chunk {
			k, err := s.c.documentKeysFor(id)
			if err != nil {
				return err
			}
			sig := ed25519.Sign(k.signing, wire.ClaimMessage(s.host, s.challenge, id[:]))
			m.Claims = append(m.Claims, wire.DocClaim{Doc: bytes.Clone(id[:]), Key: k.public.Sign, Signature: sig})
		}
		if _, err := s.call(ctx, m); err != nil {
			return fmt.Errorf("client: claim the keys of %d documents: %w", len(chunk), err)
		}
		for _, id := range chunk {
			s.claimed[id] = true
		}
	}
	if len(docs) > 0 {
		s.c.log.Debug("document keys claimed", "documents", len(docs))
	}
	return nil
}

// documentKeysFor returns this device's document keys for doc: the keys
// derived when the document was loaded, if this device holds it under
// them, or else keys derived now.
func (c *Client) documentKeysFor(doc envelope.DocID) (*docKeys, error) {
	c.mu.Lock()
	var held *docKeys
	if d, ok := c.docs[doc]; ok && d.meta.DocKey {
		held = d.self
	}
	c.mu.Unlock()
	if held != nil {
		return held, nil
	}
	return c.id.documentKeys(doc)
}

// MemberID returns the public id under which this device is a member of
// doc: its key for that document, or its device id for a document shared
// with that id. A member list names this device by it.
func (c *Client) MemberID(doc envelope.DocID) (PublicID, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.docs[doc]
	if !ok {
		return PublicID{}, fmt.Errorf("%w %s", ErrUnknownDocument, doc)
	}
	return PublicID{Sign: bytes.Clone(d.self.public.Sign), Box: d.self.public.Box}, nil
}

// PersonMembers returns the members of doc that are devices of this
// device's person, this device included, as the membership log groups
// them: the devices linked into doc with add_device and the member that
// linked them. It returns none once this device is no member.
func (c *Client) PersonMembers(doc envelope.DocID) ([]PublicID, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.docs[doc]
	if !ok {
		return nil, fmt.Errorf("%w %s", ErrUnknownDocument, doc)
	}
	st := d.log.state
	mine, ok := st.Person(d.self.member())
	if !ok {
		return nil, nil
	}
	var out []PublicID
	for _, m := range st.Members() {
		if p, _ := st.Person(m.Sign); p == mine {
			out = append(out, PublicID{Sign: bytes.Clone(m.Sign[:]), Box: m.Box})
		}
	}
	return out, nil
}
