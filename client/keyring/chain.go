package keyring

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// Errors returned when a sigchain does not verify. Each is wrapped with the
// sequence number of the entry at fault.
var (
	// ErrChainSignature is returned when an entry's device signature or user
	// key signature does not verify.
	ErrChainSignature = errors.New("keyring: sigchain signature does not verify")
	// ErrChainGap is returned when an entry's sequence number skips ahead,
	// so entries are missing before it.
	ErrChainGap = errors.New("keyring: sigchain has a gap")
	// ErrChainFork is returned when an entry does not extend the entry
	// before it, or when a sigchain differs from the one a device already
	// verified: somebody is showing two histories of the same person.
	ErrChainFork = errors.New("keyring: sigchain forks")
	// ErrChainRollback is returned when a sigchain is shorter than the one
	// a device already verified.
	ErrChainRollback = errors.New("keyring: sigchain is older than the one already verified")
	// ErrRevokedSigner is returned for an entry signed by a revoked device.
	ErrRevokedSigner = errors.New("keyring: sigchain entry is signed by a revoked device")
	// ErrChainInvalid is returned for an entry that breaks another rule of
	// the sigchain, such as adding a device twice.
	ErrChainInvalid = errors.New("keyring: invalid sigchain entry")
)

// EntryKind is the change a sigchain entry makes.
type EntryKind uint8

const (
	// EntryAdd adds a device to the person's devices.
	EntryAdd EntryKind = 1
	// EntryRevoke revokes a device and rotates the user key.
	EntryRevoke EntryKind = 2
)

// DeviceKind is the kind of key pair a device has.
type DeviceKind uint8

const (
	// DeviceOrdinary is a phone, a computer or a browser profile.
	DeviceOrdinary DeviceKind = 1
	// DeviceRecovery is the key pair derived from a recovery phrase.
	DeviceRecovery DeviceKind = 2
)

const (
	entryVersion    = 1
	entryBodySize   = 1 + 1 + 1 + 8 + 32 + 64 + 32 + 4 + 64
	domainDeviceSig = "interlude/keyring/v1 sigchain device signature"
	domainUserSig   = "interlude/keyring/v1 sigchain user signature"
	domainEntryHash = "interlude/keyring/v1 sigchain entry hash"
	// maxChainEntries bounds the work of verifying a sigchain from the
	// relay. A person adds or revokes a device a few times a year, so real
	// chains should stay far below it. The number is an estimate.
	maxChainEntries = 4096
)

// EntrySize is the size of an encoded Entry in bytes.
const EntrySize = entryBodySize + 2*ed25519.SignatureSize

// Entry is one link of a person's sigchain: the list of their devices,
// each change signed by a device already on it.
type Entry struct {
	Kind EntryKind
	// DeviceKind is the kind of Device: the kind added, or the kind revoked.
	DeviceKind DeviceKind
	// Seq numbers entries from 1 without gaps.
	Seq uint64
	// Prev is the Hash of the entry before, zero in the first entry.
	Prev [32]byte
	// Device is the device added or revoked.
	Device PublicKeys
	// Signer is the Ed25519 key of the device that signed the entry. The
	// first entry is signed by the device it adds.
	Signer [ed25519.PublicKeySize]byte
	// User is the user key in force after this entry: the same as before
	// for an add, the next generation for a revoke.
	User UserPublicKey
	// UserSignature is by User's signing key, so an entry proves that its
	// signer holds the user seed it names.
	UserSignature [ed25519.SignatureSize]byte
	// Signature is by Signer.
	Signature [ed25519.SignatureSize]byte
}

func (e *Entry) body() []byte {
	b := make([]byte, 0, EntrySize)
	b = append(b, entryVersion, byte(e.Kind), byte(e.DeviceKind))
	b = binary.BigEndian.AppendUint64(b, e.Seq)
	b = append(b, e.Prev[:]...)
	b = append(b, e.Device.Sign[:]...)
	b = append(b, e.Device.Box[:]...)
	b = append(b, e.Signer[:]...)
	b = binary.BigEndian.AppendUint32(b, e.User.Generation)
	b = append(b, e.User.Sign[:]...)
	return append(b, e.User.Box[:]...)
}

// MarshalBinary returns the fixed-size encoding of EntrySize bytes.
func (e *Entry) MarshalBinary() ([]byte, error) {
	b := e.body()
	b = append(b, e.UserSignature[:]...)
	return append(b, e.Signature[:]...), nil
}

// Hash returns the SHA-256 hash that the next entry's Prev names.
func (e *Entry) Hash() [32]byte {
	b, _ := e.MarshalBinary()
	return sha256.Sum256(withDomain(domainEntryHash, b))
}

