package keyring

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrLinkMAC is returned by LinkRequest.Finish when a link response was not
// made by a device that read this link code.
var ErrLinkMAC = errors.New("keyring: link response does not match this link code")

const (
	linkCodePrefix    = "IL1"
	linkCodeVersion   = 1
	linkSecretSize    = 16
	linkChecksumSize  = 4
	linkPayloadSize   = 1 + 64 + linkSecretSize
	linkGroupSize     = 4
	labelLinkMAC      = "interlude/keyring/v1 link response mac"
	domainLinkCode    = "interlude/keyring/v1 link code checksum"
	domainComparison  = "interlude/keyring/v1 comparison code"
	domainLinkMessage = "interlude/keyring/v1 link response"
)

// linkEncoding is RFC 4648 base32 without padding: upper-case letters and
// digits, which a QR code stores in its compact alphanumeric mode and which
// survive being read aloud or typed.
var linkEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// ComparisonCode returns six digits, as "123 456", that two devices show
// for a person to compare. It hashes both sets of public keys, in an order
// that does not depend on which side computes it, and a secret only the two
// sides know. Because the secret never passes through the relay, a relay
// that swaps in its own keys cannot search for keys that give the same code.
func ComparisonCode(a, b PublicKeys, secret []byte) string {
	ab, bb := a.bytes(), b.bytes()
	if bytes.Compare(ab, bb) > 0 {
		ab, bb = bb, ab
	}
	h := sha256.New()
	h.Write([]byte(domainComparison))
	h.Write([]byte{0})
	h.Write(ab)
	h.Write(bb)
	h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(secret))))
	h.Write(secret)
	n := binary.BigEndian.Uint64(h.Sum(nil)) % 1_000_000
	return fmt.Sprintf("%03d %03d", n/1000, n%1000)
}

// LinkRequest is what a new device shows so an existing device of the same
// person can add it: the new device's public keys and a random secret. The
// person moves it by scanning a QR code or typing the code, never through
// the relay, which is what lets the secret authenticate the response.
type LinkRequest struct {
	Device PublicKeys
	secret [linkSecretSize]byte
}

// LinkResponse is the existing device's reply, sent through the relay after
// it added the new device to the sigchain.
type LinkResponse struct {
	// Existing is the device that added the new one.
	Existing PublicKeys
	// Chain is the sigchain's ID and Entry the hash of the add entry.
	Chain [32]byte
	Entry [32]byte
	// Seed is the user key sealed to the new device.
	Seed SealedSeed
	// MAC is an HMAC-SHA256 of all of the above under a key derived from
	// the link secret.
	MAC [32]byte
}

// NewLinkRequest returns a link request for the new device dev.
func NewLinkRequest(dev *Device) (*LinkRequest, error) {
	r := &LinkRequest{Device: dev.Public()}
	if _, err := io.ReadFull(rand.Reader, r.secret[:]); err != nil {
		return nil, fmt.Errorf("keyring: read random link secret: %w", err)
	}
	return r, nil
}

// Code returns the text form for a QR code or for typing: "IL1" and the
// base32 encoding of the keys, the secret and a checksum, in groups of four
// characters split by dashes. The code is secret until the link is done.
func (r *LinkRequest) Code() string {
	payload := make([]byte, 0, linkPayloadSize+linkChecksumSize)
	payload = append(payload, linkCodeVersion)
	payload = append(payload, r.Device.bytes()...)
	payload = append(payload, r.secret[:]...)
	payload = append(payload, linkChecksum(payload)...)

	text := linkEncoding.EncodeToString(payload)
	var b strings.Builder
	b.WriteString(linkCodePrefix)
	for i := 0; i < len(text); i += linkGroupSize {
		b.WriteByte('-')
		b.WriteString(text[i:min(i+linkGroupSize, len(text))])
	}
	return b.String()
}

