package membership

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"maps"
	"slices"

	"golang.org/x/crypto/chacha20poly1305"
)

// State is the result of applying a log's entries in order: the members,
// the key epoch, the head, and each member's role over the log's history.
// The zero State is the empty log of no document, so the first entry
// applied must be an OpCreate.
type State struct {
	doc     [DocSize]byte
	length  uint64
	head    Hash
	epoch   uint32
	members map[[32]byte]Member
	// history lists, per member key, the role from each index on, with
	// role 0 for removed. RoleAt reads it.
	history map[[32]byte][]roleChange
	// heads maps each entry hash to its index and epoch.
	heads map[Hash]headInfo
	// person maps each current member to the member key that names its
	// person in this document: its own key, or for a device added with
	// OpAddDevice, the person of the device that added it.
	person map[[32]byte][32]byte
}

type roleChange struct {
	from uint64
	role Role
}

type headInfo struct {
	index uint64
	epoch uint32
}

// Len returns the number of entries applied.
func (s *State) Len() uint64 { return s.length }

// Head returns the hash of the last entry applied, or zero.
func (s *State) Head() Hash { return s.head }

// Epoch returns the current key epoch, or 0 before the first entry.
func (s *State) Epoch() uint32 { return s.epoch }

// Doc returns the document id.
func (s *State) Doc() [DocSize]byte { return s.doc }

// Member returns the current member with signing key k.
func (s *State) Member(k [32]byte) (Member, bool) {
	m, ok := s.members[k]
	return m, ok
}

// Members returns the current members sorted by signing key.
func (s *State) Members() []Member {
	ms := slices.Collect(maps.Values(s.members))
	slices.SortFunc(ms, func(a, b Member) int { return bytes.Compare(a.Sign[:], b.Sign[:]) })
	return ms
}

// Person returns the key that names the person of member k in this
// document, and whether k is a member. Two members with the same person
// are devices of one person.
func (s *State) Person(k [32]byte) ([32]byte, bool) {
	p, ok := s.person[k]
	return p, ok
}

// WasMember reports whether k has been a member at any point of the log.
func (s *State) WasMember(k [32]byte) bool { return len(s.history[k]) > 0 }

// HeadAt returns the index and epoch of the entry with hash h.
func (s *State) HeadAt(h Hash) (index uint64, epoch uint32, ok bool) {
	hi, ok := s.heads[h]
	return hi.index, hi.epoch, ok
}

// RoleAt returns the role member k had just after entry index, or false
// if it was no member then.
func (s *State) RoleAt(k [32]byte, index uint64) (Role, bool) {
	var role Role
	for _, c := range s.history[k] {
		if c.from > index {
			break
		}
		role = c.role
	}
	return role, role != 0
}

// Clone returns a copy that Apply can change without changing s.
func (s *State) Clone() *State {
	c := *s
	c.members = maps.Clone(s.members)
	c.heads = maps.Clone(s.heads)
	c.person = maps.Clone(s.person)
	c.history = make(map[[32]byte][]roleChange, len(s.history))
	for k, v := range s.history {
		c.history[k] = slices.Clone(v)
	}
	return &c
}

func (s *State) admins() int {
	n := 0
	for _, m := range s.members {
		if m.Role == RoleAdmin {
			n++
		}
	}
	return n
}

// Apply checks e against the log so far and appends it. It checks the
// form and signature, that e follows the head, that the author may make
// the change, and that the key is sealed to exactly the members who need
// it. On error s is unchanged.
func (s *State) Apply(e *Entry) error {
	if err := e.Verify(); err != nil {
		return err
	}
	if e.Index != s.length || e.Prev != s.head {
		return fmt.Errorf("%w: entry %d names previous %s, but the log has %d entries with head %s: rebuild the entry on the current log", ErrChain, e.Index, e.Prev, s.length, s.head)
	}
	if s.length > 0 && e.Doc != s.doc {
		return fmt.Errorf("%w: entry is for document %x, the log for %x", ErrInvalid, e.Doc[:], s.doc[:])
	}
	if err := s.check(e); err != nil {
		return err
	}
	s.apply(e)
	return nil
}

