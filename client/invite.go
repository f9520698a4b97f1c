package client

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vmihailenco/msgpack/v5"

	"interlude/client/keyring"
	"interlude/sync/envelope"
	"interlude/sync/membership"
	"interlude/sync/wire"
)

// Invitations let an admin, such as a therapist, add a person who has no
// public id to give yet, such as a new client. The admin's device makes a
// one-time link (package keyring) whose fragment carries a secret that
// never reaches the relay. The invitee's device proves it read the link
// with a MAC under that secret, signs the response with the key it will
// use in the document, and posts it to the relay under the invitation's
// public id. The admin's device takes the response on its next sync,
// checks both, and adds the invitee as a writer. Both people see the same
// comparison code and compare it by phone or in person before trusting
// the document. The relay stores one response per invitation, and the
// admin's device accepts one, so a link works once.

const invitationResponseDomain = "interlude/client/v1 invitation response\x00"

// invitationResponseSize is the encoded size of a signed response:
// version, invitation id, the invitee's two keys, the MAC and the
// invitee's signature.
const invitationResponseSize = 1 + 16 + 32 + 32 + 32 + ed25519.SignatureSize

// invitePrefix holds the admin's invitations, apart from "d/" so Open's
// scan for documents does not read them.
const invitePrefix = "inv/"

func inviteKey(id [16]byte) []byte { return append([]byte(invitePrefix), id[:]...) }

// inviteRecord is an invitation as the inviting device stores it.
type inviteRecord struct {
	_msgpack   struct{} `msgpack:",as_array"`
	Doc        []byte
	Invitation []byte // keyring.Invitation.MarshalBinary; secret
	Accepted   bool
	Invitee    []byte // the invitee's signing and box keys, once accepted
	Code       string // comparison code, once accepted
	// Failed holds why a response was refused. The relay keeps that
	// response, so the link is used up.
	Failed string
}

// InvitationStatus is one invitation of a document.
type InvitationStatus struct {
	ID       string
	Accepted bool
	// Code is the comparison code both people compare; set once accepted.
	Code string
	// Invitee is the invitee's public id; set once accepted.
	Invitee string
	// Failed explains why the response was refused, if it was.
	Failed string
}

// Invite makes a one-time invitation link to doc. Send it to the invitee
// by a channel you trust; whoever opens it first joins doc as a writer
// once this device syncs. The link is secret until it is used.
func (c *Client) Invite(ctx context.Context, doc envelope.DocID) (string, error) {
	host, err := relayHost(c.relay)
	if err != nil {
		return "", fmt.Errorf("%w; an invitation link names the relay, so it needs one", err)
	}
	// The relay serves the web app on the same address, so the link opens
	// it, over TLS exactly when the relay's WebSocket uses it.
	scheme := "https"
	if strings.HasPrefix(c.relay, "ws://") {
		scheme = "http"
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return "", ErrClosed
	}
	d, ok := c.docs[doc]
	if !ok {
		return "", fmt.Errorf("%w %s", ErrUnknownDocument, doc)
	}
	if m, ok := d.log.state.Member(d.self.member()); !ok || m.Role != membership.RoleAdmin {
		return "", fmt.Errorf("%w %s: only an admin can invite", ErrNotAdmin, doc)
	}
	inv, err := keyring.NewInvitation(d.self.keyringPublic(), doc)
	if err != nil {
		return "", err
	}
	link, err := inv.LinkAt(scheme, host)
	if err != nil {
		return "", err
	}
	secret, err := inv.MarshalBinary()
	if err != nil {
		return "", err
	}
	value, err := msgpack.Marshal(&inviteRecord{Doc: doc[:], Invitation: secret})
	if err != nil {
		return "", fmt.Errorf("client: encode invitation: %w", err)
	}
	var b Batch
	b.Put(inviteKey(inv.ID()), value)
	if err := c.store.Write(ctx, &b); err != nil {
		return "", fmt.Errorf("client: save invitation to document %s: %w", doc, err)
	}
	id := inv.ID()
	c.log.Info("invitation made", "doc", doc, "invitation", hex.EncodeToString(id[:6]))
	// A running session opens the invitation on the relay at once, so
	// the relay stores the response and notifies this device when it
	// arrives.
	c.signalWake()
	return link, nil
}