// UnmarshalEntry decodes what Entry.MarshalBinary returned. It checks the
// format only: verify entries with VerifyChain or Chain.Append.
func UnmarshalEntry(b []byte) (Entry, error) {
	var e Entry
	if len(b) != EntrySize {
		return e, fmt.Errorf("%w: entry of %d bytes, want %d", ErrChainInvalid, len(b), EntrySize)
	}
	if b[0] != entryVersion {
		return e, fmt.Errorf("%w: entry version %d, this build reads version %d", ErrChainInvalid, b[0], entryVersion)
	}
	e.Kind, e.DeviceKind = EntryKind(b[1]), DeviceKind(b[2])
	if e.Kind != EntryAdd && e.Kind != EntryRevoke {
		return e, fmt.Errorf("%w: unknown entry kind %d", ErrChainInvalid, e.Kind)
	}
	if e.DeviceKind != DeviceOrdinary && e.DeviceKind != DeviceRecovery {
		return e, fmt.Errorf("%w: unknown device kind %d", ErrChainInvalid, e.DeviceKind)
	}
	e.Seq = binary.BigEndian.Uint64(b[3:11])
	b = b[11:]
	b = b[copy(e.Prev[:], b):]
	b = b[copy(e.Device.Sign[:], b):]
	b = b[copy(e.Device.Box[:], b):]
	b = b[copy(e.Signer[:], b):]
	e.User.Generation = binary.BigEndian.Uint32(b)
	b = b[4:]
	b = b[copy(e.User.Sign[:], b):]
	b = b[copy(e.User.Box[:], b):]
	b = b[copy(e.UserSignature[:], b):]
	copy(e.Signature[:], b)
	return e, nil
}

func (e *Entry) sign(signer *Device, key *UserKey) {
	body := e.body()
	e.UserSignature = key.sign(domainUserSig, body)
	e.Signature = signer.sign(domainDeviceSig, body)
}

// DeviceInfo is the sigchain's record of one device.
type DeviceInfo struct {
	Keys PublicKeys
	Kind DeviceKind
	// Added is the Seq of the entry that added the device.
	Added uint64
	// Revoked is the Seq of the entry that revoked it, 0 while it is active.
	Revoked uint64
}

// Chain is a verified sigchain. Every entry in it has passed the checks of
// Append; a Chain is never left half-changed by a failed call.
type Chain struct {
	entries []Entry
	hashes  [][32]byte
	users   []UserPublicKey // index generation-1
	devices map[[ed25519.PublicKeySize]byte]*DeviceInfo
	order   [][ed25519.PublicKeySize]byte // devices in the order they were added
}

// Update is the output of an operation on a Chain, for the relay to store:
// the new entry, the seed sealed to each device that must receive it, and
// after a rotation the previous seed sealed under the new one.
type Update struct {
	Entry Entry
	Seeds []SealedSeed
	// Prior is set by RevokeDevice: UserKey.SealPrior of the previous
	// generation under the new one.
	Prior []byte
}

func newChain() *Chain {
	return &Chain{devices: make(map[[ed25519.PublicKeySize]byte]*DeviceInfo)}
}

// NewChain starts a person's sigchain on their first device: a new user
// key of generation 1, and an entry adding the device, signed by itself.
func NewChain(first *Device) (*Chain, *UserKey, *Update, error) {
	key, err := NewUserKey(1)
	if err != nil {
		return nil, nil, nil, err
	}
	e := Entry{Kind: EntryAdd, DeviceKind: DeviceOrdinary, Seq: 1, Device: first.Public(), Signer: first.public.Sign, User: key.Public()}
	e.sign(first, key)
	seed, err := key.SealTo(first.Public())
	if err != nil {
		return nil, nil, nil, err
	}

	c := newChain()
	if err := c.Append(e); err != nil {
		return nil, nil, nil, err
	}
	return c, key, &Update{Entry: e, Seeds: []SealedSeed{seed}}, nil
}