func (s *State) check(e *Entry) error {
	if e.Op == OpCreate {
		switch {
		case s.length != 0:
			return fmt.Errorf("%w: create at index %d: only the first entry creates", ErrInvalid, e.Index)
		case e.Author != e.Subject.Sign || e.Subject.Role != RoleAdmin:
			return fmt.Errorf("%w: the first entry must add its author as admin", ErrInvalid)
		case e.Epoch != 1:
			return fmt.Errorf("%w: the first entry must start key epoch 1, not %d", ErrInvalid, e.Epoch)
		}
		return checkRecipients(e, []Member{e.Subject})
	}
	if s.length == 0 {
		return fmt.Errorf("%w: the first entry must be a create, not %s", ErrInvalid, e.Op)
	}
	if err := s.checkAuthor(e); err != nil {
		return err
	}
	switch e.Op {
	case OpAdd, OpAddDevice:
		return s.checkAddition(e)
	case OpRemove, OpRemoveDevice:
		return s.checkRemoval(e)
	case OpChangeRole:
		current, isMember := s.members[e.Subject.Sign]
		if !isMember || current.Box != e.Subject.Box {
			return fmt.Errorf("%w: %x is not a member with these keys", ErrInvalid, e.Subject.Sign[:8])
		}
		if current.Role == e.Subject.Role {
			return fmt.Errorf("%w: %x already has role %s", ErrInvalid, e.Subject.Sign[:8], current.Role)
		}
		if current.Role == RoleAdmin && s.admins() == 1 {
			return fmt.Errorf("%w: %x is the last admin: make another member admin first", ErrInvalid, e.Subject.Sign[:8])
		}
		if e.Epoch != s.epoch {
			return fmt.Errorf("%w: changing a role keeps key epoch %d, but the entry has %d", ErrInvalid, s.epoch, e.Epoch)
		}
		return checkRecipients(e, nil)
	}
	return fmt.Errorf("%w: unknown operation %d", ErrMalformed, e.Op)
}

// checkAuthor checks that the author may make e: an admin for the
// changes to other people, and any member for add_device and
// remove_device on a device of its own person, with its own role.
func (s *State) checkAuthor(e *Entry) error {
	author, ok := s.members[e.Author]
	switch e.Op {
	case OpAddDevice, OpRemoveDevice:
		if !ok {
			return fmt.Errorf("%w: %x is not a member of document %x, so it cannot %s", ErrNotAllowed, e.Author[:8], s.doc[:], e.Op)
		}
		if e.Op == OpAddDevice && e.Subject.Role != author.Role {
			return fmt.Errorf("%w: a device gets its person's role %s, but the entry has %s", ErrInvalid, author.Role, e.Subject.Role)
		}
		if p, isMember := s.person[e.Subject.Sign]; e.Op == OpRemoveDevice && isMember && p != s.person[e.Author] {
			return fmt.Errorf("%w: %x is a device of another person: an admin removes other people", ErrNotAllowed, e.Subject.Sign[:8])
		}
	default:
		if !ok || author.Role != RoleAdmin {
			return fmt.Errorf("%w: %x is not an admin of document %x, so it cannot %s members", ErrNotAllowed, e.Author[:8], s.doc[:], e.Op)
		}
	}
	return nil
}

// checkAddition checks the rules that every addition of a member follows.
func (s *State) checkAddition(e *Entry) error {
	if _, isMember := s.members[e.Subject.Sign]; isMember {
		if e.Op == OpAdd {
			return fmt.Errorf("%w: %x is already a member: change its role instead", ErrInvalid, e.Subject.Sign[:8])
		}
		return fmt.Errorf("%w: %x is already a member", ErrInvalid, e.Subject.Sign[:8])
	}
	if len(s.members) >= MaxMembers {
		return fmt.Errorf("%w: document already has %d members, the maximum", ErrInvalid, len(s.members))
	}
	if e.Epoch != s.epoch {
		return fmt.Errorf("%w: adding keeps key epoch %d, but the entry has %d", ErrInvalid, s.epoch, e.Epoch)
	}
	return checkRecipients(e, []Member{e.Subject})
}

