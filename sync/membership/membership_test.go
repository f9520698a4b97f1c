package membership

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"

	"golang.org/x/crypto/nacl/box"
)

type person struct {
	sign    ed25519.PrivateKey
	boxPub  *[32]byte
	boxPriv *[32]byte
}

func newPerson(t testing.TB) person {
	t.Helper()
	_, sign, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, err := box.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return person{sign, pub, priv}
}

func (p person) key() [32]byte { return [32]byte(p.sign.Public().(ed25519.PublicKey)) }

func (p person) member(r Role) Member { return Member{Sign: p.key(), Box: *p.boxPub, Role: r} }

// newLog returns a log created by admin, with its epoch-1 key.
func newLog(t testing.TB, admin person) (*State, *[KeySize]byte, []*Entry) {
	t.Helper()
	key, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewCreate([DocSize]byte{1, 2, 3}, admin.sign, *admin.boxPub, key)
	if err != nil {
		t.Fatal(err)
	}
	s := &State{}
	if err := s.Apply(e); err != nil {
		t.Fatalf("apply create: %v", err)
	}
	return s, key, []*Entry{e}
}

func TestLogAddRemoveRotates(t *testing.T) {
	admin, writer, reader := newPerson(t), newPerson(t), newPerson(t)
	s, key1, _ := newLog(t, admin)

	add, err := s.NewAdd(admin.sign, writer.member(RoleWriter), key1)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(add); err != nil {
		t.Fatalf("apply add: %v", err)
	}
	got, ok := add.OpenKey(writer.key(), writer.boxPub, writer.boxPriv)
	if !ok || *got != *key1 {
		t.Fatalf("added member opens key %v, %v; want the epoch-1 key", ok, got != nil)
	}
	add2, err := s.NewAdd(admin.sign, reader.member(RoleReader), key1)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(add2); err != nil {
		t.Fatal(err)
	}

	rm, key2, err := s.NewRemove(admin.sign, writer.key(), key1)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(rm); err != nil {
		t.Fatalf("apply remove: %v", err)
	}
	if s.Epoch() != 2 {
		t.Fatalf("epoch after removal = %d, want 2", s.Epoch())
	}
	if *key2 == *key1 {
		t.Fatal("removal kept the old key")
	}
	if _, ok := rm.OpenKey(writer.key(), writer.boxPub, writer.boxPriv); ok {
		t.Fatal("removed member opens the new epoch key")
	}
	k, ok := rm.OpenKey(reader.key(), reader.boxPub, reader.boxPriv)
	if !ok || *k != *key2 {
		t.Fatal("remaining reader cannot open the new epoch key")
	}
	prior, err := rm.OpenPrior(key2)
	if err != nil || *prior != *key1 {
		t.Fatalf("prior key from new key: %v, match %v", err, prior != nil && *prior == *key1)
	}
	if _, err := rm.OpenPrior(key1); err == nil {
		t.Fatal("prior key opened with the old key")
	}
	if r, ok := s.RoleAt(writer.key(), add.Index); !ok || r != RoleWriter {
		t.Fatalf("role of removed member at its add = %v %v, want writer", r, ok)
	}
	if _, ok := s.RoleAt(writer.key(), rm.Index); ok {
		t.Fatal("removed member still has a role after its removal")
	}
}