// VerifyChain verifies a whole sigchain from its first entry and returns it.
func VerifyChain(entries []Entry) (*Chain, error) {
	if len(entries) == 0 {
		return nil, fmt.Errorf("%w: the sigchain has no entries", ErrChainInvalid)
	}
	if len(entries) > maxChainEntries {
		return nil, fmt.Errorf("%w: %d entries, the limit is %d", ErrChainInvalid, len(entries), maxChainEntries)
	}
	c := newChain()
	for i := range entries {
		if err := c.Append(entries[i]); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// ParseChain decodes and verifies what Chain.MarshalBinary returned.
func ParseChain(b []byte) (*Chain, error) {
	if len(b) == 0 || len(b)%EntrySize != 0 {
		return nil, fmt.Errorf("%w: sigchain of %d bytes is not a whole number of %d-byte entries", ErrChainInvalid, len(b), EntrySize)
	}
	if len(b)/EntrySize > maxChainEntries {
		return nil, fmt.Errorf("%w: %d entries, the limit is %d", ErrChainInvalid, len(b)/EntrySize, maxChainEntries)
	}
	entries := make([]Entry, 0, len(b)/EntrySize)
	for off := 0; off < len(b); off += EntrySize {
		e, err := UnmarshalEntry(b[off : off+EntrySize])
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", off/EntrySize+1, err)
		}
		entries = append(entries, e)
	}
	return VerifyChain(entries)
}

// MarshalBinary returns the entries' encodings, one after the other.
func (c *Chain) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, len(c.entries)*EntrySize)
	for i := range c.entries {
		enc, _ := c.entries[i].MarshalBinary()
		b = append(b, enc...)
	}
	return b, nil
}

// Append verifies e as the next entry and adds it. On error the chain is
// unchanged.
func (c *Chain) Append(e Entry) error {
	if err := c.check(&e); err != nil {
		return err
	}
	c.apply(e)
	return nil
}

// Extend replaces the chain with a longer copy fetched from the relay. It
// returns ErrChainFork unless the copy starts with every entry this chain
// holds, and ErrChainRollback if the copy is shorter. On error the chain is
// unchanged.
func (c *Chain) Extend(entries []Entry) error {
	if len(entries) < len(c.entries) {
		return fmt.Errorf("%w: %d entries, this device has verified %d", ErrChainRollback, len(entries), len(c.entries))
	}
	for i := range c.entries {
		if entries[i].Hash() != c.hashes[i] {
			return fmt.Errorf("%w: entry %d differs from the entry %d this device verified", ErrChainFork, i+1, i+1)
		}
	}
	next := c.Clone()
	for i := len(c.entries); i < len(entries); i++ {
		if err := next.Append(entries[i]); err != nil {
			return err
		}
	}
	*c = *next
	return nil
}

// Clone returns a deep copy.
func (c *Chain) Clone() *Chain {
	n := &Chain{
		entries: append([]Entry(nil), c.entries...),
		hashes:  append([][32]byte(nil), c.hashes...),
		users:   append([]UserPublicKey(nil), c.users...),
		devices: make(map[[ed25519.PublicKeySize]byte]*DeviceInfo, len(c.devices)),
		order:   append([][ed25519.PublicKeySize]byte(nil), c.order...),
	}
	for k, d := range c.devices {
		dc := *d
		n.devices[k] = &dc
	}
	return n
}

// ID returns the hash of the first entry, which names the person for as
// long as the sigchain lives.
func (c *Chain) ID() [32]byte { return c.hashes[0] }

// Head returns the hash of the newest entry.
func (c *Chain) Head() [32]byte { return c.hashes[len(c.hashes)-1] }

// Len returns the number of entries.
func (c *Chain) Len() int { return len(c.entries) }

// Entries returns a copy of the entries, oldest first.
func (c *Chain) Entries() []Entry { return append([]Entry(nil), c.entries...) }

// UserKey returns the current user key.
func (c *Chain) UserKey() UserPublicKey { return c.users[len(c.users)-1] }

// UserKeyAt returns the user key of a generation.
func (c *Chain) UserKeyAt(generation uint32) (UserPublicKey, bool) {
	if generation == 0 || int(generation) > len(c.users) {
		return UserPublicKey{}, false
	}
	return c.users[generation-1], true
}

// Devices returns the active devices in the order they were added.
func (c *Chain) Devices() []DeviceInfo {
	var out []DeviceInfo
	for _, k := range c.order {
		if d := c.devices[k]; d.Revoked == 0 {
			out = append(out, *d)
		}
	}
	return out
}

// Device returns what the chain records about the device with Ed25519 key
// sign, active or revoked.
func (c *Chain) Device(sign [ed25519.PublicKeySize]byte) (DeviceInfo, bool) {
	d, ok := c.devices[sign]
	if !ok {
		return DeviceInfo{}, false
	}
	return *d, true
}

