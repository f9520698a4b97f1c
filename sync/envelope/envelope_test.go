package envelope

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
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

func randomHash(t testing.TB) Hash {
	t.Helper()
	var h Hash
	if _, err := rand.Read(h[:]); err != nil {
		t.Fatal(err)
	}
	return h
}

// fullHeader returns a header with every field set: a second envelope
// that has seen two other authors.
func fullHeader(t testing.TB) Header {
	t.Helper()
	doc, err := NewDocID()
	if err != nil {
		t.Fatal(err)
	}
	h := Header{
		Kind:           KindUpdate,
		Doc:            doc,
		Epoch:          7,
		MembershipHead: randomHash(t),
		Seq:            2,
		Prev:           randomHash(t),
	}
	for range 2 {
		var s Seen
		rand.Read(s.Author[:])
		s.Seq = 5
		s.Hash = randomHash(t)
		h.Seen = append(h.Seen, s)
	}
	if bytes.Compare(h.Seen[0].Author[:], h.Seen[1].Author[:]) > 0 {
		h.Seen[0], h.Seen[1] = h.Seen[1], h.Seen[0]
	}
	return h
}

func sealed(t testing.TB, signer ed25519.PrivateKey, key *[KeySize]byte, plaintext []byte) *Envelope {
	t.Helper()
	e, err := Seal(fullHeader(t), key, signer, plaintext)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestSealOpenRoundTrip(t *testing.T) {
	signer, key := newKeys(t)
	plaintext := []byte("slept badly, walked at lunch")
	h := fullHeader(t)
	e, err := Seal(h, key, signer, plaintext)
	if err != nil {
		t.Fatal(err)
	}

	if bytes.Contains(e.Ciphertext, plaintext) {
		t.Fatal("ciphertext contains the plaintext")
	}
	if !bytes.Equal(e.Author[:], signer.Public().(ed25519.PublicKey)) {
		t.Fatal("author is not the signer's public key")
	}
	if e.Version != Version {
		t.Fatalf("version %d, want %d", e.Version, Version)
	}
	raw, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got.Epoch != h.Epoch || got.MembershipHead != h.MembershipHead || got.Prev != h.Prev || got.Seq != h.Seq || got.Doc != h.Doc {
		t.Errorf("decoded header %+v, want the fields of %+v", got.Header, h)
	}
	if len(got.Seen) != len(h.Seen) {
		t.Fatalf("decoded %d seen entries, want %d", len(got.Seen), len(h.Seen))
	}
	for i := range h.Seen {
		if got.Seen[i] != h.Seen[i] {
			t.Errorf("seen entry %d = %+v, want %+v", i, got.Seen[i], h.Seen[i])
		}
	}
	opened, err := got.Open(key)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(opened, plaintext) {
		t.Fatalf("Open = %q, want %q", opened, plaintext)
	}
}

func TestSealOpenEmptyAndEveryKind(t *testing.T) {
	signer, key := newKeys(t)
	for _, kind := range []Kind{KindUpdate, KindSnapshot, KindMembership, KindEphemeral} {
		for _, plaintext := range [][]byte{nil, {0}, bytes.Repeat([]byte{0}, 100)} {
			h := fullHeader(t)
			h.Kind = kind
			e, err := Seal(h, key, signer, plaintext)
			if err != nil {
				t.Fatalf("Seal %s of %d bytes: %v", kind, len(plaintext), err)
			}
			got, err := e.Open(key)
			if err != nil {
				t.Fatalf("Open %s of %d bytes: %v", kind, len(plaintext), err)
			}
			if !bytes.Equal(got, plaintext) {
				t.Fatalf("Open %s = %x, want %x", kind, got, plaintext)
			}
		}
	}
}

func TestOpenWrongKeyFailsCommitment(t *testing.T) {
	signer, key := newKeys(t)
	_, other := newKeys(t)
	e := sealed(t, signer, key, []byte("entry"))

	_, err := e.Open(other)

	if !errors.Is(err, ErrCommitment) {
		t.Fatalf("Open with another key: err = %v, want ErrCommitment", err)
	}
}

// TestCommitmentBindsOneKey checks that the commitment, not only the
// AEAD, decides which key opens an envelope: the author re-signs an
// envelope whose commitment belongs to another key, and Open with the
// sealing key refuses it before decrypting.
func TestCommitmentBindsOneKey(t *testing.T) {
	signer, key := newKeys(t)
	_, other := newKeys(t)
	e := sealed(t, signer, key, []byte("entry"))
	_, otherCommitment, err := deriveKeys(other, &e.Nonce, e.Kind)
	if err != nil {
		t.Fatal(err)
	}
	e.Commitment = otherCommitment
	copy(e.Signature[:], ed25519.Sign(signer, e.signedHash(e.Header.encode())))
	if err := e.Verify(); err != nil {
		t.Fatalf("re-signed envelope does not verify: %v", err)
	}

	if _, err := e.Open(key); !errors.Is(err, ErrCommitment) {
		t.Errorf("Open with the sealing key: err = %v, want ErrCommitment", err)
	}
	if _, err := e.Open(other); !errors.Is(err, ErrDecrypt) {
		t.Errorf("Open with the committed key: err = %v, want ErrDecrypt", err)
	}
}

func TestCommitmentDependsOnKindAndNonce(t *testing.T) {
	_, key := newKeys(t)
	var nonce, otherNonce [NonceSize]byte
	otherNonce[0] = 1
	_, c1, err := deriveKeys(key, &nonce, KindUpdate)
	if err != nil {
		t.Fatal(err)
	}
	_, c2, _ := deriveKeys(key, &nonce, KindSnapshot)
	_, c3, _ := deriveKeys(key, &otherNonce, KindUpdate)
	if c1 == c2 {
		t.Error("update and snapshot share a key commitment")
	}
	if c1 == c3 {
		t.Error("two nonces share a key commitment")
	}
}

func TestVerifyRejectsChanges(t *testing.T) {
	signer, key := newKeys(t)
	forger, _ := newKeys(t)
	cases := map[string]func(e *Envelope){
		"ciphertext":      func(e *Envelope) { e.Ciphertext[0] ^= 1 },
		"nonce":           func(e *Envelope) { e.Nonce[0] ^= 1 },
		"commitment":      func(e *Envelope) { e.Commitment[0] ^= 1 },
		"seq":             func(e *Envelope) { e.Seq++ },
		"doc":             func(e *Envelope) { e.Doc[0] ^= 1 },
		"epoch":           func(e *Envelope) { e.Epoch++ },
		"membership head": func(e *Envelope) { e.MembershipHead[0] ^= 1 },
		"prev":            func(e *Envelope) { e.Prev[0] ^= 1 },
		"kind":            func(e *Envelope) { e.Kind = KindSnapshot },
		"seen seq":        func(e *Envelope) { e.Seen[0].Seq++ },
		"seen hash":       func(e *Envelope) { e.Seen[1].Hash[0] ^= 1 },
		"seen dropped":    func(e *Envelope) { e.Seen = e.Seen[:1] },
		"signature":       func(e *Envelope) { e.Signature[0] ^= 1 },
		"author":          func(e *Envelope) { copy(e.Author[:], forger.Public().(ed25519.PublicKey)) },
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

func TestSealRejectsInvalidHeaders(t *testing.T) {
	signer, key := newKeys(t)
	self := signer.Public().(ed25519.PublicKey)
	cases := map[string]func(h *Header){
		"seq zero":             func(h *Header) { h.Seq = 0 },
		"seq 1 with prev":      func(h *Header) { h.Seq = 1 },
		"seq 2 without prev":   func(h *Header) { h.Prev = Hash{} },
		"unknown kind":         func(h *Header) { h.Kind = 9 },
		"kind zero":            func(h *Header) { h.Kind = 0 },
		"seen unsorted":        func(h *Header) { h.Seen[0], h.Seen[1] = h.Seen[1], h.Seen[0] },
		"seen duplicate":       func(h *Header) { h.Seen[1] = h.Seen[0] },
		"seen seq zero":        func(h *Header) { h.Seen[0].Seq = 0 },
		"seen zero hash":       func(h *Header) { h.Seen[0].Hash = Hash{} },
		"seen names author":    func(h *Header) { copy(h.Seen[0].Author[:], self); sortSeen(h.Seen) },
		"seen over the limit":  func(h *Header) { h.Seen = manySeen(t, MaxSeen+1) },
		"seen at the limit ok": nil,
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			h := fullHeader(t)
			if change == nil {
				h.Seen = manySeen(t, MaxSeen)
				if _, err := Seal(h, key, signer, []byte("x")); err != nil {
					t.Fatalf("Seal with %d seen entries: %v", MaxSeen, err)
				}
				return
			}
			change(&h)
			if _, err := Seal(h, key, signer, []byte("x")); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Seal: err = %v, want ErrMalformed", err)
			}
		})
	}
}