// AcceptInvite responds to the invitation link by posting this device's
// keys for the invitation's document to the relay, and returns the
// comparison code to compare with the inviter. The document appears on
// this device after the inviter's device has synced and this one syncs.
func (c *Client) AcceptInvite(ctx context.Context, link string) (code string, err error) {
	inv, err := keyring.ParseInvitationLink(link)
	if err != nil {
		return "", err
	}
	doc := envelope.DocID(inv.Doc)
	keys, err := c.id.documentKeys(doc)
	if err != nil {
		return "", err
	}
	self := keys.keyringPublic()
	resp := inv.Accept(self)
	body := encodeResponse(resp)
	sig := ed25519.Sign(keys.signing, append([]byte(invitationResponseDomain), body...))
	id := inv.ID()

	// The mark is stored before the response leaves, so every later
	// session claims the document key, and the relay can serve the
	// document to this device once the inviter adds it.
	marked, err := c.markInvited(ctx, doc)
	if err != nil {
		return "", err
	}

	err = c.withSession(ctx, func(s *session) error {
		_, err := s.call(ctx, &wire.PostInvite{ID: id[:], Response: append(body, sig...)})
		return err
	})
	var relayErr *wire.Error
	if err != nil && !marked && errors.As(err, &relayErr) {
		// A response the relay rejected leaves no mark behind, unless an
		// earlier response to another link to the same document made
		// it, because a mistyped second link must not undo the first.
		// After any other error the relay may have stored the response,
		// so the mark stays and sessions keep claiming the key.
		var b Batch
		b.Del(invitedKey(doc))
		if delErr := c.store.Write(ctx, &b); delErr != nil {
			c.log.Error("delete mark of a failed invitation", "doc", doc, "err", delErr)
		}
	}
	if err != nil {
		return "", fmt.Errorf("client: post invitation response: %w", err)
	}
	c.log.Info("invitation accepted", "invitation", hex.EncodeToString(id[:6]), "doc", doc)
	// A running session claims the new key on its next pass.
	c.signalWake()
	return inv.ComparisonCode(self), nil
}

func encodeResponse(r *keyring.InvitationResponse) []byte {
	b := make([]byte, 0, invitationResponseSize)
	b = append(b, 1)
	b = append(b, r.Invitation[:]...)
	b = append(b, r.Invitee.Sign[:]...)
	b = append(b, r.Invitee.Box[:]...)
	return append(b, r.MAC[:]...)
}

// decodeResponse parses a signed response and checks the invitee's
// signature, which proves the invitee holds the signing key it names.
func decodeResponse(b []byte) (*keyring.InvitationResponse, error) {
	if len(b) != invitationResponseSize || b[0] != 1 {
		return nil, fmt.Errorf("invitation response of %d bytes, want %d of version 1", len(b), invitationResponseSize)
	}
	body, sig := b[:len(b)-ed25519.SignatureSize], b[len(b)-ed25519.SignatureSize:]
	r := &keyring.InvitationResponse{}
	p := body[1:]
	p = p[copy(r.Invitation[:], p):]
	p = p[copy(r.Invitee.Sign[:], p):]
	p = p[copy(r.Invitee.Box[:], p):]
	copy(r.MAC[:], p)
	if !ed25519.Verify(r.Invitee.Sign[:], append([]byte(invitationResponseDomain), body...), sig) {
		return nil, errors.New("invitee's signature over the response does not verify")
	}
	return r, nil
}

