package keyring

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestInvitationFlow(t *testing.T) {
	therapist, client := newTestDevice(t), newTestDevice(t)
	inv, err := NewInvitation(therapist.Public(), [16]byte{7})
	if err != nil {
		t.Fatal(err)
	}
	link, err := inv.Link("interlude.example:8443")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(link, "https://interlude.example:8443/#invite=") {
		t.Fatalf("link %q: want the secret in the fragment", link)
	}

	// The client opens the link and responds.
	got, err := ParseInvitationLink(link)
	if err != nil {
		t.Fatal(err)
	}
	if got.Inviter != therapist.Public() || got.ID() != inv.ID() {
		t.Fatal("parsed invitation differs")
	}
	if got.Doc != inv.Doc {
		t.Fatalf("parsed invitation names document %x, want %x", got.Doc, inv.Doc)
	}
	resp := got.Accept(client.Public())

	// Both compare the same code by phone.
	onClient := got.ComparisonCode(client.Public())
	onTherapist := inv.ComparisonCode(resp.Invitee)
	if onClient != onTherapist {
		t.Fatalf("comparison codes differ: client %q, therapist %q", onClient, onTherapist)
	}

	if err := inv.Redeem(resp); err != nil {
		t.Fatal(err)
	}
	who, used := inv.Used()
	if !used || who != client.Public() {
		t.Errorf("Used = %v, %v; want the client, true", who.Fingerprint(), used)
	}
	// A retry of the same response succeeds again.
	if err := inv.Redeem(resp); err != nil {
		t.Errorf("retried response: %v", err)
	}
}

// TestInvitationDocumentBound changes the document id of a parsed link:
// the link then names another invitation, and a response made from it
// must not redeem the genuine one.
func TestInvitationDocumentBound(t *testing.T) {
	inv, err := NewInvitation(newTestDevice(t).Public(), [16]byte{9})
	if err != nil {
		t.Fatal(err)
	}
	link, err := inv.Link("interlude.example")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseInvitationLink(link)
	if err != nil {
		t.Fatal(err)
	}
	got.Doc[0] ^= 1
	if got.ID() == inv.ID() {
		t.Error("a link to another document names the same invitation")
	}
	if err := inv.Redeem(got.Accept(newTestDevice(t).Public())); err == nil {
		t.Error("a response for another document redeemed the invitation")
	}
	// Even under the genuine id, the MAC covers the document.
	resp := got.Accept(newTestDevice(t).Public())
	resp.Invitation = inv.ID()
	if err := inv.Redeem(resp); !errors.Is(err, ErrInvitationMAC) {
		t.Errorf("Redeem of a response for another document under the genuine id: err = %v, want ErrInvitationMAC", err)
	}
}

// TestInvitationRecordVersion1 decodes a stored record of version 1,
// which has no document id, as an inviter upgraded from it holds.
func TestInvitationRecordVersion1(t *testing.T) {
	inv, err := NewInvitation(newTestDevice(t).Public(), [16]byte{})
	if err != nil {
		t.Fatal(err)
	}
	v2, err := inv.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	v1 := append([]byte{1}, v2[1:1+invitationSecretSize+64]...)
	v1 = append(v1, v2[1+invitationPayloadSize:]...)
	got, err := UnmarshalInvitation(v1)
	if err != nil {
		t.Fatalf("UnmarshalInvitation of a version 1 record: %v", err)
	}
	if got.ID() != inv.ID() || got.Inviter != inv.Inviter {
		t.Error("version 1 record decoded to another invitation")
	}
	if got.Doc != ([16]byte{}) {
		t.Errorf("version 1 record decoded with document %x, want none", got.Doc)
	}
	if _, err := UnmarshalInvitation(v1[:len(v1)-1]); err == nil {
		t.Error("a record one byte short of version 1 decoded")
	}

	// A version 1 link, without the document id, gets its own message.
	link, err := inv.Link("interlude.example")
	if err != nil {
		t.Fatal(err)
	}
	at := strings.Index(link, "=") + 1
	payload, err := base64.RawURLEncoding.DecodeString(link[at:])
	if err != nil {
		t.Fatal(err)
	}
	old := link[:at] + base64.RawURLEncoding.EncodeToString(payload[:len(payload)-16])
	if _, err := ParseInvitationLink(old); err == nil || !strings.Contains(err.Error(), "older version") {
		t.Errorf("ParseInvitationLink of a version 1 link = %v, want an error naming the older version", err)
	}
}

