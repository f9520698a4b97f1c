package envelope

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
)

func newKeys(t testing.TB) (ed25519.PrivateKey, *[KeySize]byte) {
	t.Helper()
	_, signer, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key := new([KeySize]byte)
	if _, err := rand.Read(key[:]); err != nil {
		t.Fatal(err)
	}
	return signer, key
}

func sealed(t testing.TB, signer ed25519.PrivateKey, key *[KeySize]byte, plaintext []byte) *Envelope {
	t.Helper()
	doc, err := NewDocID()
	if err != nil {
		t.Fatal(err)
	}
	e, err := Seal(Header{Kind: KindUpdate, Doc: doc, Seq: 1}, key, signer, plaintext)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestSealOpenRoundTrip(t *testing.T) {
	signer, key := newKeys(t)
	plaintext := []byte("slept badly, walked at lunch")
	e := sealed(t, signer, key, plaintext)

	if bytes.Contains(e.Ciphertext, plaintext) {
		t.Fatal("ciphertext contains the plaintext")
	}
	if !bytes.Equal(e.Author[:], signer.Public().(ed25519.PublicKey)) {
		t.Fatal("author is not the signer's public key")
	}
	raw, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	opened, err := got.Open(key)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(opened, plaintext) {
		t.Fatalf("Open = %q, want %q", opened, plaintext)
	}
}

func TestOpenWrongKey(t *testing.T) {
	signer, key := newKeys(t)
	_, other := newKeys(t)
	e := sealed(t, signer, key, []byte("entry"))
	if _, err := e.Open(other); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("Open with another key: err = %v, want ErrDecrypt", err)
	}
}

func TestVerifyRejectsChanges(t *testing.T) {
	signer, key := newKeys(t)
	forger, _ := newKeys(t)
	cases := map[string]func(e *Envelope){
		"ciphertext": func(e *Envelope) { e.Ciphertext[0] ^= 1 },
		"nonce":      func(e *Envelope) { e.Nonce[0] ^= 1 },
		"seq":        func(e *Envelope) { e.Seq++ },
		"doc":        func(e *Envelope) { e.Doc[0] ^= 1 },
		"signature":  func(e *Envelope) { e.Signature[0] ^= 1 },
		"author":     func(e *Envelope) { copy(e.Author[:], forger.Public().(ed25519.PublicKey)) },
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			e := sealed(t, signer, key, []byte("entry"))
			change(e)
			if err := e.Verify(); !errors.Is(err, ErrSignature) {
				t.Fatalf("Verify after changing the %s: err = %v, want ErrSignature", name, err)
			}
			if _, err := e.Open(key); err == nil {
				t.Fatalf("Open after changing the %s succeeded", name)
			}
		})
	}
}

func TestSealRejectsSeqZero(t *testing.T) {
	signer, key := newKeys(t)
	if _, err := Seal(Header{Kind: KindUpdate}, key, signer, []byte("x")); err == nil {
		t.Fatal("Seal with sequence number 0 succeeded")
	}
}

func TestSealRejectsOversizedUpdate(t *testing.T) {
	signer, key := newKeys(t)
	big := make([]byte, MaxCiphertext)
	if _, err := Seal(Header{Kind: KindUpdate, Seq: 1}, key, signer, big); err == nil {
		t.Fatal("Seal of an update over the limit succeeded")
	}
}

func TestUnmarshalRejectsNonCanonical(t *testing.T) {
	signer, key := newKeys(t)
	raw, err := sealed(t, signer, key, []byte("entry")).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Unmarshal(append(raw, 0)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("trailing byte: err = %v, want ErrMalformed", err)
	}
	for n := range len(raw) {
		if _, err := Unmarshal(raw[:n]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("truncated to %d bytes: err = %v, want ErrMalformed", n, err)
		}
	}
}

func TestParseDocID(t *testing.T) {
	id, err := NewDocID()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseDocID(id.String())
	if err != nil {
		t.Fatal(err)
	}
	if got != id {
		t.Fatalf("ParseDocID(%s) = %s", id, got)
	}
	for _, bad := range []string{"", "zz", id.String()[2:], id.String() + "00"} {
		if _, err := ParseDocID(bad); err == nil {
			t.Errorf("ParseDocID(%q) succeeded", bad)
		}
	}
}

// FuzzUnmarshal checks that any accepted byte string encodes back to
// itself, which the signature and the relay's byte comparisons rely on.
func FuzzUnmarshal(f *testing.F) {
	signer, key := newKeys(f)
	raw, err := sealed(f, signer, key, []byte("entry")).Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add([]byte{0x94})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Unmarshal(b)
		if err != nil {
			return
		}
		again, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("Marshal(Unmarshal(b)) differs from b")
		}
	})
}