func manySeen(t testing.TB, n int) []Seen {
	seen := make([]Seen, n)
	for i := range seen {
		rand.Read(seen[i].Author[:])
		seen[i].Seq = uint64(i + 1)
		seen[i].Hash = randomHash(t)
	}
	sortSeen(seen)
	return seen
}

func sortSeen(seen []Seen) {
	for i := 1; i < len(seen); i++ {
		for j := i; j > 0 && bytes.Compare(seen[j-1].Author[:], seen[j].Author[:]) > 0; j-- {
			seen[j-1], seen[j] = seen[j], seen[j-1]
		}
	}
}

func TestSealRejectsOversizedContent(t *testing.T) {
	signer, key := newKeys(t)
	big := make([]byte, MaxCiphertext)
	if _, err := Seal(fullHeader(t), key, signer, big); err == nil {
		t.Fatal("Seal of content over the limit succeeded")
	}
	// The largest content that fits: its padded length plus the tag is
	// within the limit, and one more byte pads past it.
	largest := 0
	for n := MaxCiphertext - poly1305Overhead - lengthPrefixSize; n > 0; n-- {
		if Padme(n+lengthPrefixSize)+poly1305Overhead <= MaxCiphertext {
			largest = n
			break
		}
	}
	e, err := Seal(fullHeader(t), key, signer, make([]byte, largest))
	if err != nil {
		t.Fatalf("Seal of the largest content, %d bytes: %v", largest, err)
	}
	if len(e.Ciphertext) > MaxCiphertext {
		t.Fatalf("ciphertext of %d bytes, over the limit", len(e.Ciphertext))
	}
	if _, err := Seal(fullHeader(t), key, signer, make([]byte, largest+1)); err == nil {
		t.Fatalf("Seal of %d bytes, one past the largest, succeeded", largest+1)
	}
}

