package keyring

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
)

// Errors returned by Invitation.Redeem.
var (
	// ErrInvitationMAC is returned for a response whose MAC does not verify:
	// it was made without the invitation secret, or its keys were changed.
	ErrInvitationMAC = errors.New("keyring: invitation response does not verify")
	// ErrInvitationUsed is returned for a response to an invitation that
	// another invitee already redeemed.
	ErrInvitationUsed = errors.New("keyring: invitation was already used")
)

const (
	invitationSecretSize  = 32
	invitationPayloadSize = invitationSecretSize + 64 + 16
	invitationRecordSize  = 1 + invitationPayloadSize + 1 + 64
	invitationVersion     = 2
	// A version 1 record has no document id.
	invitationRecordSizeV1 = invitationRecordSize - 16
	invitationParam        = "invite"
	labelInvitationID      = "interlude/keyring/v1 invitation id"
	labelInvitationMAC     = "interlude/keyring/v1 invitation mac"
	domainInvitation       = "interlude/keyring/v1 invitation response"
)

// Invitation is a one-time invitation, for instance from a therapist to a
// client, to one document. The inviter sends Link out of band. The link
// carries a random secret, the inviter's public keys and the document's
// id in its fragment, which browsers never send to a server, so the relay
// never learns the secret. The document id lets the invitee respond with
// its key for that document alone.
//
// The inviter keeps the Invitation as a record of whether it was used; the
// invitee rebuilds it from the link with ParseInvitationLink.
type Invitation struct {
	Inviter PublicKeys
	Doc     [16]byte
	secret  [invitationSecretSize]byte
	used    bool
	invitee PublicKeys
}

// InvitationResponse is the invitee's proof, sent back through the relay,
// that it has the invitation secret.
type InvitationResponse struct {
	// Invitation is the invitation's ID, by which the relay can route the
	// response without learning the secret.
	Invitation [16]byte
	Invitee    PublicKeys
	// MAC is an HMAC-SHA256, under a key derived from the secret, of the
	// ID and of the inviter's and the invitee's public keys.
	MAC [32]byte
}

// NewInvitation returns an invitation to document doc from the holder of
// inviter, with a fresh random secret.
func NewInvitation(inviter PublicKeys, doc [16]byte) (*Invitation, error) {
	inv := &Invitation{Inviter: inviter, Doc: doc}
	if _, err := io.ReadFull(rand.Reader, inv.secret[:]); err != nil {
		return nil, fmt.Errorf("keyring: read random invitation secret: %w", err)
	}
	return inv, nil
}

// Link returns "https://HOST/#invite=" and the base64url encoding, without
// padding, of the secret, the inviter's public keys and the document id. The link is secret
// until the invitation is used.
func (inv *Invitation) Link(host string) (string, error) {
	return inv.LinkAt("https", host)
}

// LinkAt is Link with the scheme of the web app's address, "https", or
// "http" for a relay served without TLS, such as one on a laptop.
func (inv *Invitation) LinkAt(scheme, host string) (string, error) {
	if scheme != "https" && scheme != "http" {
		return "", fmt.Errorf("keyring: invalid invitation scheme %q: want https, or http for a relay without TLS", scheme)
	}
	if host == "" || strings.ContainsAny(host, "/?#@ \t\r\n") {
		return "", fmt.Errorf("keyring: invalid invitation host %q: want a host name with an optional port, such as interlude.example:8443", host)
	}
	payload := make([]byte, 0, invitationPayloadSize)
	payload = append(payload, inv.secret[:]...)
	payload = append(payload, inv.Inviter.bytes()...)
	payload = append(payload, inv.Doc[:]...)
	return scheme + "://" + host + "/#" + invitationParam + "=" + base64.RawURLEncoding.EncodeToString(payload), nil
}

// ParseInvitationLink parses a link that Link returned, on the invitee's
// side.
func ParseInvitationLink(link string) (*Invitation, error) {
	u, err := url.Parse(strings.TrimSpace(link))
	if err != nil {
		return nil, fmt.Errorf("keyring: invalid invitation link: %w", err)
	}
	values, err := url.ParseQuery(u.Fragment)
	if err != nil || values.Get(invitationParam) == "" {
		return nil, fmt.Errorf("keyring: invalid invitation link: the part after # must contain %s=...: copy the whole link", invitationParam)
	}
	payload, err := base64.RawURLEncoding.DecodeString(values.Get(invitationParam))
	if err == nil && len(payload) == invitationPayloadSize-16 {
		return nil, errors.New("keyring: this invitation link was made by an older version of Interlude and names no document: ask the inviter for a new link")
	}
	if err != nil || len(payload) != invitationPayloadSize {
		return nil, fmt.Errorf("keyring: invalid invitation link: want %d base64url characters after %s=: copy the whole link", base64.RawURLEncoding.EncodedLen(invitationPayloadSize), invitationParam)
	}

	inv := &Invitation{}
	copy(inv.secret[:], payload[:invitationSecretSize])
	copy(inv.Inviter.Sign[:], payload[invitationSecretSize:invitationSecretSize+32])
	copy(inv.Inviter.Box[:], payload[invitationSecretSize+32:])
	copy(inv.Doc[:], payload[invitationSecretSize+64:])
	return inv, nil
}