func TestApplyRejectsBadEntries(t *testing.T) {
	admin, writer, outsider := newPerson(t), newPerson(t), newPerson(t)
	s, key, _ := newLog(t, admin)
	add, err := s.NewAdd(admin.sign, writer.member(RoleWriter), key)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(add); err != nil {
		t.Fatal(err)
	}

	t.Run("non-admin add", func(t *testing.T) {
		e := s.next(OpAdd, outsider.member(RoleWriter))
		sk, _ := sealTo(key, e.Subject)
		e.Keys = []SealedKey{sk}
		e.Sign(writer.sign)
		if err := s.Clone().Apply(e); !errors.Is(err, ErrNotAllowed) {
			t.Fatalf("Apply = %v, want ErrNotAllowed", err)
		}
	})
	t.Run("forged signature", func(t *testing.T) {
		e, err := s.NewAdd(admin.sign, outsider.member(RoleWriter), key)
		if err != nil {
			t.Fatal(err)
		}
		e.Subject.Role = RoleAdmin // changed after signing
		if err := s.Clone().Apply(e); !errors.Is(err, ErrSignature) {
			t.Fatalf("Apply = %v, want ErrSignature", err)
		}
	})
	t.Run("wrong chain", func(t *testing.T) {
		e, err := s.NewAdd(admin.sign, outsider.member(RoleWriter), key)
		if err != nil {
			t.Fatal(err)
		}
		e.Prev[0] ^= 1
		e.Sign(admin.sign)
		if err := s.Clone().Apply(e); !errors.Is(err, ErrChain) {
			t.Fatalf("Apply = %v, want ErrChain", err)
		}
	})
	t.Run("removal sealed to removed member", func(t *testing.T) {
		e, _, err := s.NewRemove(admin.sign, writer.key(), key)
		if err != nil {
			t.Fatal(err)
		}
		sk, _ := sealTo(key, writer.member(RoleWriter))
		e.Keys = append(e.Keys, sk)
		if bytes.Compare(e.Keys[0].Member[:], e.Keys[1].Member[:]) > 0 {
			e.Keys[0], e.Keys[1] = e.Keys[1], e.Keys[0]
		}
		e.Sign(admin.sign)
		if err := s.Clone().Apply(e); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Apply = %v, want ErrInvalid", err)
		}
	})
	t.Run("last admin removed", func(t *testing.T) {
		if _, _, err := s.NewRemove(admin.sign, admin.key(), key); !errors.Is(err, ErrInvalid) {
			t.Fatalf("NewRemove of last admin = %v, want ErrInvalid", err)
		}
	})
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	admin, writer := newPerson(t), newPerson(t)
	s, key, _ := newLog(t, admin)
	add, _ := s.NewAdd(admin.sign, writer.member(RoleWriter), key)
	s.Apply(add)
	rm, _, err := s.NewRemove(admin.sign, writer.key(), key)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []*Entry{add, rm} {
		b := e.Encode()
		d, err := Decode(b)
		if err != nil {
			t.Fatalf("Decode(%s entry): %v", e.Op, err)
		}
		if !bytes.Equal(d.Encode(), b) {
			t.Fatalf("%s entry does not encode back to the same bytes", e.Op)
		}
		if err := d.Verify(); err != nil {
			t.Fatalf("decoded %s entry: %v", e.Op, err)
		}
	}
}

func FuzzDecodeEncode(f *testing.F) {
	admin, writer := newPerson(f), newPerson(f)
	s, key, entries := newLog(f, admin)
	add, _ := s.NewAdd(admin.sign, writer.member(RoleWriter), key)
	s.Apply(add)
	phone := newPerson(f)
	dev, _ := s.NewAddDevice(writer.sign, phone.member(RoleWriter), key)
	s.Apply(dev)
	rmDev, key2, _ := s.NewRemoveDevice(writer.sign, phone.key(), key)
	s.Apply(rmDev)
	rm, _, _ := s.NewRemove(admin.sign, writer.key(), key2)
	for _, e := range append(entries, add, dev, rmDev, rm) {
		f.Add(e.Encode())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			return
		}
		if !bytes.Equal(e.Encode(), b) {
			t.Fatalf("decoded entry encodes to other bytes:\n in  %x\n out %x", b, e.Encode())
		}
	})
}

func TestForkProofAndHeadCode(t *testing.T) {
	_, relay, _ := ed25519.GenerateKey(rand.Reader)
	doc := [DocSize]byte{9}
	a, b := Hash{1}, Hash{2}
	sa, sb := Countersign(relay, doc, 3, a), Countersign(relay, doc, 3, b)
	p := ForkProof{Doc: doc, Index: 3, A: a, B: b, SigA: sa[:], SigB: sb[:], RelayPublicKey: relay.Public().(ed25519.PublicKey)}
	if err := p.Verify(); err != nil {
		t.Fatalf("valid fork proof: %v", err)
	}
	p.Index = 4
	if err := p.Verify(); err == nil {
		t.Fatal("fork proof with another index verifies")
	}
	if HeadCode(doc, 3, a) == HeadCode(doc, 3, b) {
		t.Fatal("two heads have one code")
	}
	if HeadCode(doc, 3, a) != HeadCode(doc, 3, a) {
		t.Fatal("head code is not deterministic")
	}
}
