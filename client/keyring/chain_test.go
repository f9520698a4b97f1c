package keyring

import (
	"bytes"
	"errors"
	"testing"
)

func newTestDevice(t *testing.T) *Device {
	t.Helper()
	d, err := NewDevice()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// testUser is a person with a sigchain of three devices: a, b and c, all
// added by a.
type testUser struct {
	chain   *Chain
	key     *UserKey
	a, b, c *Device
	seeds   map[[32]byte]SealedSeed
}

func newTestUser(t *testing.T) *testUser {
	t.Helper()
	u := &testUser{a: newTestDevice(t), b: newTestDevice(t), c: newTestDevice(t), seeds: map[[32]byte]SealedSeed{}}
	chain, key, up, err := NewChain(u.a)
	if err != nil {
		t.Fatal(err)
	}
	u.chain, u.key = chain, key
	u.keep(up)
	for _, d := range []*Device{u.b, u.c} {
		up, err := chain.AddDevice(u.a, key, d.Public(), DeviceOrdinary)
		if err != nil {
			t.Fatal(err)
		}
		u.keep(up)
	}
	return u
}

// keep stores the sealed seeds of an update, as the relay would.
func (u *testUser) keep(up *Update) {
	for _, s := range up.Seeds {
		u.seeds[s.Device] = s
	}
}

func TestChainAddAndOpenSeed(t *testing.T) {
	u := newTestUser(t)

	if got := len(u.chain.Devices()); got != 3 {
		t.Fatalf("active devices = %d, want 3", got)
	}
	for _, d := range []*Device{u.a, u.b, u.c} {
		k, err := d.OpenSeed(u.seeds[d.Public().Sign], u.chain.UserKey())
		if err != nil {
			t.Fatalf("device %s: %v", d.Public().Fingerprint(), err)
		}
		if k.seed != u.key.seed {
			t.Errorf("device %s opened a different seed", d.Public().Fingerprint())
		}
	}

	// The whole chain verifies again from its encoding, as another device
	// fetching it from the relay would.
	b, _ := u.chain.MarshalBinary()
	again, err := ParseChain(b)
	if err != nil {
		t.Fatal(err)
	}
	if again.Head() != u.chain.Head() || again.ID() != u.chain.ID() {
		t.Error("parsed chain has another head or ID")
	}
	b2, _ := again.MarshalBinary()
	if !bytes.Equal(b, b2) {
		t.Error("re-encoded chain differs from its encoding")
	}
}

func TestOpenSeedRejectsOtherDevicesSeed(t *testing.T) {
	u := newTestUser(t)

	_, err := u.b.OpenSeed(u.seeds[u.c.Public().Sign], u.chain.UserKey())
	if !errors.Is(err, ErrNotForThisDevice) {
		t.Fatalf("b opened c's seed: err = %v, want ErrNotForThisDevice", err)
	}
	// Relabelled as b's, it still does not open.
	s := u.seeds[u.c.Public().Sign]
	s.Device = u.b.Public().Sign
	if _, err := u.b.OpenSeed(s, u.chain.UserKey()); !errors.Is(err, ErrNotForThisDevice) {
		t.Fatalf("relabelled seed: err = %v, want ErrNotForThisDevice", err)
	}
}

func TestOpenSeedRejectsForeignUserKey(t *testing.T) {
	u := newTestUser(t)
	other := newTestUser(t)

	// A relay hands device b a seed of another person, sealed to b.
	foreign, err := other.key.SealTo(u.b.Public())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.b.OpenSeed(foreign, u.chain.UserKey()); !errors.Is(err, ErrUserKeyMismatch) {
		t.Fatalf("err = %v, want ErrUserKeyMismatch", err)
	}
}

func TestRevokeRotatesUserKey(t *testing.T) {
	u := newTestUser(t)
	old := u.key
	docKey := []byte("document key sealed to generation 1")
	sealedDocKey, err := SealToUser(old.Public(), docKey)
	if err != nil {
		t.Fatal(err)
	}

	// b is lost; a revokes it.
	next, up, err := u.chain.RevokeDevice(u.a, u.key, u.b.Public())
	if err != nil {
		t.Fatal(err)
	}
	if next.Generation() != 2 || u.chain.UserKey() != next.Public() {
		t.Fatalf("after revoke: generation %d, chain user key generation %d; want 2 and 2", next.Generation(), u.chain.UserKey().Generation)
	}
	if next.seed == old.seed {
		t.Fatal("revoke kept the old seed")
	}
	if d, _ := u.chain.Device(u.b.Public().Sign); d.Revoked != up.Entry.Seq {
		t.Errorf("b revoked at %d, want %d", d.Revoked, up.Entry.Seq)
	}

	// The new seed is sealed to a and c only.
	if len(up.Seeds) != 2 {
		t.Fatalf("new seed sealed to %d devices, want 2", len(up.Seeds))
	}
	for _, s := range up.Seeds {
		if s.Device == u.b.Public().Sign {
			t.Fatal("new seed sealed to the revoked device")
		}
		if s.Generation != 2 {
			t.Errorf("sealed seed generation %d, want 2", s.Generation)
		}
	}
	u.keep(up)
	for _, d := range []*Device{u.a, u.c} {
		k, err := d.OpenSeed(u.seeds[d.Public().Sign], u.chain.UserKey())
		if err != nil {
			t.Fatalf("remaining device %s: %v", d.Public().Fingerprint(), err)
		}
		if k.seed != next.seed {
			t.Errorf("remaining device %s opened another seed", d.Public().Fingerprint())
		}
	}

	// The revoked device cannot open any copy of the new seed.
	for _, s := range up.Seeds {
		s.Device = u.b.Public().Sign
		if _, err := u.b.OpenSeed(s, u.chain.UserKey()); !errors.Is(err, ErrNotForThisDevice) {
			t.Errorf("revoked device opened the new seed: err = %v", err)
		}
	}
	// The revoked device knows the old seed, which does not open the blob
	// that carries the old seed under the new one.
	oldCipher, err := newXChaCha(old.seed[:], labelPriorSeed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openAEAD(oldCipher, up.Prior, next.priorAD()); err == nil {
		t.Error("the old seed opened the prior-seed blob")
	}

	// History stays readable: c walks back from generation 2 to 1 and opens
	// the document key sealed to the old user key.
	k2, _ := u.c.OpenSeed(u.seeds[u.c.Public().Sign], u.chain.UserKey())
	want1, _ := u.chain.UserKeyAt(1)
	k1, err := k2.OpenPrior(up.Prior, want1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := k1.OpenSealed(sealedDocKey)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, docKey) {
		t.Errorf("document key = %q, want %q", got, docKey)
	}
	// The new user key does not open what was sealed to the old one.
	if _, err := k2.OpenSealed(sealedDocKey); err == nil {
		t.Error("generation 2 opened a secret sealed to generation 1")
	}
}

func TestRevokeRules(t *testing.T) {
	u := newTestUser(t)

	if _, _, err := u.chain.RevokeDevice(u.b, u.key, u.b.Public()); !errors.Is(err, ErrChainInvalid) {
		t.Errorf("self-revoke: err = %v, want ErrChainInvalid", err)
	}
	next, _, err := u.chain.RevokeDevice(u.a, u.key, u.b.Public())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := u.chain.RevokeDevice(u.a, next, u.b.Public()); !errors.Is(err, ErrChainInvalid) {
		t.Errorf("second revoke of b: err = %v, want ErrChainInvalid", err)
	}
	if _, err := u.chain.AddDevice(u.a, next, u.b.Public(), DeviceOrdinary); !errors.Is(err, ErrChainInvalid) {
		t.Errorf("re-adding revoked b: err = %v, want ErrChainInvalid", err)
	}
	// The old user key can no longer sign entries.
	if _, err := u.chain.AddDevice(u.a, u.key, newTestDevice(t).Public(), DeviceOrdinary); err == nil {
		t.Error("AddDevice with the user key of generation 1 succeeded after rotation")
	}
	// The revoked device can no longer sign entries.
	if _, err := u.chain.AddDevice(u.b, next, newTestDevice(t).Public(), DeviceOrdinary); err == nil {
		t.Error("AddDevice signed by revoked b succeeded")
	}
	if _, err := u.chain.AddDevice(u.a, next, u.c.Public(), DeviceOrdinary); !errors.Is(err, ErrChainInvalid) {
		t.Errorf("adding c twice: err = %v, want ErrChainInvalid", err)
	}
}

func TestVerifyChainRejectsRevokedSigner(t *testing.T) {
	u := newTestUser(t)
	next, _, err := u.chain.RevokeDevice(u.a, u.key, u.b.Public())
	if err != nil {
		t.Fatal(err)
	}

	// b, revoked, still has its keys and learns the new public user key
	// from the chain, but not the new seed. Even with the seed, which a
	// careless device might leak, its entry must be rejected.
	e := Entry{Kind: EntryAdd, DeviceKind: DeviceOrdinary, Seq: uint64(u.chain.Len()) + 1, Prev: u.chain.Head(), Device: newTestDevice(t).Public(), Signer: u.b.Public().Sign, User: next.Public()}
	e.sign(u.b, next)
	entries := append(u.chain.Entries(), e)
	if _, err := VerifyChain(entries); !errors.Is(err, ErrRevokedSigner) {
		t.Fatalf("err = %v, want ErrRevokedSigner", err)
	}
}

func TestVerifyChainRejectsTampering(t *testing.T) {
	u := newTestUser(t)
	if _, _, err := u.chain.RevokeDevice(u.a, u.key, u.c.Public()); err != nil {
		t.Fatal(err)
	}
	good := u.chain.Entries()
	stranger := newTestDevice(t)

	tests := []struct {
		name   string
		change func([]Entry) []Entry
		want   error
	}{
		{"flipped signature bit", func(es []Entry) []Entry { es[1].Signature[10] ^= 1; return es }, ErrChainSignature},
		{"flipped user signature bit", func(es []Entry) []Entry { es[2].UserSignature[0] ^= 1; return es }, ErrChainSignature},
		{"changed added device", func(es []Entry) []Entry { es[1].Device = stranger.Public(); return es }, ErrChainSignature},
		{"changed generation", func(es []Entry) []Entry { es[3].User.Generation = 7; return es }, ErrChainSignature},
		{"missing entry", func(es []Entry) []Entry { return append(es[:1], es[2:]...) }, ErrChainGap},
		{"duplicate entry", func(es []Entry) []Entry { return append(es[:2], es[1:]...) }, ErrChainFork},
		{"entries swapped", func(es []Entry) []Entry { es[1], es[2] = es[2], es[1]; return es }, ErrChainGap},
		{"first entry missing", func(es []Entry) []Entry { return es[1:] }, ErrChainGap},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es := tt.change(append([]Entry(nil), good...))
			if _, err := VerifyChain(es); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := VerifyChain(good); err != nil {
		t.Fatalf("unchanged chain: %v", err)
	}
}

func TestVerifyChainRejectsFork(t *testing.T) {
	u := newTestUser(t)
	base := u.chain.Clone()

	// Two devices each append an entry 4 on the same entry 3.
	left, right := base.Clone(), base.Clone()
	upLeft, err := left.AddDevice(u.a, u.key, newTestDevice(t).Public(), DeviceOrdinary)
	if err != nil {
		t.Fatal(err)
	}
	upRight, err := right.AddDevice(u.b, u.key, newTestDevice(t).Public(), DeviceOrdinary)
	if err != nil {
		t.Fatal(err)
	}

	// The right branch's entry does not append to the left chain.
	if err := left.Append(upRight.Entry); !errors.Is(err, ErrChainFork) {
		t.Errorf("Append of the other branch: err = %v, want ErrChainFork", err)
	}
	// A later entry that names the other branch's head forks too.
	third, err := right.AddDevice(u.b, u.key, newTestDevice(t).Public(), DeviceOrdinary)
	if err != nil {
		t.Fatal(err)
	}
	mixed := append(base.Entries(), upLeft.Entry, third.Entry)
	if _, err := VerifyChain(mixed); !errors.Is(err, ErrChainFork) {
		t.Errorf("VerifyChain of mixed branches: err = %v, want ErrChainFork", err)
	}

	// A device that verified the left branch rejects the right one from the
	// relay, and an older copy too.
	if err := left.Extend(right.Entries()); !errors.Is(err, ErrChainFork) {
		t.Errorf("Extend to the other branch: err = %v, want ErrChainFork", err)
	}
	if err := left.Extend(base.Entries()); !errors.Is(err, ErrChainRollback) {
		t.Errorf("Extend to an older copy: err = %v, want ErrChainRollback", err)
	}
	if left.Len() != 4 {
		t.Errorf("left has %d entries after rejected extends, want 4", left.Len())
	}
	// The longer copy of the same branch is accepted.
	if err := base.Extend(right.Entries()); err != nil {
		t.Errorf("Extend to a longer copy: %v", err)
	}
	if base.Head() != right.Head() {
		t.Error("Extend did not move the head")
	}
}

func TestVerifyChainFirstEntry(t *testing.T) {
	a, b := newTestDevice(t), newTestDevice(t)
	key, err := NewUserKey(1)
	if err != nil {
		t.Fatal(err)
	}

	// Signed by a device other than the one it adds.
	e := Entry{Kind: EntryAdd, DeviceKind: DeviceOrdinary, Seq: 1, Device: a.Public(), Signer: b.Public().Sign, User: key.Public()}
	e.sign(b, key)
	if _, err := VerifyChain([]Entry{e}); !errors.Is(err, ErrChainInvalid) {
		t.Errorf("first entry signed by another device: err = %v, want ErrChainInvalid", err)
	}
	// With a previous hash.
	e = Entry{Kind: EntryAdd, DeviceKind: DeviceOrdinary, Seq: 1, Prev: [32]byte{1}, Device: a.Public(), Signer: a.Public().Sign, User: key.Public()}
	e.sign(a, key)
	if _, err := VerifyChain([]Entry{e}); !errors.Is(err, ErrChainFork) {
		t.Errorf("first entry with a previous hash: err = %v, want ErrChainFork", err)
	}
	if _, err := VerifyChain(nil); !errors.Is(err, ErrChainInvalid) {
		t.Errorf("empty chain: err = %v, want ErrChainInvalid", err)
	}
}

func TestParseChainRejectsBadEncoding(t *testing.T) {
	u := newTestUser(t)
	b, _ := u.chain.MarshalBinary()

	if _, err := ParseChain(b[:len(b)-1]); !errors.Is(err, ErrChainInvalid) {
		t.Errorf("truncated: err = %v, want ErrChainInvalid", err)
	}
	bad := bytes.Clone(b)
	bad[EntrySize] = 9 // version of entry 2
	if _, err := ParseChain(bad); !errors.Is(err, ErrChainInvalid) {
		t.Errorf("unknown version: err = %v, want ErrChainInvalid", err)
	}
	bad = bytes.Clone(b)
	bad[EntrySize+1] = 3 // kind of entry 2
	if _, err := ParseChain(bad); !errors.Is(err, ErrChainInvalid) {
		t.Errorf("unknown kind: err = %v, want ErrChainInvalid", err)
	}
}

func FuzzUnmarshalEntry(f *testing.F) {
	a := newFuzzDevice(f)
	_, _, up, err := NewChain(a)
	if err != nil {
		f.Fatal(err)
	}
	b, _ := up.Entry.MarshalBinary()
	f.Add(b)
	f.Add(b[:100])
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := UnmarshalEntry(b)
		if err != nil {
			return
		}
		// The encoding is fixed-size, so a decoded entry encodes back to
		// exactly the bytes it came from, and the signed bytes are the
		// stored bytes.
		again, _ := e.MarshalBinary()
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, again)
		}
	})
}

func newFuzzDevice(f *testing.F) *Device {
	d, err := NewDevice()
	if err != nil {
		f.Fatal(err)
	}
	return d
}

// BenchmarkVerifyChain measures verifying a sigchain of 63 entries, as a
// sharer does the first time it fetches a person's chain: 32 devices
// added and 31 of them revoked, so 31 rotations, far more than a person
// makes in years.
func BenchmarkVerifyChain(b *testing.B) {
	first, err := NewDevice()
	if err != nil {
		b.Fatal(err)
	}
	chain, key, _, err := NewChain(first)
	if err != nil {
		b.Fatal(err)
	}
	for range 31 {
		d, err := NewDevice()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := chain.AddDevice(first, key, d.Public(), DeviceOrdinary); err != nil {
			b.Fatal(err)
		}
		if key, _, err = chain.RevokeDevice(first, key, d.Public()); err != nil {
			b.Fatal(err)
		}
	}
	entries := chain.Entries()
	if len(entries) != 63 {
		b.Fatalf("the chain has %d entries, want 63", len(entries))
	}
	raw, _ := chain.MarshalBinary()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := ParseChain(raw); err != nil {
			b.Fatal(err)
		}
	}
}
