package membership

import (
	"errors"
	"testing"
)

// TestDeviceAddedByWriter checks that a writer adds its own second device,
// which gets the writer role, the current key and the writer's person.
func TestDeviceAddedByWriter(t *testing.T) {
	admin, writer, phone := newPerson(t), newPerson(t), newPerson(t)
	s, key, _ := newLog(t, admin)
	add, err := s.NewAdd(admin.sign, writer.member(RoleWriter), key)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(add); err != nil {
		t.Fatal(err)
	}

	// The role asked for is ignored: a device gets its person's role.
	e, err := s.NewAddDevice(writer.sign, phone.member(RoleAdmin), key)
	if err != nil {
		t.Fatalf("writer adds own device: %v", err)
	}
	if err := s.Apply(e); err != nil {
		t.Fatalf("apply add_device: %v", err)
	}
	m, ok := s.Member(phone.key())
	if !ok || m.Role != RoleWriter {
		t.Fatalf("phone member %v, role %s; want a writer", ok, m.Role)
	}
	if p, _ := s.Person(phone.key()); p != writer.key() {
		t.Errorf("phone's person is %x, want the writer's key", p[:4])
	}
	got, ok := e.OpenKey(phone.key(), phone.boxPub, phone.boxPriv)
	if !ok || *got != *key {
		t.Errorf("phone opens the epoch key: %v", ok)
	}
}

// TestDeviceRules checks what add_device and remove_device reject.
func TestDeviceRules(t *testing.T) {
	admin, writer, phone, other, stranger := newPerson(t), newPerson(t), newPerson(t), newPerson(t), newPerson(t)
	s, key, _ := newLog(t, admin)
	for _, p := range []person{writer, other} {
		add, err := s.NewAdd(admin.sign, p.member(RoleWriter), key)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Apply(add); err != nil {
			t.Fatal(err)
		}
	}
	dev, err := s.NewAddDevice(writer.sign, phone.member(RoleWriter), key)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(dev); err != nil {
		t.Fatal(err)
	}

	// A non-member cannot add a device.
	if _, err := s.NewAddDevice(stranger.sign, newPerson(t).member(RoleWriter), key); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("stranger adds a device: %v, want ErrNotAllowed", err)
	}
	// A device already a member cannot be added again.
	if _, err := s.NewAddDevice(writer.sign, other.member(RoleWriter), key); !errors.Is(err, ErrInvalid) {
		t.Errorf("writer adds a current member as device: %v, want ErrInvalid", err)
	}
	// A writer cannot remove another person's device.
	if _, _, err := s.NewRemoveDevice(writer.sign, other.key(), key); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("writer removes another person: %v, want ErrNotAllowed", err)
	}
	// An entry with a forged role is rejected by the log, not only by
	// the constructor.
	forged := s.next(OpAddDevice, stranger.member(RoleAdmin))
	k, err := sealTo(key, forged.Subject)
	if err != nil {
		t.Fatal(err)
	}
	forged.Keys = []SealedKey{k}
	forged.Sign(writer.sign)
	if err := s.Clone().Apply(forged); !errors.Is(err, ErrInvalid) {
		t.Errorf("writer adds an admin device: %v, want ErrInvalid", err)
	}
}

// TestDeviceRemovedRotates checks that the writer removes its lost phone:
// the key changes, the phone gets no new key, and everyone else does.
func TestDeviceRemovedRotates(t *testing.T) {
	admin, writer, phone := newPerson(t), newPerson(t), newPerson(t)
	s, key1, _ := newLog(t, admin)
	add, err := s.NewAdd(admin.sign, writer.member(RoleWriter), key1)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(add); err != nil {
		t.Fatal(err)
	}
	dev, err := s.NewAddDevice(writer.sign, phone.member(RoleWriter), key1)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(dev); err != nil {
		t.Fatal(err)
	}

	rm, key2, err := s.NewRemoveDevice(writer.sign, phone.key(), key1)
	if err != nil {
		t.Fatalf("writer removes own phone: %v", err)
	}
	if err := s.Apply(rm); err != nil {
		t.Fatalf("apply remove_device: %v", err)
	}
	if s.Epoch() != 2 || *key2 == *key1 {
		t.Fatalf("epoch %d after removal, key changed %v; want epoch 2 and a new key", s.Epoch(), *key2 != *key1)
	}
	if _, ok := rm.OpenKey(phone.key(), phone.boxPub, phone.boxPriv); ok {
		t.Error("the removed phone opens the new key")
	}
	for _, p := range []person{admin, writer} {
		got, ok := rm.OpenKey(p.key(), p.boxPub, p.boxPriv)
		if !ok || *got != *key2 {
			t.Errorf("remaining member %s does not open the new key", p.sign.Public())
		}
	}
	prior, err := rm.OpenPrior(key2)
	if err != nil || *prior != *key1 {
		t.Errorf("prior key from the removal: %v", err)
	}
	if _, ok := s.Member(phone.key()); ok {
		t.Error("the phone is still a member")
	}
	// Round trip through the encoding keeps the new operations.
	for _, e := range []*Entry{dev, rm} {
		back, err := Decode(e.Encode())
		if err != nil {
			t.Fatalf("decode %s: %v", e.Op, err)
		}
		if back.Op != e.Op {
			t.Errorf("decoded op %s, want %s", back.Op, e.Op)
		}
	}
}

// FuzzApplyEntry applies fuzzed entries to a log with an admin, a writer
// and the writer's second device, as the relay does with entries from
// the network. Apply must not panic, and an accepted entry must leave
// every member with a person that is a member's key or was one.
func FuzzApplyEntry(f *testing.F) {
	admin, writer, phone, tablet := newPerson(f), newPerson(f), newPerson(f), newPerson(f)
	s, key, _ := newLog(f, admin)
	add, _ := s.NewAdd(admin.sign, writer.member(RoleWriter), key)
	s.Apply(add)
	dev, _ := s.NewAddDevice(writer.sign, phone.member(RoleWriter), key)
	s.Apply(dev)

	// Seeds: valid next entries of each kind, which the fuzzer mutates.
	next := []*Entry{}
	if e, err := s.NewAddDevice(phone.sign, tablet.member(RoleWriter), key); err == nil {
		next = append(next, e)
	}
	if e, _, err := s.NewRemoveDevice(writer.sign, phone.key(), key); err == nil {
		next = append(next, e)
	}
	if e, _, err := s.NewRemove(admin.sign, writer.key(), key); err == nil {
		next = append(next, e)
	}
	if e, err := s.NewChangeRole(admin.sign, phone.key(), RoleReader); err == nil {
		next = append(next, e)
	}
	for _, e := range next {
		f.Add(e.Encode())
	}

	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			return
		}
		c := s.Clone()
		if err := c.Apply(e); err != nil {
			if c.Len() != s.Len() || c.Head() != s.Head() {
				t.Fatalf("a rejected entry changed the log: %v", err)
			}
			return
		}
		for _, m := range c.Members() {
			if _, ok := c.Person(m.Sign); !ok {
				t.Fatalf("member %x has no person after %s", m.Sign[:4], e.Op)
			}
		}
	})
}