// takeInvites requests from the relay the response to each open invitation and
// turns each valid one into a membership change.
func (s *session) takeInvites(ctx context.Context) error {
	type open struct {
		key []byte
		rec inviteRecord
	}
	var opens []open
	err := s.c.store.Scan(ctx, []byte(invitePrefix), func(key, value []byte) error {
		var rec inviteRecord
		if err := msgpack.Unmarshal(value, &rec); err != nil {
			return fmt.Errorf("decode invitation: %w", err)
		}
		if !rec.Accepted && rec.Failed == "" {
			opens = append(opens, open{slices.Clone(key), rec})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("client: read invitations: %w", err)
	}
	opens = slices.DeleteFunc(opens, func(o open) bool {
		// A link made by the version before document keys names no
		// document, so no response to it can verify. It is closed.
		inv, err := keyring.UnmarshalInvitation(o.rec.Invitation)
		if err != nil || inv.Doc != ([16]byte{}) {
			return false
		}
		o.rec.Failed = "made by an older version of Interlude, whose links name no document: make a new link"
		if err := s.c.saveInvite(ctx, o.key, o.rec); err != nil {
			s.c.log.Error("close an invitation of the older version", "err", err)
		}
		return true
	})
	for _, o := range opens {
		response, err := s.takeSlot(ctx, [16]byte(o.key[len(invitePrefix):]))
		if err != nil {
			return fmt.Errorf("client: take invitation response: %w", err)
		}
		if len(response) == 0 {
			continue
		}
		if err := s.c.redeem(ctx, o.key, o.rec, response); err != nil {
			return err
		}
	}
	return nil
}

// redeem checks a response to the invitation stored under key and, if it
// verifies, adds the invitee as a writer of the invitation's document.
func (c *Client) redeem(ctx context.Context, key []byte, rec inviteRecord, raw []byte) error {
	inv, err := keyring.UnmarshalInvitation(rec.Invitation)
	if err != nil {
		return fmt.Errorf("client: stored invitation: %w", err)
	}
	resp, err := decodeResponse(raw)
	if err == nil {
		err = inv.Redeem(resp)
	}
	var doc envelope.DocID
	copy(doc[:], rec.Doc)
	if err != nil {
		rec.Failed = err.Error()
		c.log.Warn("invitation response refused; the link is used up", "doc", doc, "err", err)
	} else {
		rec.Accepted = true
		rec.Invitee = append(resp.Invitee.Sign[:], resp.Invitee.Box[:]...)
		rec.Code = inv.ComparisonCode(resp.Invitee)
		rec.Invitation, err = inv.MarshalBinary()
		if err != nil {
			return err
		}
		to := PublicID{Sign: ed25519.PublicKey(slices.Clone(resp.Invitee.Sign[:])), Box: resp.Invitee.Box}
		// The response names the invitee's key for the document, so it is
		// added at once, without an offer.
		op := pendingOp{Op: uint8(membership.OpAdd), Sign: slices.Clone(to.Sign), Box: slices.Clone(to.Box[:]), Role: uint8(membership.RoleWriter)}
		if err := c.queueOp(ctx, doc, op); err != nil {
			return fmt.Errorf("client: add invitee to document %s: %w", doc, err)
		}
		c.log.Info("invitation redeemed", "doc", doc, "invitee", to.Fingerprint())
	}
	return c.saveInvite(ctx, key, rec)
}

// saveInvite stores rec under key.
func (c *Client) saveInvite(ctx context.Context, key []byte, rec inviteRecord) error {
	value, err := msgpack.Marshal(&rec)
	if err != nil {
		return fmt.Errorf("client: encode invitation: %w", err)
	}
	var b Batch
	b.Put(key, value)
	if err := c.store.Write(ctx, &b); err != nil {
		return fmt.Errorf("client: save invitation: %w", err)
	}
	return nil
}

// Invitations returns the invitations this device made to doc.
func (c *Client) Invitations(ctx context.Context, doc envelope.DocID) ([]InvitationStatus, error) {
	var out []InvitationStatus
	err := c.store.Scan(ctx, []byte(invitePrefix), func(key, value []byte) error {
		var rec inviteRecord
		if err := msgpack.Unmarshal(value, &rec); err != nil {
			return fmt.Errorf("decode invitation: %w", err)
		}
		if string(rec.Doc) != string(doc[:]) {
			return nil
		}
		st := InvitationStatus{ID: hex.EncodeToString(key[len(invitePrefix):]), Accepted: rec.Accepted, Code: rec.Code, Failed: rec.Failed}
		if len(rec.Invitee) == 64 {
			st.Invitee = PublicID{Sign: ed25519.PublicKey(rec.Invitee[:32]), Box: [32]byte(rec.Invitee[32:])}.String()
		}
		out = append(out, st)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("client: read invitations: %w", err)
	}
	return out, nil
}