func TestUnmarshalRejectsNonCanonical(t *testing.T) {
	signer, key := newKeys(t)
	raw, err := sealed(t, signer, key, []byte("entry")).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Unmarshal(append(bytes.Clone(raw), 0)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("trailing byte: err = %v, want ErrMalformed", err)
	}
	for n := range len(raw) {
		if _, err := Unmarshal(raw[:n]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("truncated to %d bytes: err = %v, want ErrMalformed", n, err)
		}
	}
	// The same parts with a longer length prefix on the nonce: bin16 in
	// place of bin8 decodes to the same bytes but is not canonical.
	e, _ := Unmarshal(raw)
	header := e.Header.encode()
	long := []byte{0x95}
	long = appendBin(long, header)
	long = append(long, 0xc5, 0, NonceSize)
	long = append(long, e.Nonce[:]...)
	long = appendBin(long, e.Commitment[:])
	long = appendBin(long, e.Ciphertext)
	long = appendBin(long, e.Signature[:])
	if _, err := Unmarshal(long); !errors.Is(err, ErrMalformed) {
		t.Fatalf("bin16 nonce: err = %v, want ErrMalformed", err)
	}
}

func TestUnmarshalRejectsVersion1(t *testing.T) {
	signer, key := newKeys(t)
	e := sealed(t, signer, key, []byte("entry"))
	raw := e.encode()
	// The header starts after the array byte and the bin8 prefix.
	raw[3] = 1
	if _, err := Unmarshal(raw); !errors.Is(err, ErrMalformed) {
		t.Fatalf("version 1 header: err = %v, want ErrMalformed", err)
	}
}

func TestHashIsSHA256OfCanonicalBytes(t *testing.T) {
	signer, key := newKeys(t)
	e := sealed(t, signer, key, []byte("entry"))
	raw, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if e.Hash() != Hash(sha256.Sum256(raw)) {
		t.Fatal("Hash differs from the SHA-256 of Marshal's bytes")
	}
	decoded, err := Unmarshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	if decoded.Hash() != e.Hash() {
		t.Fatal("decoded envelope hashes differently")
	}
	before := e.Hash()
	e.Seen[0].Seq++
	if e.Hash() == before {
		t.Fatal("Hash did not change with the header")
	}
}

func TestPadmeVectors(t *testing.T) {
	// Worked from the definition: E = ⌊log₂ n⌋, S = ⌊log₂ E⌋ + 1, and n
	// rounded up to a multiple of 2^(E−S).
	vectors := []struct{ n, want int }{
		{0, 0}, {1, 1}, {2, 2}, {7, 7}, {8, 8},
		{9, 10},      // E=3, S=2: multiples of 2
		{15, 16},     // E=3
		{16, 16},     // E=4, S=3: multiples of 2
		{17, 18},     //
		{33, 36},     // E=5, S=3: multiples of 4
		{100, 104},   // E=6, S=3: multiples of 8
		{255, 256},   // E=7, S=3: multiples of 16
		{256, 256},   // E=8, S=4: multiples of 16
		{257, 272},   //
		{1000, 1024}, // E=9, S=4: multiples of 32
		{1025, 1088}, // E=10, S=4: multiples of 64
		{1 << 20, 1 << 20},
		{1<<20 + 1, 1<<20 + 1<<15}, // E=20, S=5: multiples of 2^15
	}
	for _, v := range vectors {
		if got := Padme(v.n); got != v.want {
			t.Errorf("Padme(%d) = %d, want %d", v.n, got, v.want)
		}
	}
}

