package keyring

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
)

func TestDocumentKeyStableAndUnlinkable(t *testing.T) {
	key, err := NewUserKey(1)
	if err != nil {
		t.Fatal(err)
	}
	docA, docB := [16]byte{1}, [16]byte{2}

	a1, err := key.DocumentKey(docA)
	if err != nil {
		t.Fatal(err)
	}
	// Another device with the same seed derives the same key.
	same, err := UserKeyFromSeed(1, key.seed)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := same.DocumentKey(docA)
	if err != nil {
		t.Fatal(err)
	}
	if !a1.Public().Equal(a2.Public()) {
		t.Fatal("the same seed and document derived two different keys")
	}

	b, err := key.DocumentKey(docB)
	if err != nil {
		t.Fatal(err)
	}
	if a1.Public().Equal(b.Public()) {
		t.Fatal("two documents derived the same key")
	}
	// Unrelated: neither public key shares a byte prefix or suffix with the
	// other or with the user's own keys, which the relay may also see.
	pub := key.Public()
	for _, other := range [][]byte{b.Public(), pub.Sign[:], pub.Box[:]} {
		if bytes.Equal(a1.Public()[:4], other[:4]) || bytes.Equal(a1.Public()[28:], other[28:]) {
			t.Errorf("document key %x shares bytes with %x", a1.Public(), other)
		}
	}

	// The key signs, and the signature verifies only under its own document.
	msg := []byte("envelope bytes")
	sig := ed25519.Sign(a1.PrivateKey(), msg)
	if !ed25519.Verify(a1.Public(), msg, sig) {
		t.Error("document key signature does not verify")
	}
	if ed25519.Verify(b.Public(), msg, sig) {
		t.Error("document A's signature verifies under document B's key")
	}

	// The next generation of the user key derives other document keys.
	next, err := NewUserKey(2)
	if err != nil {
		t.Fatal(err)
	}
	a3, err := next.DocumentKey(docA)
	if err != nil {
		t.Fatal(err)
	}
	if a1.Public().Equal(a3.Public()) {
		t.Error("two user seeds derived the same document key")
	}
}

func TestUserKeyMarshal(t *testing.T) {
	key, err := NewUserKey(5)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := key.MarshalBinary()
	again, err := UnmarshalUserKey(b)
	if err != nil {
		t.Fatal(err)
	}
	if again.Public() != key.Public() {
		t.Error("decoded user key derives other public keys")
	}
	if _, err := UnmarshalUserKey(b[:len(b)-1]); err == nil {
		t.Error("truncated record decoded")
	}
	if _, err := UserKeyFromSeed(0, key.seed); err == nil {
		t.Error("generation 0 accepted")
	}
}

func TestUserKeyHKDFLabelsDiffer(t *testing.T) {
	key, err := NewUserKey(1)
	if err != nil {
		t.Fatal(err)
	}
	// The signing seed and the box key come from one seed under distinct
	// labels, so they must differ from each other and from the seed.
	if bytes.Equal(key.signing.Seed(), key.box[:]) {
		t.Error("signing seed equals box key")
	}
	if bytes.Equal(key.signing.Seed(), key.seed[:]) || bytes.Equal(key.box[:], key.seed[:]) {
		t.Error("a derived key equals the seed")
	}
}

func TestPublicKeysText(t *testing.T) {
	p := newTestDevice(t).Public()
	text := p.String()
	if !strings.HasPrefix(text, "il1") || len(text) != 3+86 {
		t.Fatalf("text %q: want \"il1\" and 86 characters", text)
	}
	again, err := ParsePublicKeys(" " + text + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if again != p {
		t.Error("parsed keys differ")
	}
	for _, bad := range []string{"il1short", text[3:], "il2" + text[3:], text + "A"} {
		if _, err := ParsePublicKeys(bad); err == nil {
			t.Errorf("ParsePublicKeys(%q) succeeded", bad)
		}
	}
}

func TestDeviceFromSeeds(t *testing.T) {
	seed := bytes.Repeat([]byte{7}, 32)
	a, err := DeviceFromSeeds(seed, [32]byte{9})
	if err != nil {
		t.Fatal(err)
	}
	b, err := DeviceFromSeeds(seed, [32]byte{9})
	if err != nil {
		t.Fatal(err)
	}
	if a.Public() != b.Public() {
		t.Error("the same seeds built two different devices")
	}
	if _, err := DeviceFromSeeds(seed[:31], [32]byte{}); err == nil {
		t.Error("31-byte seed accepted")
	}
}

func TestSealToUserRoundTrip(t *testing.T) {
	key, err := NewUserKey(1)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := SealToUser(key.Public(), []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := key.OpenSealed(sealed)
	if err != nil || string(got) != "secret" {
		t.Fatalf("OpenSealed = %q, %v", got, err)
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := key.OpenSealed(sealed); !errors.Is(err, ErrNotForThisDevice) {
		t.Errorf("changed ciphertext: err = %v, want ErrNotForThisDevice", err)
	}
}