// checkRemoval checks the rules that every removal of a member follows:
// the last admin stays, and the key moves to a new epoch sealed to the
// members who remain.
func (s *State) checkRemoval(e *Entry) error {
	current, isMember := s.members[e.Subject.Sign]
	if !isMember || current != e.Subject {
		return fmt.Errorf("%w: %x is not a member with these keys and role", ErrInvalid, e.Subject.Sign[:8])
	}
	if current.Role == RoleAdmin && s.admins() == 1 {
		return fmt.Errorf("%w: %x is the last admin: make another member admin first", ErrInvalid, e.Subject.Sign[:8])
	}
	if e.Epoch != s.epoch+1 {
		return fmt.Errorf("%w: removing starts key epoch %d, but the entry has %d", ErrInvalid, s.epoch+1, e.Epoch)
	}
	return checkRecipients(e, s.remaining(e.Subject.Sign))
}

// remaining returns the members other than k.
func (s *State) remaining(k [32]byte) []Member {
	var out []Member
	for _, m := range s.members {
		if m.Sign != k {
			out = append(out, m)
		}
	}
	return out
}

// checkRecipients checks that the entry seals the key to exactly want.
func checkRecipients(e *Entry, want []Member) error {
	if len(e.Keys) != len(want) {
		return fmt.Errorf("%w: %s entry seals the key to %d members, want %d", ErrInvalid, e.Op, len(e.Keys), len(want))
	}
	set := make(map[[32]byte]bool, len(want))
	for _, m := range want {
		set[m.Sign] = true
	}
	for _, k := range e.Keys {
		if !set[k.Member] {
			return fmt.Errorf("%w: %s entry seals the key to %x, who should not receive it", ErrInvalid, e.Op, k.Member[:8])
		}
	}
	return nil
}

func (s *State) apply(e *Entry) {
	if s.members == nil {
		s.members = make(map[[32]byte]Member)
		s.history = make(map[[32]byte][]roleChange)
		s.heads = make(map[Hash]headInfo)
		s.person = make(map[[32]byte][32]byte)
		s.doc = e.Doc
	}
	switch e.Op {
	case OpCreate, OpAdd, OpAddDevice, OpChangeRole:
		s.members[e.Subject.Sign] = e.Subject
		s.history[e.Subject.Sign] = append(s.history[e.Subject.Sign], roleChange{e.Index, e.Subject.Role})
	case OpRemove, OpRemoveDevice:
		delete(s.members, e.Subject.Sign)
		delete(s.person, e.Subject.Sign)
		s.history[e.Subject.Sign] = append(s.history[e.Subject.Sign], roleChange{e.Index, 0})
	}
	switch e.Op {
	case OpCreate, OpAdd:
		s.person[e.Subject.Sign] = e.Subject.Sign
	case OpAddDevice:
		s.person[e.Subject.Sign] = s.person[e.Author]
	}
	s.epoch = e.Epoch
	s.head = e.Hash()
	s.heads[s.head] = headInfo{e.Index, e.Epoch}
	s.length++
}

// NewCreate returns the first entry of document doc, signed by its
// creator, who becomes its first admin, with epochKey sealed to it.
func NewCreate(doc [DocSize]byte, signer ed25519.PrivateKey, boxKey [32]byte, epochKey *[KeySize]byte) (*Entry, error) {
	e := &Entry{Op: OpCreate, Doc: doc, Epoch: 1}
	copy(e.Subject.Sign[:], signer.Public().(ed25519.PublicKey))
	e.Subject.Box, e.Subject.Role = boxKey, RoleAdmin
	k, err := sealTo(epochKey, e.Subject)
	if err != nil {
		return nil, err
	}
	e.Keys = []SealedKey{k}
	e.Sign(signer)
	return e, nil
}