// ParseLinkRequest parses the text form that Code returns. It ignores case,
// spaces, line breaks and dashes, and its checksum catches a mistyped
// character.
func ParseLinkRequest(code string) (*LinkRequest, error) {
	clean := strings.Map(func(r rune) rune {
		switch r {
		case '-', ' ', '\t', '\n', '\r':
			return -1
		}
		return r
	}, strings.ToUpper(code))
	rest, ok := strings.CutPrefix(clean, linkCodePrefix)
	if !ok {
		return nil, fmt.Errorf("keyring: invalid link code: it must start with %q, as the new device shows it", linkCodePrefix)
	}
	payload, err := linkEncoding.DecodeString(rest)
	if err != nil || len(payload) != linkPayloadSize+linkChecksumSize {
		return nil, fmt.Errorf("keyring: invalid link code: want %d characters after %q: check that the whole code was copied", linkEncoding.EncodedLen(linkPayloadSize+linkChecksumSize), linkCodePrefix)
	}
	body, sum := payload[:linkPayloadSize], payload[linkPayloadSize:]
	if !bytes.Equal(linkChecksum(body), sum) {
		return nil, errors.New("keyring: invalid link code: the checksum does not match, so a character is wrong: compare the code with the new device's screen")
	}
	if body[0] != linkCodeVersion {
		return nil, fmt.Errorf("keyring: link code version %d, this build reads version %d: update the app on both devices", body[0], linkCodeVersion)
	}

	r := &LinkRequest{}
	copy(r.Device.Sign[:], body[1:33])
	copy(r.Device.Box[:], body[33:65])
	copy(r.secret[:], body[65:])
	return r, nil
}

func linkChecksum(payload []byte) []byte {
	sum := sha256.Sum256(withDomain(domainLinkCode, payload))
	return sum[:linkChecksumSize]
}

// ComparisonCode returns the code both devices show, given the existing
// device's public keys.
func (r *LinkRequest) ComparisonCode(existing PublicKeys) string {
	return ComparisonCode(r.Device, existing, r.secret[:])
}

// Link adds the device that made req to the sigchain, signed by existing,
// and returns the response for the new device and the update for the relay.
// Show req.ComparisonCode(existing.Public()) and let the person confirm that
// the new device shows the same digits before calling Link.
func (c *Chain) Link(existing *Device, key *UserKey, req *LinkRequest) (*LinkResponse, *Update, error) {
	u, err := c.AddDevice(existing, key, req.Device, DeviceOrdinary)
	if err != nil {
		return nil, nil, err
	}
	resp := &LinkResponse{Existing: existing.Public(), Chain: c.ID(), Entry: u.Entry.Hash(), Seed: u.Seeds[0]}
	resp.MAC = req.mac(resp)
	return resp, u, nil
}

func (r *LinkRequest) mac(resp *LinkResponse) [32]byte {
	key, _ := derive(r.secret[:], labelLinkMAC, nil, 32)
	defer clear(key)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(domainLinkMessage))
	m.Write([]byte{0})
	m.Write(resp.Existing.bytes())
	m.Write(r.Device.bytes())
	m.Write(resp.Chain[:])
	m.Write(resp.Entry[:])
	m.Write(binary.BigEndian.AppendUint32(nil, resp.Seed.Generation))
	m.Write(resp.Seed.Device[:])
	m.Write(resp.Seed.Sealed)
	var sum [32]byte
	copy(sum[:], m.Sum(nil))
	return sum
}

// Finish checks a link response on the new device dev and opens the user
// key. chain is the person's sigchain, fetched from the relay and verified;
// Finish checks that it holds the add entry the response names. If the
// sigchain has rotated the user key since, open the newest sealed seed next.
func (r *LinkRequest) Finish(dev *Device, resp *LinkResponse, chain *Chain) (*UserKey, error) {
	if dev.Public() != r.Device {
		return nil, fmt.Errorf("keyring: link request was made by device %s, not by this device %s", r.Device.Fingerprint(), dev.Public().Fingerprint())
	}
	want := r.mac(resp)
	if !hmac.Equal(want[:], resp.MAC[:]) {
		return nil, fmt.Errorf("%w: it was not made by a device that read this code from device %s: start the link again", ErrLinkMAC, r.Device.Fingerprint())
	}
	if id := chain.ID(); id != resp.Chain {
		return nil, fmt.Errorf("keyring: link response names sigchain %x, but the sigchain given is %x: fetch the sigchain the response names", resp.Chain[:8], id[:8])
	}

	var found bool
	for _, e := range chain.entries {
		if e.Kind == EntryAdd && e.Device == r.Device && e.Signer == resp.Existing.Sign && e.Hash() == resp.Entry {
			found = true
			break
		}
	}
	if !found {
		return nil, fmt.Errorf("keyring: the sigchain has no entry %x adding device %s: fetch the sigchain again", resp.Entry[:8], r.Device.Fingerprint())
	}
	if d, _ := chain.Device(r.Device.Sign); d.Revoked != 0 {
		return nil, fmt.Errorf("keyring: device %s was added but entry %d revoked it again", r.Device.Fingerprint(), d.Revoked)
	}
	userKey, ok := chain.UserKeyAt(resp.Seed.Generation)
	if !ok {
		return nil, fmt.Errorf("keyring: the sigchain has no user key of generation %d: fetch the sigchain again", resp.Seed.Generation)
	}
	return dev.OpenSeed(resp.Seed, userKey)
}