// TestPadmeProperties checks every length up to 2^18 against the
// properties PADMÉ promises, on each power-of-two boundary in particular.
func TestPadmeProperties(t *testing.T) {
	prev := 0
	for n := 0; n <= 1<<18; n++ {
		p := Padme(n)
		if p < n {
			t.Fatalf("Padme(%d) = %d, smaller than the input", n, p)
		}
		if p < prev {
			t.Fatalf("Padme(%d) = %d, smaller than Padme(%d) = %d", n, p, n-1, prev)
		}
		// The largest overhead is 15 bytes on 129, just under 12%.
		if 100*(p-n) > 12*n {
			t.Fatalf("Padme(%d) = %d: overhead over 12%% of the length", n, p)
		}
		if Padme(p) != p {
			t.Fatalf("Padme(%d) = %d, but Padme(%d) = %d: a padded length must be a fixed point", n, p, p, Padme(p))
		}
		prev = p
	}
	// Within [2^E, 2^(E+1)) the padded lengths take at most 2E+1 values,
	// so they reveal O(log log n) bits.
	for e := 1; e < 18; e++ {
		distinct := map[int]bool{}
		for n := 1 << e; n < 1<<(e+1); n++ {
			distinct[Padme(n)] = true
		}
		if len(distinct) > 2*e+1 {
			t.Errorf("lengths in [2^%d, 2^%d) pad to %d distinct values, want at most %d", e, e+1, len(distinct), 2*e+1)
		}
		if !distinct[1<<e] {
			t.Errorf("2^%d is not its own padded length", e)
		}
	}
}

func TestCiphertextLengthIsPadded(t *testing.T) {
	signer, key := newKeys(t)
	for _, n := range []int{0, 5, 6, 100, 101, 1000, 4096, 5000} {
		e := sealed(t, signer, key, make([]byte, n))
		want := Padme(n+lengthPrefixSize) + poly1305Overhead
		if len(e.Ciphertext) != want {
			t.Errorf("content of %d bytes: ciphertext of %d bytes, want %d", n, len(e.Ciphertext), want)
		}
	}
	// Two lengths in one padding bucket give ciphertexts of one length.
	a := sealed(t, signer, key, make([]byte, 990))
	b := sealed(t, signer, key, make([]byte, 1010))
	if len(a.Ciphertext) != len(b.Ciphertext) {
		t.Errorf("content of 990 and 1010 bytes: ciphertexts of %d and %d bytes, want equal", len(a.Ciphertext), len(b.Ciphertext))
	}
}

func TestUnpadRejectsInvalidPadding(t *testing.T) {
	good, err := pad([]byte("hello, padding"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := unpad(good); err != nil || string(got) != "hello, padding" {
		t.Fatalf("unpad(pad(x)) = %q, %v", got, err)
	}
	cases := map[string][]byte{
		"short":              {0, 0},
		"length too large":   append([]byte{0, 0, 1, 0}, make([]byte, 12)...),
		"not the PADME size": append(bytes.Clone(good), 0),
		"nonzero padding": func() []byte {
			b, _ := pad(make([]byte, 41)) // 4+41 pads to 48
			b[len(b)-1] = 1
			return b
		}(),
	}
	for name, b := range cases {
		if _, err := unpad(b); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: err = %v, want ErrDecrypt", name, err)
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

func BenchmarkSealOpen(b *testing.B) {
	signer, key := newKeys(b)
	for _, size := range []int{100, 64 << 10} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			plaintext := make([]byte, size)
			b.SetBytes(int64(size))
			for b.Loop() {
				e := sealed(b, signer, key, plaintext)
				raw, _ := e.Marshal()
				got, err := Unmarshal(raw)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := got.Open(key); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzUnmarshal checks that any accepted byte string encodes back to
// itself, which the signature, the hash chain and the relay's byte
// comparisons rely on.
func FuzzUnmarshal(f *testing.F) {
	signer, key := newKeys(f)
	raw, err := sealed(f, signer, key, []byte("entry")).Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	first, err := Seal(Header{Kind: KindUpdate, Seq: 1}, key, signer, nil)
	if err != nil {
		f.Fatal(err)
	}
	raw, _ = first.Marshal()
	f.Add(raw)
	f.Add([]byte{0x95})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Unmarshal(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Unmarshal error %v is not ErrMalformed", err)
			}
			return
		}
		again, err := e.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a decoded envelope: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("Marshal(Unmarshal(b)) differs from b")
		}
		if e.Hash() != Hash(sha256.Sum256(b)) {
			t.Fatal("Hash differs from the SHA-256 of the accepted bytes")
		}
	})
}