// check verifies e as the entry after the current head.
func (c *Chain) check(e *Entry) error {
	// 1. Position first, because a gap or a fork explains the failure
	// better than a bad signature on an entry that does not belong here.
	want := uint64(len(c.entries)) + 1
	if e.Seq > want {
		return fmt.Errorf("%w: entry %d comes after entry %d, so entries %d to %d are missing", ErrChainGap, e.Seq, want-1, want, e.Seq-1)
	}
	if e.Seq < want {
		return fmt.Errorf("%w: a second entry %d, but the sigchain already has entries up to %d", ErrChainFork, e.Seq, want-1)
	}
	var prev [32]byte
	if len(c.hashes) > 0 {
		prev = c.Head()
	}
	if e.Prev != prev {
		return fmt.Errorf("%w: entry %d names previous entry %x, but entry %d hashes to %x", ErrChainFork, e.Seq, e.Prev[:8], want-1, prev[:8])
	}

	// 2. Both signatures, before any rule reads the entry's claims.
	body := e.body()
	if !ed25519.Verify(e.Signer[:], withDomain(domainDeviceSig, body), e.Signature[:]) {
		return fmt.Errorf("%w: entry %d, device signature by %x", ErrChainSignature, e.Seq, e.Signer[:8])
	}
	if !ed25519.Verify(e.User.Sign[:], withDomain(domainUserSig, body), e.UserSignature[:]) {
		return fmt.Errorf("%w: entry %d, signature by the user key of generation %d", ErrChainSignature, e.Seq, e.User.Generation)
	}
	if e.Kind != EntryAdd && e.Kind != EntryRevoke {
		return fmt.Errorf("%w: entry %d has unknown kind %d", ErrChainInvalid, e.Seq, e.Kind)
	}
	if e.DeviceKind != DeviceOrdinary && e.DeviceKind != DeviceRecovery {
		return fmt.Errorf("%w: entry %d has unknown device kind %d", ErrChainInvalid, e.Seq, e.DeviceKind)
	}

	// 3. The rules of the entry's kind.
	if len(c.entries) == 0 {
		return checkFirst(e)
	}
	signer, ok := c.devices[e.Signer]
	if !ok {
		return fmt.Errorf("%w: entry %d is signed by device %x, which the sigchain never added", ErrChainInvalid, e.Seq, e.Signer[:8])
	}
	if signer.Revoked != 0 {
		return fmt.Errorf("%w: entry %d is signed by device %s, revoked in entry %d", ErrRevokedSigner, e.Seq, signer.Keys.Fingerprint(), signer.Revoked)
	}
	if e.Kind == EntryAdd {
		return c.checkAdd(e)
	}
	return c.checkRevoke(e)
}

func checkFirst(e *Entry) error {
	switch {
	case e.Kind != EntryAdd:
		return fmt.Errorf("%w: the first entry must add a device", ErrChainInvalid)
	case e.DeviceKind != DeviceOrdinary:
		return fmt.Errorf("%w: the first entry must add an ordinary device; add the recovery device after it", ErrChainInvalid)
	case e.Signer != e.Device.Sign:
		return fmt.Errorf("%w: the first entry must be signed by the device it adds", ErrChainInvalid)
	case e.User.Generation != 1:
		return fmt.Errorf("%w: the first entry has user key generation %d, want 1", ErrChainInvalid, e.User.Generation)
	}
	return nil
}

func (c *Chain) checkAdd(e *Entry) error {
	if d, ok := c.devices[e.Device.Sign]; ok {
		if d.Revoked != 0 {
			return fmt.Errorf("%w: entry %d adds device %s again, which entry %d revoked: a revoked device must make new keys", ErrChainInvalid, e.Seq, d.Keys.Fingerprint(), d.Revoked)
		}
		return fmt.Errorf("%w: entry %d adds device %s, which entry %d already added", ErrChainInvalid, e.Seq, d.Keys.Fingerprint(), d.Added)
	}
	if e.User != c.UserKey() {
		return fmt.Errorf("%w: entry %d adds a device but changes the user key: only a revoke rotates it", ErrChainInvalid, e.Seq)
	}
	return nil
}