func TestInvitationReuseDetected(t *testing.T) {
	inv, err := NewInvitation(newTestDevice(t).Public(), [16]byte{8})
	if err != nil {
		t.Fatal(err)
	}
	link, err := inv.Link("interlude.example")
	if err != nil {
		t.Fatal(err)
	}
	first, err := ParseInvitationLink(link)
	if err != nil {
		t.Fatal(err)
	}
	if err := inv.Redeem(first.Accept(newTestDevice(t).Public())); err != nil {
		t.Fatal(err)
	}

	// The inviter restarts and loads the record from its store.
	b, _ := inv.MarshalBinary()
	loaded, err := UnmarshalInvitation(b)
	if err != nil {
		t.Fatal(err)
	}
	// The link was forwarded, and a second person responds to it.
	second, err := ParseInvitationLink(link)
	if err != nil {
		t.Fatal(err)
	}
	if err := loaded.Redeem(second.Accept(newTestDevice(t).Public())); !errors.Is(err, ErrInvitationUsed) {
		t.Fatalf("second invitee: err = %v, want ErrInvitationUsed", err)
	}
}

func TestInvitationTamperingDetected(t *testing.T) {
	therapist, client, other := newTestDevice(t), newTestDevice(t), newTestDevice(t)
	inv, err := NewInvitation(therapist.Public(), [16]byte{7})
	if err != nil {
		t.Fatal(err)
	}
	link, err := inv.Link("interlude.example")
	if err != nil {
		t.Fatal(err)
	}

	// Someone swaps the inviter's keys in the link for their own.
	payload, _ := base64.RawURLEncoding.DecodeString(link[strings.Index(link, "invite=")+len("invite="):])
	copy(payload[invitationSecretSize:], other.Public().bytes())
	swapped := "https://interlude.example/#invite=" + base64.RawURLEncoding.EncodeToString(payload)
	fake, err := ParseInvitationLink(swapped)
	if err != nil {
		t.Fatal(err)
	}
	resp := fake.Accept(client.Public())
	if fake.ComparisonCode(client.Public()) == inv.ComparisonCode(client.Public()) {
		t.Error("the swapped link shows the genuine comparison code")
	}
	// The swapped link names another invitation, which the relay does
	// not know, and its response does not redeem the genuine one.
	if fake.ID() == inv.ID() {
		t.Error("the swapped link names the genuine invitation")
	}
	if err := inv.Redeem(resp); err == nil {
		t.Error("the answer to the swapped link redeemed the genuine invitation")
	}

	// Someone swaps the invitee's keys in a genuine response.
	genuine, err := ParseInvitationLink(link)
	if err != nil {
		t.Fatal(err)
	}
	resp = genuine.Accept(client.Public())
	resp.Invitee = other.Public()
	if err := inv.Redeem(resp); !errors.Is(err, ErrInvitationMAC) {
		t.Errorf("swapped invitee: err = %v, want ErrInvitationMAC", err)
	}

	// A response made without the secret.
	guess := &Invitation{Inviter: therapist.Public()}
	resp = guess.Accept(other.Public())
	resp.Invitation = inv.ID()
	if err := inv.Redeem(resp); !errors.Is(err, ErrInvitationMAC) {
		t.Errorf("response without the secret: err = %v, want ErrInvitationMAC", err)
	}
	// None of the rejected responses used the invitation up.
	if _, used := inv.Used(); used {
		t.Error("a rejected response marked the invitation used")
	}
	if err := inv.Redeem(genuine.Accept(client.Public())); err != nil {
		t.Errorf("genuine response after rejected ones: %v", err)
	}
}

func TestInvitationLinkErrors(t *testing.T) {
	inv, err := NewInvitation(newTestDevice(t).Public(), [16]byte{8})
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"", "evil.example/path", "a@b", "host#x"} {
		if _, err := inv.Link(host); err == nil {
			t.Errorf("Link(%q) succeeded", host)
		}
	}
	link, _ := inv.Link("interlude.example")
	for _, bad := range []string{"https://interlude.example/", "https://interlude.example/#invite=abc", link[:len(link)-2], "https://interlude.example/?invite=" + link[strings.Index(link, "=")+1:]} {
		if _, err := ParseInvitationLink(bad); err == nil {
			t.Errorf("ParseInvitationLink(%q) succeeded", bad)
		}
	}
	if _, err := UnmarshalInvitation([]byte{1, 2, 3}); err == nil {
		t.Error("short record decoded")
	}
}

// TestInvitationLinkScheme checks that LinkAt keeps the scheme it is
// given, that the link parses back, and that other schemes are refused.
func TestInvitationLinkScheme(t *testing.T) {
	inv, err := NewInvitation(PublicKeys{}, [16]byte{})
	if err != nil {
		t.Fatal(err)
	}
	link, err := inv.LinkAt("http", "127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(link, "http://127.0.0.1:8080/#invite=") {
		t.Errorf("LinkAt(http) = %q, want an http link to the host", link)
	}
	back, err := ParseInvitationLink(link)
	if err != nil {
		t.Fatal(err)
	}
	if back.ID() != inv.ID() {
		t.Error("the http link parses to another invitation")
	}
	for _, scheme := range []string{"", "ftp", "javascript"} {
		if _, err := inv.LinkAt(scheme, "interlude.example"); err == nil {
			t.Errorf("LinkAt(%q) succeeded", scheme)
		}
	}
}