func (s *State) next(op Op, subject Member) *Entry {
	return &Entry{Op: op, Doc: s.doc, Index: s.length, Prev: s.head, Epoch: s.epoch, Subject: subject}
}

// NewAdd returns an entry that adds m, with the current epoch's key
// sealed to it. The caller applies it after the relay accepts it.
func (s *State) NewAdd(signer ed25519.PrivateKey, m Member, epochKey *[KeySize]byte) (*Entry, error) {
	e := s.next(OpAdd, m)
	k, err := sealTo(epochKey, m)
	if err != nil {
		return nil, err
	}
	e.Keys = []SealedKey{k}
	e.Sign(signer)
	return e, s.Clone().Apply(e)
}

// NewAddDevice returns an entry by which member signer adds device, a
// device of the same person, with signer's role and the current epoch's
// key sealed to it.
func (s *State) NewAddDevice(signer ed25519.PrivateKey, device Member, epochKey *[KeySize]byte) (*Entry, error) {
	author, ok := s.members[[32]byte(signer.Public().(ed25519.PublicKey))]
	if !ok {
		return nil, fmt.Errorf("%w: the signer is not a member of document %x", ErrNotAllowed, s.doc[:])
	}
	device.Role = author.Role
	e := s.next(OpAddDevice, device)
	k, err := sealTo(epochKey, device)
	if err != nil {
		return nil, err
	}
	e.Keys = []SealedKey{k}
	e.Sign(signer)
	return e, s.Clone().Apply(e)
}

// NewChangeRole returns an entry that gives member k the role.
func (s *State) NewChangeRole(signer ed25519.PrivateKey, k [32]byte, role Role) (*Entry, error) {
	m, ok := s.members[k]
	if !ok {
		return nil, fmt.Errorf("%w: %x is not a member", ErrInvalid, k[:8])
	}
	m.Role = role
	e := s.next(OpChangeRole, m)
	e.Sign(signer)
	return e, s.Clone().Apply(e)
}

// NewRemove returns an entry that removes member k and starts a new key
// epoch, and the new epoch's key. The new key is sealed to every
// remaining member, and currentKey, the key of the current epoch, is
// encrypted under it.
func (s *State) NewRemove(signer ed25519.PrivateKey, k [32]byte, currentKey *[KeySize]byte) (*Entry, *[KeySize]byte, error) {
	return s.newRemoval(OpRemove, signer, k, currentKey)
}

// NewRemoveDevice is NewRemove for a device of signer's own person,
// which any member may remove.
func (s *State) NewRemoveDevice(signer ed25519.PrivateKey, k [32]byte, currentKey *[KeySize]byte) (*Entry, *[KeySize]byte, error) {
	return s.newRemoval(OpRemoveDevice, signer, k, currentKey)
}

func (s *State) newRemoval(op Op, signer ed25519.PrivateKey, k [32]byte, currentKey *[KeySize]byte) (*Entry, *[KeySize]byte, error) {
	m, ok := s.members[k]
	if !ok {
		return nil, nil, fmt.Errorf("%w: %x is not a member", ErrInvalid, k[:8])
	}
	newKey, err := NewKey()
	if err != nil {
		return nil, nil, err
	}
	e := s.next(op, m)
	e.Epoch++
	for _, r := range s.Members() {
		if r.Sign == k {
			continue
		}
		sk, err := sealTo(newKey, r)
		if err != nil {
			return nil, nil, err
		}
		e.Keys = append(e.Keys, sk)
	}
	aead, err := priorCipher(newKey)
	if err != nil {
		return nil, nil, err
	}
	nonce, err := NewKey() // 32 random bytes, of which the nonce takes 24
	if err != nil {
		return nil, nil, err
	}
	e.Prior = aead.Seal(nonce[:chacha20poly1305.NonceSizeX:chacha20poly1305.NonceSizeX], nonce[:chacha20poly1305.NonceSizeX], currentKey[:], e.priorAD())
	e.Sign(signer)
	return e, newKey, s.Clone().Apply(e)
}