func (c *Chain) checkRevoke(e *Entry) error {
	d, ok := c.devices[e.Device.Sign]
	switch {
	case !ok:
		return fmt.Errorf("%w: entry %d revokes device %x, which the sigchain never added", ErrChainInvalid, e.Seq, e.Device.Sign[:8])
	case d.Revoked != 0:
		return fmt.Errorf("%w: entry %d revokes device %s, which entry %d already revoked", ErrChainInvalid, e.Seq, d.Keys.Fingerprint(), d.Revoked)
	case d.Keys != e.Device || d.Kind != e.DeviceKind:
		return fmt.Errorf("%w: entry %d revokes device %s with keys or kind other than those it was added with", ErrChainInvalid, e.Seq, d.Keys.Fingerprint())
	case e.Signer == e.Device.Sign:
		// The device signing a revoke makes the next seed, so a device that
		// revoked itself would still hold the seed it was meant to lose.
		return fmt.Errorf("%w: entry %d has device %s revoke itself: revoke it from another device", ErrChainInvalid, e.Seq, d.Keys.Fingerprint())
	case e.User.Generation != c.UserKey().Generation+1:
		return fmt.Errorf("%w: entry %d revokes a device with user key generation %d, want %d: a revoke must rotate the user key", ErrChainInvalid, e.Seq, e.User.Generation, c.UserKey().Generation+1)
	}
	for _, u := range c.users {
		if u.Sign == e.User.Sign || u.Box == e.User.Box {
			return fmt.Errorf("%w: entry %d reuses the user key of generation %d", ErrChainInvalid, e.Seq, u.Generation)
		}
	}
	return nil
}

func (c *Chain) apply(e Entry) {
	c.entries = append(c.entries, e)
	c.hashes = append(c.hashes, e.Hash())
	if len(c.users) == 0 || e.User.Generation != c.UserKey().Generation {
		c.users = append(c.users, e.User)
	}
	switch e.Kind {
	case EntryAdd:
		c.devices[e.Device.Sign] = &DeviceInfo{Keys: e.Device, Kind: e.DeviceKind, Added: e.Seq}
		c.order = append(c.order, e.Device.Sign)
	case EntryRevoke:
		c.devices[e.Device.Sign].Revoked = e.Seq
	}
}

// checkCurrent checks that signer and key can sign the next entry.
func (c *Chain) checkCurrent(signer *Device, key *UserKey) error {
	if key.Public() != c.UserKey() {
		return fmt.Errorf("keyring: the user key of generation %d is not the sigchain's current generation %d: open the newest sealed seed first", key.Generation(), c.UserKey().Generation)
	}
	d, ok := c.devices[signer.public.Sign]
	if !ok || d.Revoked != 0 {
		return fmt.Errorf("keyring: device %s is not an active device of this sigchain, so it cannot sign entries", signer.public.Fingerprint())
	}
	return nil
}

// AddDevice appends an entry, signed by signer, that adds device, and seals
// the user key to it. Linking a new device goes through Link, which calls
// this; a recovery device is added with kind DeviceRecovery.
func (c *Chain) AddDevice(signer *Device, key *UserKey, device PublicKeys, kind DeviceKind) (*Update, error) {
	if err := c.checkCurrent(signer, key); err != nil {
		return nil, err
	}
	e := Entry{Kind: EntryAdd, DeviceKind: kind, Seq: uint64(len(c.entries)) + 1, Prev: c.Head(), Device: device, Signer: signer.public.Sign, User: key.Public()}
	e.sign(signer, key)
	if err := c.check(&e); err != nil {
		return nil, err
	}
	seed, err := key.SealTo(device)
	if err != nil {
		return nil, err
	}

	c.apply(e)
	return &Update{Entry: e, Seeds: []SealedSeed{seed}}, nil
}

// RevokeDevice appends an entry, signed by signer, that revokes the device
// lost, and rotates the user key. It returns a new user key of the next
// generation. The update seals it to every remaining device but not to lost,
// and carries the previous seed sealed under the new one, so history stays
// readable.
func (c *Chain) RevokeDevice(signer *Device, key *UserKey, lost PublicKeys) (*UserKey, *Update, error) {
	if err := c.checkCurrent(signer, key); err != nil {
		return nil, nil, err
	}
	d, ok := c.devices[lost.Sign]
	if !ok {
		return nil, nil, fmt.Errorf("keyring: device %s is not in this sigchain, so there is nothing to revoke", lost.Fingerprint())
	}

	next, err := NewUserKey(key.Generation() + 1)
	if err != nil {
		return nil, nil, err
	}
	e := Entry{Kind: EntryRevoke, DeviceKind: d.Kind, Seq: uint64(len(c.entries)) + 1, Prev: c.Head(), Device: lost, Signer: signer.public.Sign, User: next.Public()}
	e.sign(signer, next)
	if err := c.check(&e); err != nil {
		return nil, nil, err
	}

	u := &Update{Entry: e}
	for _, k := range c.order {
		dev := c.devices[k]
		if dev.Revoked != 0 || k == lost.Sign {
			continue
		}
		seed, err := next.SealTo(dev.Keys)
		if err != nil {
			return nil, nil, err
		}
		u.Seeds = append(u.Seeds, seed)
	}
	if u.Prior, err = next.SealPrior(key); err != nil {
		return nil, nil, err
	}

	c.apply(e)
	return next, u, nil
}