// ID returns a public name of the invitation derived from its secret,
// the inviter's keys and the document id. A link with any of them
// changed names an invitation that was never made, which the relay
// rejects before it stores a response, so a mistyped link cannot use up
// the real one.
func (inv *Invitation) ID() [16]byte {
	id, _ := derive(inv.secret[:], labelInvitationID, append(inv.Inviter.bytes(), inv.Doc[:]...), 16)
	return [16]byte(id)
}

// ComparisonCode returns the code the inviter and the invitee compare, by
// phone or in person, to be sure nobody changed the link or the response.
func (inv *Invitation) ComparisonCode(invitee PublicKeys) string {
	return ComparisonCode(inv.Inviter, invitee, inv.secret[:])
}

// Accept returns the invitee's response, proving that the holder of
// invitee read the link.
func (inv *Invitation) Accept(invitee PublicKeys) *InvitationResponse {
	resp := &InvitationResponse{Invitation: inv.ID(), Invitee: invitee}
	resp.MAC = inv.mac(resp)
	return resp
}

func (inv *Invitation) mac(resp *InvitationResponse) [32]byte {
	key, _ := derive(inv.secret[:], labelInvitationMAC, nil, 32)
	defer clear(key)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(domainInvitation))
	m.Write([]byte{0})
	m.Write(resp.Invitation[:])
	m.Write(inv.Doc[:])
	m.Write(inv.Inviter.bytes())
	m.Write(resp.Invitee.bytes())
	return [32]byte(m.Sum(nil))
}

// Redeem verifies a response on the inviter's side and marks the
// invitation used by its invitee. A second response from the same invitee,
// such as a retry after a lost reply, succeeds again; one from any other
// invitee returns ErrInvitationUsed. Store the invitation again after
// Redeem so the mark survives a restart.
func (inv *Invitation) Redeem(resp *InvitationResponse) error {
	if resp.Invitation != inv.ID() {
		return fmt.Errorf("keyring: response is for invitation %x, not for this invitation %x", resp.Invitation[:6], inv.idPrefix())
	}
	want := inv.mac(resp)
	if !hmac.Equal(want[:], resp.MAC[:]) {
		return fmt.Errorf("%w: invitation %x, invitee %s: the link or the response was changed", ErrInvitationMAC, inv.idPrefix(), resp.Invitee.Fingerprint())
	}
	if inv.used {
		if inv.invitee == resp.Invitee {
			return nil
		}
		return fmt.Errorf("%w: invitation %x was redeemed by %s, and now %s tries again: make a new invitation", ErrInvitationUsed, inv.idPrefix(), inv.invitee.Fingerprint(), resp.Invitee.Fingerprint())
	}

	inv.used, inv.invitee = true, resp.Invitee
	return nil
}

// Used returns the invitee that redeemed the invitation, if any.
func (inv *Invitation) Used() (PublicKeys, bool) { return inv.invitee, inv.used }

func (inv *Invitation) idPrefix() []byte {
	id := inv.ID()
	return id[:6]
}

// MarshalBinary encodes the invitation and its used mark for the inviter's
// store. The result is secret.
func (inv *Invitation) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, invitationRecordSize)
	b = append(b, invitationVersion)
	b = append(b, inv.secret[:]...)
	b = append(b, inv.Inviter.bytes()...)
	b = append(b, inv.Doc[:]...)
	var used byte
	if inv.used {
		used = 1
	}
	b = append(b, used)
	return append(b, inv.invitee.bytes()...), nil
}

// UnmarshalInvitation decodes what Invitation.MarshalBinary returned, and
// records of version 1, which have no document id.
func UnmarshalInvitation(b []byte) (*Invitation, error) {
	v1 := len(b) == invitationRecordSizeV1 && b[0] == 1
	v2 := len(b) == invitationRecordSize && b[0] == invitationVersion
	if !v1 && !v2 || b[len(b)-65] > 1 {
		return nil, fmt.Errorf("keyring: invalid invitation record of %d bytes: want %d bytes of version %d", len(b), invitationRecordSize, invitationVersion)
	}
	inv := &Invitation{}
	b = b[1:]
	b = b[copy(inv.secret[:], b):]
	b = b[copy(inv.Inviter.Sign[:], b):]
	b = b[copy(inv.Inviter.Box[:], b):]
	if !v1 {
		b = b[copy(inv.Doc[:], b):]
	}
	inv.used = b[0] == 1
	b = b[1:]
	b = b[copy(inv.invitee.Sign[:], b):]
	copy(inv.invitee.Box[:], b)
	return inv, nil
}
