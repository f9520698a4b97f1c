package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"interlude/client/keyring"
	"interlude/sync/envelope"
	"interlude/sync/membership"
	"interlude/sync/wire"
)

// Persons: the per-user key.
//
// A person's devices share a user key (package client/keyring): a random
// seed, sealed to each device, from which the signing and box keys derive
// that others address the person by. The list of those devices is a
// sigchain that the relay stores and every device verifies. Its id, the
// hash of its first entry, is the person's id (PersonID), which a person
// hands out in place of a device's public id.
//
// Someone who shares a document with a person fetches the chain and
// checks that it verifies and has that id. The sharer then offers the
// document to the person's inbox, whose slots derive from the current
// user key as a device's inbox derives from its keys. Any device of the person opens the
// offer and replies as the person, with its own key for the document, and
// the sharer adds that key. The person's other devices then join through
// their links, as for any document (see handoff.go).
//
// A device joins its person's chain when a device already on it links it:
// that device appends an entry adding it, seals the seed to it, and sends
// it the chain's id in a handoff item. Unlinking a device revokes it in
// the chain, which rotates the user key. The new seed is sealed to the
// devices that remain, so the lost device cannot open offers made to the
// person after the rotation, and a sharer whose offer waits offers again
// to the new key.

// Store keys of the person.
const (
	personIDKey    = "person/id"    // the id of this device's person
	personChainKey = "person/chain" // the person's sigchain as this device last verified it
	// the first entry and blobs of a chain this device started and has
	// not stored on the relay yet
	personNewKey         = "person/new"
	personKeyPrefix      = "person/key/"      // + person id + generation: the user key (secret)
	personRevokePrefix   = "person/revoke/"   // + device key: a device to revoke in the chain
	personNotifiedPrefix = "person/notified/" // + device key: the chain's id was sent to it
	knownPersonPrefix    = "person/known/"    // + person id: another person's chain as last verified
	// + person id: another person whose sigchain lists this device, such
	// as one it left for another (see alsoPersons)
	personAlsoPrefix   = "person/also/"
	personSharePrefix  = "person/share/"  // + person id + doc: a share with a person (see shareRecord)
	personReportPrefix = "person/report/" // + person id: the last sigchain of it from the relay that failed the checks
	// + device key: a person notice from a device that is not linked
	personRequestPrefix = "person/request/"
	// + person id + generation + relay host: next slot of the person's
	// inbox to read
	personInboxPrefix = "handoff/in/person/"
	// + person id + peer + kind + doc: an item to send as that person
	personQueuePrefix = "handoff/pq/"
)

// maxLinkRequests bounds the link requests a device keeps, so devices it
// did not link cannot fill its store and the list its person reads. A
// person links a few devices at a time, so real use stays far below it.
const maxLinkRequests = 64

// itemPerson notifies a device that the sender added it to its person's
// sigchain. Sign holds the chain's id, and Doc its first 16 bytes so the
// item has the layout of the others.
const itemPerson uint8 = 4

// PersonID names a person: the hash of the first entry of the person's
// sigchain.
type PersonID [32]byte

const personIDPrefix = "ilp1"

// String returns "ilp1" and the unpadded base64url encoding of the id.
func (p PersonID) String() string {
	return personIDPrefix + base64.RawURLEncoding.EncodeToString(p[:])
}

// ParsePersonID parses the text form that PersonID.String returns.
func ParsePersonID(s string) (PersonID, error) {
	var p PersonID
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), personIDPrefix)
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if !ok || err != nil || len(b) != len(p) {
		return p, fmt.Errorf("client: invalid person id %q: want %q followed by 43 base64url characters", s, personIDPrefix)
	}
	return PersonID(b), nil
}

// ErrRevokedDevice is returned for a share with a device that this
// device's person revoked.
var ErrRevokedDevice = errors.New("client: that device is revoked")

// checkNotRevoked returns ErrRevokedDevice for a device that this
// device's person, or one of alsoPersons, revoked: it is lost, and a
// sync would unlink it again at once (see unlinkRevoked).
func (c *Client) checkNotRevoked(ctx context.Context, dev PublicID) error {
	keys := [][]byte{[]byte(personChainKey)}
	others, err := c.alsoPersons(ctx)
	if err != nil {
		return err
	}
	for _, p := range others {
		keys = append(keys, peerKey(knownPersonPrefix, p[:]))
	}
	for _, key := range keys {
		chain, err := c.loadChain(ctx, key)
		if err != nil {
			return err
		}
		if chain == nil {
			continue
		}
		if info, ok := chain.Device([32]byte(dev.Sign)); ok && info.Revoked != 0 {
			return fmt.Errorf("%w: device %s was removed from your person as lost; to use it again, make a new identity for it", ErrRevokedDevice, dev.Fingerprint())
		}
	}
	return nil
}

// ErrNoPerson is returned by person operations on a device that belongs
// to no person yet: call Person, or link it from a device that does.
var ErrNoPerson = errors.New("client: this device belongs to no person yet")

// newChainRecord is a chain this device started and has not stored on
// the relay yet.
type newChainRecord struct {
	_msgpack struct{} `msgpack:",as_array"`
	Entry    []byte
	Blobs    [][]byte
}

// shareRecord is a share of a document with a person. Generation and
// Sign name the user key the last offer went to, and are zero before
// the first offer.
type shareRecord struct {
	_msgpack   struct{} `msgpack:",as_array"`
	Role       uint8
	Generation uint32
	Sign       []byte
}

// Blobs stored beside a sigchain start with their kind.
const (
	blobSeed  byte = 1 // generation, device key, seed sealed to the device
	blobPrior byte = 2 // generation, the seed before it sealed under it
)

func seedBlob(s keyring.SealedSeed) []byte {
	b := binary.BigEndian.AppendUint32([]byte{blobSeed}, s.Generation)
	b = append(b, s.Device[:]...)
	return append(b, s.Sealed...)
}

func priorBlob(generation uint32, sealed []byte) []byte {
	b := binary.BigEndian.AppendUint32([]byte{blobPrior}, generation)
	return append(b, sealed...)
}

func updateBlobs(u *keyring.Update, generation uint32) [][]byte {
	var out [][]byte
	for _, s := range u.Seeds {
		out = append(out, seedBlob(s))
	}
	if u.Prior != nil {
		out = append(out, priorBlob(generation, u.Prior))
	}
	return out
}

// keyringDevice returns the device's keys in the form package keyring
// takes. They are the same key pairs, so the sigchain names the device
// by its public id.
func (id *Identity) keyringDevice() (*keyring.Device, error) {
	seed := id.signing.Seed()
	defer clear(seed)
	return keyring.DeviceFromSeeds(seed, id.boxKey)
}

// personIdentity returns the user key as an Identity, to open and sign
// the person's inbox messages.
func personIdentity(k *keyring.UserKey) (*Identity, error) {
	seed, box := k.PrivateKeys()
	defer clear(seed)
	return newIdentity(seed, box)
}

func userPublicID(u keyring.UserPublicKey) PublicID {
	return PublicID{Sign: bytes.Clone(u.Sign[:]), Box: u.Box}
}

// personKey returns the store key under prefix of person p's generation.
func personKey(prefix string, p PersonID, generation uint32) []byte {
	return binary.BigEndian.AppendUint32(peerKey(prefix, p[:]), generation)
}

// Person returns the id of this device's person. A device that belongs
// to no person starts one: a sigchain that lists this device and, from
// the next sync, every device linked to it. The relay stores the chain on
// the next sync, and people can share with the id from then on.
func (c *Client) Person(ctx context.Context) (PersonID, error) {
	c.personMu.Lock()
	defer c.personMu.Unlock()
	id, ok, err := c.personID(ctx)
	if err != nil || ok {
		return id, err
	}

	dev, err := c.id.keyringDevice()
	if err != nil {
		return id, err
	}
	chain, key, upd, err := keyring.NewChain(dev)
	if err != nil {
		return id, err
	}
	entry, _ := upd.Entry.MarshalBinary()
	rec, err := msgpack.Marshal(&newChainRecord{Entry: entry, Blobs: updateBlobs(upd, 1)})
	if err != nil {
		return id, fmt.Errorf("client: encode new sigchain: %w", err)
	}

	chainBytes, _ := chain.MarshalBinary()
	keyBytes, _ := key.MarshalBinary()
	id = chain.ID()
	var b Batch
	b.Put([]byte(personIDKey), id[:])
	b.Put([]byte(personChainKey), chainBytes)
	b.Put(personKey(personKeyPrefix, id, 1), keyBytes)
	b.Put([]byte(personNewKey), rec)
	if err := c.store.Write(ctx, &b); err != nil {
		return id, fmt.Errorf("client: save new person: %w", err)
	}
	c.log.Info("person started", "person", id.String()[:12])
	c.signalWake()
	return id, nil
}

// personID returns this device's person's id, if it has one.
func (c *Client) personID(ctx context.Context) (PersonID, bool, error) {
	v, err := c.store.Get(ctx, []byte(personIDKey))
	switch {
	case errors.Is(err, ErrNotFound):
		return PersonID{}, false, nil
	case err != nil:
		return PersonID{}, false, fmt.Errorf("client: read person id: %w", err)
	case len(v) != 32:
		return PersonID{}, false, fmt.Errorf("client: stored person id of %d bytes, want 32", len(v))
	}
	return PersonID(v), true, nil
}

// PersonOf returns this device's person's id, and false for a device that
// belongs to none, without starting one.
func (c *Client) PersonOf(ctx context.Context) (PersonID, bool, error) { return c.personID(ctx) }

// PersonDevice is one device of this device's person, as the verified
// sigchain lists it.
type PersonDevice struct {
	PublicID
	Recovery bool
	// Revoked is set for a device that another one revoked.
	Revoked bool
}

// PersonDevices returns the devices of this device's person as this
// device last verified the sigchain, with the generation of the user key
// in force. It returns ErrNoPerson before the device has fetched a chain.
func (c *Client) PersonDevices(ctx context.Context) ([]PersonDevice, uint32, error) {
	chain, err := c.loadChain(ctx, []byte(personChainKey))
	if err != nil {
		return nil, 0, err
	}
	if chain == nil {
		return nil, 0, ErrNoPerson
	}
	var out []PersonDevice
	for _, e := range chain.Entries() {
		if e.Kind != keyring.EntryAdd {
			continue
		}
		info, _ := chain.Device(e.Device.Sign)
		out = append(out, PersonDevice{
			PublicID: PublicID{Sign: bytes.Clone(e.Device.Sign[:]), Box: e.Device.Box},
			Recovery: info.Kind == keyring.DeviceRecovery,
			Revoked:  info.Revoked != 0,
		})
	}
	return out, chain.UserKey().Generation, nil
}

// loadChain reads and verifies a stored sigchain, or returns nil.
func (c *Client) loadChain(ctx context.Context, key []byte) (*keyring.Chain, error) {
	v, err := c.store.Get(ctx, key)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("client: read sigchain: %w", err)
	}
	chain, err := keyring.ParseChain(v)
	if err != nil {
		return nil, fmt.Errorf("client: stored sigchain: %w", err)
	}
	return chain, nil
}

// userKey returns the stored user key of a generation of p, or nil.
func (c *Client) userKey(ctx context.Context, p PersonID, generation uint32) (*keyring.UserKey, error) {
	v, err := c.store.Get(ctx, personKey(personKeyPrefix, p, generation))
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("client: read user key of generation %d: %w", generation, err)
	}
	k, err := keyring.UnmarshalUserKey(v)
	if err != nil {
		return nil, fmt.Errorf("client: stored user key of generation %d: %w", generation, err)
	}
	return k, nil
}

// ShareWithPerson shares doc with the person with id p, with role. On
// the next sync this device fetches the person's sigchain from the relay
// and offers doc to the person's current user key. Any of the person's
// devices replies, and the sync after that adds its key. An offer that
// waits when the person's key rotates is made again to the new key.
func (c *Client) ShareWithPerson(ctx context.Context, doc envelope.DocID, p PersonID, role membership.Role) error {
	if err := checkMemberRole(role); err != nil {
		return err
	}
	if own, ok, err := c.personID(ctx); err != nil {
		return err
	} else if ok && own == p {
		return fmt.Errorf("client: %s is this device's own person: link your other devices instead of sharing with them", p)
	}

	// A sync's offerToPersons rewrites the record while it holds
	// personMu, so this waits for it instead of losing the change.
	c.personMu.Lock()
	defer c.personMu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.adminDocLocked(doc); err != nil {
		return err
	}

	// A share made again keeps the user key its last offer went to, so
	// that offer is withdrawn once the person's key has rotated, and
	// offers again at once.
	shareKey := peerKey(personSharePrefix, p[:], doc[:])
	var prev shareRecord
	if v, err := c.store.Get(ctx, shareKey); err == nil {
		if err := msgpack.Unmarshal(v, &prev); err != nil {
			return fmt.Errorf("client: decode share with a person: %w", err)
		}
	} else if !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("client: read share of document %s: %w", doc, err)
	}

	rec, err := msgpack.Marshal(&shareRecord{Role: uint8(role), Sign: prev.Sign})
	if err != nil {
		return fmt.Errorf("client: encode share: %w", err)
	}
	var b Batch
	b.Put(shareKey, rec)
	if err := c.store.Write(ctx, &b); err != nil {
		return fmt.Errorf("client: save share of document %s: %w", doc, err)
	}
	c.log.Info("document shared with a person", "doc", doc, "person", p.String()[:12], "role", role)
	c.signalWake()
	return nil
}

// PersonShare is a share of a document with a person whose reply has
// not been taken yet.
type PersonShare struct {
	Person PersonID
	Role   membership.Role
	// Offered is set once this device has fetched the person's sigchain
	// and offered the document to the person's user key. Until then the
	// relay has no sigchain with this id: the id is wrong, or no device of
	// the person has synced since it was made.
	Offered bool
	sign    []byte // the user key offered to
}

// PersonShares returns the shares of doc with persons that wait for a
// reply.
func (c *Client) PersonShares(ctx context.Context, doc envelope.DocID) ([]PersonShare, error) {
	var out []PersonShare
	err := c.store.Scan(ctx, []byte(personSharePrefix), func(k, v []byte) error {
		rest := k[len(personSharePrefix):]
		if len(rest) != 32+16 || envelope.DocID(rest[32:]) != doc {
			return nil
		}
		var rec shareRecord
		if err := msgpack.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("client: decode share with a person: %w", err)
		}
		out = append(out, PersonShare{Person: PersonID(rest[:32]), Role: membership.Role(rec.Role), Offered: rec.Generation != 0, sign: rec.Sign})
		return nil
	})
	return out, err
}

// revokeIntent is a device this device removed as lost, to revoke in
// each sigchain this device can sign in. Marks name the length of each
// such chain at the first fetch after the removal (see markProvisional).
// A device that a chain added after that is a new addition, and stays.
type revokeIntent struct {
	_msgpack struct{} `msgpack:",as_array"`
	Marks    []chainMark
}

type chainMark struct {
	_msgpack struct{} `msgpack:",as_array"`
	Person   []byte
	Len      uint64
}

// revokeLater adds to b the record that dev is to be revoked, on the
// next sync, in this device's person's sigchain and in those of
// alsoPersons. A revocation rotates that person's user key. The record
// stays, so a relay that loses the revocation gets it again, until dev
// is linked again.
func (c *Client) revokeLater(ctx context.Context, b *Batch, dev []byte) error {
	var intent revokeIntent
	mark := func(p PersonID, key []byte) error {
		chain, err := c.loadChain(ctx, key)
		if err != nil {
			return err
		}
		n := 0
		if chain != nil {
			n = chain.Len()
		}
		// This copy may lag the relay's, or not be fetched yet: the mark
		// stays provisional until the next sync fetches the chain (see
		// revocations).
		intent.Marks = append(intent.Marks, chainMark{Person: bytes.Clone(p[:]), Len: uint64(n) | markProvisional})
		return nil
	}
	if own, ok, err := c.personID(ctx); err != nil {
		return err
	} else if ok {
		if err := mark(own, []byte(personChainKey)); err != nil {
			return err
		}
	}
	others, err := c.alsoPersons(ctx)
	if err != nil {
		return err
	}
	for _, p := range others {
		if err := mark(p, peerKey(knownPersonPrefix, p[:])); err != nil {
			return err
		}
	}
	v, err := msgpack.Marshal(&intent)
	if err != nil {
		return fmt.Errorf("client: encode revocation: %w", err)
	}
	b.Put(peerKey(personRevokePrefix, dev), v)
	return nil
}

// markProvisional flags a chainMark taken from this device's copy of the
// chain, which may lag the relay's: a device the relay's chain added
// before the removal must be revoked too. The first fetch after the
// removal replaces the mark with the length it fetched.
const markProvisional = uint64(1) << 63

// revocations returns the devices to revoke in person p's chain, as just
// fetched: those this device removed as lost whose mark for p covers
// their addition. It makes provisional marks for p final.
func (c *Client) revocations(ctx context.Context, p PersonID, chain *keyring.Chain) ([]keyring.DeviceInfo, error) {
	var out []keyring.DeviceInfo
	var b Batch
	// Under c.mu, which link and unlinkLocked hold while they change the
	// records, so a mark made final does not bring back one deleted.
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.store.Scan(ctx, []byte(personRevokePrefix), func(k, v []byte) error {
		var intent revokeIntent
		if err := msgpack.Unmarshal(v, &intent); err != nil {
			// The first records of this version held one byte and no
			// marks: they revoke nothing.
			return nil
		}
		final := false
		for i, m := range intent.Marks {
			if bytes.Equal(m.Person, p[:]) && m.Len&markProvisional != 0 {
				intent.Marks[i].Len = uint64(chain.Len())
				final = true
			}
		}
		if final {
			raw, err := msgpack.Marshal(&intent)
			if err != nil {
				return fmt.Errorf("client: encode revocation: %w", err)
			}
			b.Put(bytes.Clone(k), raw)
		}
		info, ok := chain.Device([32]byte(k[len(personRevokePrefix):]))
		if !ok || info.Revoked != 0 || bytes.Equal(info.Keys.Sign[:], c.id.public.Sign) {
			return nil
		}
		for _, m := range intent.Marks {
			if bytes.Equal(m.Person, p[:]) && info.Added <= m.Len {
				out = append(out, info)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("client: read devices to revoke: %w", err)
	}
	if len(b.Ops) == 0 {
		return out, nil
	}
	if err := c.store.Write(ctx, &b); err != nil {
		return nil, fmt.Errorf("client: save revocation marks: %w", err)
	}
	return out, nil
}

// alsoPersons returns the persons other than this device's own whose
// sigchain lists it: one it left for another, or one a linked device
// added it to while it belonged to another. This device still revokes
// the devices it removes as lost there, and replies to shares with them,
// since it holds their user keys and so do the lost devices.
func (c *Client) alsoPersons(ctx context.Context) ([]PersonID, error) {
	var out []PersonID
	err := c.store.Scan(ctx, []byte(personAlsoPrefix), func(k, _ []byte) error {
		if rest := k[len(personAlsoPrefix):]; len(rest) == 32 {
			out = append(out, PersonID(rest))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("client: read other persons of this device: %w", err)
	}
	return out, nil
}

// fetchChain fetches the sigchain with id p from the relay and verifies
// it against the copy stored under key, if any: the relay's copy must
// extend it. It saves and returns the result. A chain that fails the
// checks is recorded as a Report (see SigchainReports), and the copy
// this device holds stays as it is.
func (s *session) fetchChain(ctx context.Context, p PersonID, key []byte) (*keyring.Chain, [][]byte, error) {
	reply, err := s.call(ctx, &wire.GetChain{ID: p[:]})
	if err != nil {
		return nil, nil, fmt.Errorf("client: fetch sigchain of %s: %w", p.String()[:12], err)
	}
	got, ok := reply.(*wire.Chain)
	if !ok {
		return nil, nil, fmt.Errorf("client: relay responded to GetChain with message type %d, want Chain", reply.Type())
	}

	stored, err := s.c.loadChain(ctx, key)
	if err != nil {
		return nil, nil, err
	}
	before := 0
	if stored != nil {
		before = stored.Len()
	}

	chain, err := verifyFetched(p, stored, got.Entries)
	reportKey := peerKey(personReportPrefix, p[:])
	var b Batch
	if err != nil {
		rep, _ := msgpack.Marshal(&Report{Kind: ReportSigchain, Author: p.String()[:12], Time: time.Now(), Detail: err.Error()})
		b.Put(reportKey, rep)
		if werr := s.c.store.Write(ctx, &b); werr != nil {
			return nil, nil, fmt.Errorf("client: save sigchain report: %w", werr)
		}
		return nil, nil, err
	}

	if had, err := s.c.exists(ctx, reportKey); err != nil {
		return nil, nil, fmt.Errorf("client: read sigchain report: %w", err)
	} else if had {
		b.Del(reportKey)
	}
	if chain != nil && chain.Len() > before {
		raw, _ := chain.MarshalBinary()
		b.Put(key, raw)
	}
	if err := s.c.store.Write(ctx, &b); err != nil {
		return nil, nil, fmt.Errorf("client: save sigchain: %w", err)
	}
	return chain, got.Blobs, nil
}

// verifyFetched verifies the entries of p's sigchain that the relay
// served, against stored, the copy this device verified before, if any.
// It returns nil for a chain the relay does not have and this device
// never saw.
func verifyFetched(p PersonID, stored *keyring.Chain, raw [][]byte) (*keyring.Chain, error) {
	entries := make([]keyring.Entry, 0, len(raw))
	for i, r := range raw {
		e, err := keyring.UnmarshalEntry(r)
		if err != nil {
			return nil, fmt.Errorf("client: sigchain of %s from the relay, entry %d: %w", p.String()[:12], i+1, err)
		}
		entries = append(entries, e)
	}
	switch {
	case stored != nil:
		if err := stored.Extend(entries); err != nil {
			return nil, fmt.Errorf("client: sigchain of %s from the relay: %w", p.String()[:12], err)
		}
		return stored, nil
	case len(entries) == 0:
		return nil, nil
	}
	// NOTE: with no copy verified before, a relay that withholds the
	// newest entries goes unnoticed here, and a share then goes to an
	// older user key, which a revoked device may hold.
	chain, err := keyring.VerifyChain(entries)
	if err != nil {
		return nil, fmt.Errorf("client: sigchain of %s from the relay: %w", p.String()[:12], err)
	}
	if id := chain.ID(); id != p {
		return nil, fmt.Errorf("client: the relay served a sigchain with id %x for person %s", id[:8], p.String()[:12])
	}
	return chain, nil
}

// SigchainReports returns a Report for each person whose sigchain, as
// the relay served it last, failed the checks: this device's own person
// or one it shares with. A report stays until the relay serves a chain
// that passes. Until then this device keeps the copy it verified before,
// and shares with that person wait.
func (c *Client) SigchainReports(ctx context.Context) ([]Report, error) {
	var out []Report
	err := c.store.Scan(ctx, []byte(personReportPrefix), func(_, v []byte) error {
		var r Report
		if err := msgpack.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("client: decode sigchain report: %w", err)
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

// putChain stores entries and blobs on the relay after the first from
// entries of chain p. writers are the devices that may append next. It
// returns errChainMoved when another device appended first.
func (s *session) putChain(ctx context.Context, p PersonID, from uint64, entries, blobs [][]byte, writers [][]byte) error {
	reply, err := s.call(ctx, &wire.PutChain{ID: p[:], From: from, Entries: entries, Blobs: blobs, Writers: writers})
	var werr *wire.Error
	switch {
	case errors.As(err, &werr) && werr.Code == wire.CodeStaleLog:
		return fmt.Errorf("%w: %s", errChainMoved, werr.Message)
	case err != nil:
		return fmt.Errorf("client: store sigchain of %s: %w", p.String()[:12], err)
	}
	if _, ok := reply.(*wire.OK); !ok {
		return fmt.Errorf("client: relay responded to PutChain with message type %d, want OK", reply.Type())
	}
	return nil
}

// errChainMoved is returned by putChain when the relay's chain grew since
// this device fetched it. The next pass fetches it and tries again.
var errChainMoved = errors.New("client: the sigchain on the relay changed")

func writers(chain *keyring.Chain) [][]byte {
	var out [][]byte
	for _, d := range chain.Devices() {
		out = append(out, bytes.Clone(d.Keys.Sign[:]))
	}
	return out
}

// syncPerson brings this device's person up to date with the relay, and
// then offers documents shared with other persons. Problems with the
// sigchain are logged, not returned, so they do not stop the session's
// other work.
func (s *session) syncPerson(ctx context.Context) error {
	s.c.personMu.Lock()
	defer s.c.personMu.Unlock()
	logged := func(err error) error {
		if err == nil || ctx.Err() != nil || errors.Is(err, ErrClosed) {
			return err
		}
		s.c.log.Error("person not synced", "err", err)
		if errors.Is(err, errChainMoved) {
			s.c.signalWake()
		}
		return nil
	}
	if err := logged(s.syncOwnPerson(ctx)); err != nil {
		return err
	}
	others, err := s.c.alsoPersons(ctx)
	if err != nil {
		return err
	}
	for _, p := range others {
		if err := logged(s.syncOtherPerson(ctx, p)); err != nil {
			return err
		}
	}
	return s.offerToPersons(ctx)
}

// syncOtherPerson revokes, in the chain of p, one of alsoPersons, the
// devices this device removed as lost, and replies to the shares in p's
// inbox.
func (s *session) syncOtherPerson(ctx context.Context, p PersonID) error {
	chain, blobs, err := s.fetchChain(ctx, p, peerKey(knownPersonPrefix, p[:]))
	if err != nil || chain == nil {
		return err
	}
	if info, ok := chain.Device([32]byte(s.c.id.public.Sign)); !ok || info.Revoked != 0 || s.c.id.recovery {
		return nil
	}
	key, err := s.openUserKey(ctx, p, chain, blobs)
	if err != nil || key == nil {
		return err
	}
	if _, key, err = s.revokeIn(ctx, p, chain, key, peerKey(knownPersonPrefix, p[:])); err != nil {
		return err
	}
	return s.readPersonInbox(ctx, p, key)
}

func (s *session) syncOwnPerson(ctx context.Context) error {
	c := s.c
	p, ok, err := c.personID(ctx)
	if err != nil || !ok {
		return err
	}
	if err := s.publishNewChain(ctx, p); err != nil {
		return err
	}

	chain, blobs, err := s.fetchChain(ctx, p, []byte(personChainKey))
	if err != nil {
		return err
	}
	if chain == nil {
		// The relay has no chain yet, because the device that sent the
		// person id has not stored it yet.
		return nil
	}

	self := [32]byte(c.id.public.Sign)
	info, listed := chain.Device(self)
	if !listed || info.Revoked != 0 {
		c.log.Warn("this device is not an active device of its person's sigchain", "person", p.String()[:12], "listed", listed)
		return nil
	}
	if c.id.recovery != (info.Kind == keyring.DeviceRecovery) {
		return fmt.Errorf("client: the sigchain of %s lists this device with the wrong kind", p.String()[:12])
	}
	if err := c.unlinkRevoked(ctx, chain); err != nil {
		return err
	}

	key, err := s.openUserKey(ctx, p, chain, blobs)
	if err != nil || key == nil {
		return err
	}
	if chain, key, err = s.revokeIn(ctx, p, chain, key, []byte(personChainKey)); err != nil {
		return err
	}
	if chain, err = s.addLinked(ctx, p, chain, key); err != nil {
		return err
	}

	if err := c.notifyDevices(ctx, p, chain); err != nil {
		return err
	}
	if c.id.recovery {
		// A recovery client hands the documents over and stops, so it
		// does not reply to shares as the person.
		return nil
	}
	return s.readPersonInbox(ctx, p, key)
}

// unlinkRevoked unlinks here each linked device that another device
// revoked in the person's sigchain, so this device stops offering it
// documents and removes it from the documents where its keys are
// recorded here.
func (c *Client) unlinkRevoked(ctx context.Context, chain *keyring.Chain) error {
	linked, err := c.LinkedDevices(ctx)
	if err != nil {
		return err
	}
	for _, l := range linked {
		if info, ok := chain.Device([32]byte(l.Sign)); !ok || info.Revoked == 0 {
			continue
		}
		n, err := c.UnlinkDevice(ctx, ed25519.PublicKey(l.Sign))
		if unsure, ok := errors.AsType[*UnlinkUnsureError](err); ok {
			c.log.Warn("device revoked in the sigchain unlinked here, some documents to check", "device", l.Fingerprint(), "documents", len(unsure.Docs))
		} else if err != nil {
			return err
		}
		c.log.Info("device revoked in the sigchain unlinked here", "device", l.Fingerprint(), "documents", n)
	}
	return nil
}

// publishNewChain stores on the relay the chain this device started, if
// it has not yet.
func (s *session) publishNewChain(ctx context.Context, p PersonID) error {
	v, err := s.c.store.Get(ctx, []byte(personNewKey))
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("client: read new sigchain: %w", err)
	}

	var rec newChainRecord
	if err := msgpack.Unmarshal(v, &rec); err != nil {
		return fmt.Errorf("client: decode new sigchain: %w", err)
	}

	err = s.putChain(ctx, p, 0, [][]byte{rec.Entry}, rec.Blobs, [][]byte{bytes.Clone(s.c.id.public.Sign)})
	if errors.Is(err, errChainMoved) {
		// Stored before, and the record outlived a crash, if the relay's
		// first entry is this one.
		reply, ferr := s.call(ctx, &wire.GetChain{ID: p[:]})
		if ferr != nil {
			return fmt.Errorf("client: fetch sigchain of %s: %w", p.String()[:12], ferr)
		}
		if got, ok := reply.(*wire.Chain); ok && len(got.Entries) > 0 && bytes.Equal(got.Entries[0], rec.Entry) {
			err = nil
		}
	}
	if err != nil {
		return err
	}

	var b Batch
	b.Del([]byte(personNewKey))
	if err := s.c.store.Write(ctx, &b); err != nil {
		return fmt.Errorf("client: save stored sigchain: %w", err)
	}
	s.c.log.Info("person stored on the relay", "person", p.String()[:12])
	return nil
}

// openUserKey returns the current user key, opening it from the blobs
// if this device does not hold it yet.
func (s *session) openUserKey(ctx context.Context, p PersonID, chain *keyring.Chain, blobs [][]byte) (*keyring.UserKey, error) {
	want := chain.UserKey()
	key, err := s.c.userKey(ctx, p, want.Generation)
	if err != nil || key != nil {
		return key, err
	}
	dev, err := s.c.id.keyringDevice()
	if err != nil {
		return nil, err
	}
	for _, blob := range blobs {
		if len(blob) < 1+4+32 || blob[0] != blobSeed || binary.BigEndian.Uint32(blob[1:5]) != want.Generation || !bytes.Equal(blob[5:37], s.c.id.public.Sign) {
			continue
		}
		sealed := keyring.SealedSeed{Generation: want.Generation, Device: [32]byte(blob[5:37]), Sealed: blob[37:]}
		key, err := dev.OpenSeed(sealed, want)
		if err != nil {
			s.c.log.Warn("sealed seed skipped", "generation", want.Generation, "err", err)
			continue
		}
		raw, _ := key.MarshalBinary()
		var b Batch
		b.Put(personKey(personKeyPrefix, p, want.Generation), raw)
		if err := s.c.store.Write(ctx, &b); err != nil {
			return nil, fmt.Errorf("client: save user key: %w", err)
		}
		s.c.log.Info("user key opened", "generation", want.Generation)
		return key, nil
	}
	s.c.log.Warn("no seed of the current user key is sealed to this device yet", "generation", want.Generation)
	return nil, nil
}

// revokeIn revokes in p's chain, stored under chainKey, the devices
// this device removed as lost (see revocations), one relay append each.
func (s *session) revokeIn(ctx context.Context, p PersonID, chain *keyring.Chain, key *keyring.UserKey, chainKey []byte) (*keyring.Chain, *keyring.UserKey, error) {
	c := s.c
	dev, err := c.id.keyringDevice()
	if err != nil {
		return chain, key, err
	}
	lost, err := c.revocations(ctx, p, chain)
	if err != nil {
		return chain, key, err
	}
	for _, info := range lost {
		next := chain.Clone()
		newKey, upd, err := next.RevokeDevice(dev, key, info.Keys)
		if err != nil {
			return chain, key, err
		}
		// The new seed is sealed to this device too, so a crash before
		// the key is saved loses nothing: the next sync opens it.
		keyRaw, _ := newKey.MarshalBinary()
		var b Batch
		b.Put(personKey(personKeyPrefix, p, newKey.Generation()), keyRaw)
		if err := s.appendChain(ctx, p, chain, next, upd, newKey.Generation(), chainKey, &b); err != nil {
			return chain, key, err
		}
		chain, key = next, newKey
		c.log.Info("device revoked in a sigchain, user key rotated", "person", p.String()[:12], "device", info.Keys.Fingerprint(), "generation", newKey.Generation())
	}
	return chain, key, nil
}

// appendChain stores on the relay the entry and sealed seeds of upd,
// which made next from chain, the chain of p, and then saves next under
// chainKey in one write with b. generation is the user key's after upd.
func (s *session) appendChain(ctx context.Context, p PersonID, chain, next *keyring.Chain, upd *keyring.Update, generation uint32, chainKey []byte, b *Batch) error {
	entry, _ := upd.Entry.MarshalBinary()
	if err := s.putChain(ctx, p, uint64(chain.Len()), [][]byte{entry}, updateBlobs(upd, generation), writers(next)); err != nil {
		return err
	}
	raw, _ := next.MarshalBinary()
	b.Put(chainKey, raw)
	if err := s.c.store.Write(ctx, b); err != nil {
		return fmt.Errorf("client: save sigchain of %s: %w", p.String()[:12], err)
	}
	return nil
}

// addLinked adds to this device's person's chain the devices linked here
// that it does not list, one relay append each.
func (s *session) addLinked(ctx context.Context, p PersonID, chain *keyring.Chain, key *keyring.UserKey) (*keyring.Chain, error) {
	c := s.c
	dev, err := c.id.keyringDevice()
	if err != nil {
		return chain, err
	}
	linked, err := c.LinkedDevices(ctx)
	if err != nil {
		return chain, err
	}
	for _, l := range linked {
		if _, listed := chain.Device([32]byte(l.Sign)); listed {
			// A device the chain revoked stays revoked: it must make new
			// keys to join again.
			continue
		}
		kind := keyring.DeviceOrdinary
		if l.Recovery {
			kind = keyring.DeviceRecovery
		}
		next := chain.Clone()
		upd, err := next.AddDevice(dev, key, keyring.PublicKeys{Sign: [32]byte(l.Sign), Box: l.Box}, kind)
		if err != nil {
			return chain, err
		}
		if err := s.appendChain(ctx, p, chain, next, upd, key.Generation(), []byte(personChainKey), &Batch{}); err != nil {
			return chain, err
		}
		chain = next
		c.log.Info("device added to the person's sigchain", "device", l.Fingerprint(), "recovery", l.Recovery)
	}
	return chain, nil
}

// notifyDevices sends the chain's id to each active device of the chain
// that this device linked and has not notified yet.
func (c *Client) notifyDevices(ctx context.Context, p PersonID, chain *keyring.Chain) error {
	linked, err := c.LinkedDevices(ctx)
	if err != nil {
		return err
	}
	var b Batch
	for _, l := range linked {
		info, ok := chain.Device([32]byte(l.Sign))
		if !ok || info.Revoked != 0 || info.Keys.Box != l.Box {
			continue
		}
		notified, err := c.exists(ctx, peerKey(personNotifiedPrefix, l.Sign))
		if err != nil || notified {
			if err != nil {
				return fmt.Errorf("client: read notified devices: %w", err)
			}
			continue
		}
		notice := handoffItem{Kind: itemPerson, Doc: bytes.Clone(p[:16]), Sign: bytes.Clone(p[:]), Box: make([]byte, 32)}
		if l.root != nil {
			notice.Box = personNoticeMAC(l.root, p)
		}
		if err := queueItem(&b, l.PublicID, notice); err != nil {
			return err
		}
		b.Put(peerKey(personNotifiedPrefix, l.Sign), []byte{1})
	}
	if err := c.store.Write(ctx, &b); err != nil {
		return fmt.Errorf("client: save person notices: %w", err)
	}
	return nil
}

// personNoticeMAC returns the MAC that a person notice to a recovery
// device carries, under the root of the recovery device's document keys.
// Only a device that linked the phrase holds the root, besides the phrase
// itself. So a recovery client, which has no linked devices, can tell
// that the notice comes from one of its person's devices.
func personNoticeMAC(root []byte, p PersonID) []byte {
	m := hmac.New(sha256.New, root)
	m.Write([]byte(personNoticeDomain))
	m.Write(p[:])
	return m.Sum(nil)
}

const personNoticeDomain = "interlude/client/v1 person notice to a recovery device\x00"

// takePerson acts on an itemPerson: a device added this one to its
// person. From a linked device, or for a recovery client, this device
// joins that person, unless it belongs to one already. From another
// device it keeps the notice as a link request (see LinkRequests), since
// a stranger with this device's public id could add it to a person
// of its own, whose id the device's owner would then hand out. The next
// sync fetches the chain and checks that it lists this device.
func (c *Client) takePerson(ctx context.Context, sender PublicID, linked bool, p PersonID, mac []byte) error {
	if c.id.recovery && !linked {
		root, err := c.id.recoveryRootOf()
		if err != nil {
			return err
		}
		// A stranger who read the recovery device's public keys in a
		// sigchain could add it to a person of its own.
		linked = hmac.Equal(mac, personNoticeMAC(root, p))
		if !linked {
			c.log.Warn("person notice to the recovery device without a valid MAC, kept as a request", "from", sender.Fingerprint())
		}
	}
	if !linked {
		requests, err := c.LinkRequests(ctx)
		if err != nil {
			return err
		}
		if len(requests) >= maxLinkRequests {
			c.log.Warn("link request skipped: too many are waiting", "from", sender.Fingerprint(), "waiting", len(requests))
			return nil
		}
		c.log.Info("link request from a device that is not linked, waiting for the person to link it", "from", sender.Fingerprint())
		return c.saveLinkRequest(ctx, &Batch{}, sender, p)
	}
	c.personMu.Lock()
	defer c.personMu.Unlock()
	return c.joinPersonLocked(ctx, sender, p, false)
}

// saveLinkRequest keeps a person notice from sender as a link request,
// in one write with b, and notifies the listeners so an app shows it.
func (c *Client) saveLinkRequest(ctx context.Context, b *Batch, sender PublicID, p PersonID) error {
	rec, err := msgpack.Marshal(&linkRequestRecord{Box: sender.Box[:], Person: p[:]})
	if err != nil {
		return fmt.Errorf("client: encode link request: %w", err)
	}
	b.Put(peerKey(personRequestPrefix, sender.Sign), rec)
	if err := c.store.Write(ctx, b); err != nil {
		return fmt.Errorf("client: save link request: %w", err)
	}
	c.mu.Lock()
	c.notifyAllLocked()
	c.mu.Unlock()
	return nil
}

// joinPersonLocked makes p this device's person. A device that belongs
// to another person leaves it (see leavePersonLocked) if move is set, or
// if that person lists this device alone, as one started by showing the
// person id before a recovery or a link. Otherwise it keeps its person,
// the notice stays as a request (see JoinPerson), and p becomes one of
// alsoPersons, since its chain lists this device. c.personMu is held.
func (c *Client) joinPersonLocked(ctx context.Context, sender PublicID, p PersonID, move bool) error {
	own, ok, err := c.personID(ctx)
	if err != nil || (ok && own == p) {
		return err
	}

	var b Batch
	if ok {
		chain, err := c.loadChain(ctx, []byte(personChainKey))
		if err != nil {
			return err
		}
		if alone := chain != nil && chain.Len() == 1; !move && !alone {
			c.log.Warn("person notice kept as a request: this device belongs to another person", "from", sender.Fingerprint())
			b.Put(peerKey(personAlsoPrefix, p[:]), []byte{1})
			return c.saveLinkRequest(ctx, &b, sender, p)
		}
		if err := c.leavePersonLocked(ctx, &b, own); err != nil {
			return err
		}
		c.log.Info("device leaves its person for another", "left", own.String()[:12], "person", p.String()[:12])
	}

	b.Put([]byte(personIDKey), p[:])
	b.Del(peerKey(personRequestPrefix, sender.Sign))
	b.Del(peerKey(personAlsoPrefix, p[:]))
	// A copy of p's chain verified before, as one of alsoPersons, is the
	// start: the relay cannot then serve an older one unnoticed.
	if known, err := c.store.Get(ctx, peerKey(knownPersonPrefix, p[:])); err == nil {
		b.Put([]byte(personChainKey), known)
	} else if !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("client: read sigchain: %w", err)
	}
	if err := c.store.Write(ctx, &b); err != nil {
		return fmt.Errorf("client: save person id: %w", err)
	}
	c.log.Info("device added to a person", "person", p.String()[:12], "from", sender.Fingerprint())
	c.signalWake()
	return nil
}

// linkRequestRecord is a person notice from a device that is not linked.
type linkRequestRecord struct {
	_msgpack struct{} `msgpack:",as_array"`
	Box      []byte
	Person   []byte
}

// LinkRequest is a device that added this one to its person's sigchain
// but that this device has not linked, or that this device linked while
// it belongs to another person. Linking the device (LinkDevice) accepts
// the first kind: this device then joins the person. The second kind,
// with Linked set, comes from two devices that each started a person:
// JoinPerson moves this device to the request's person, so the person
// hands out one id.
type LinkRequest struct {
	From   PublicID
	Person PersonID
	Linked bool
}

// LinkRequests returns the link requests waiting on this device. Show
// each with its fingerprint, for the person to compare with the one the
// other device shows before linking it.
func (c *Client) LinkRequests(ctx context.Context) ([]LinkRequest, error) {
	linked, err := c.LinkedDevices(ctx)
	if err != nil {
		return nil, err
	}
	var out []LinkRequest
	err = c.store.Scan(ctx, []byte(personRequestPrefix), func(k, v []byte) error {
		var rec linkRequestRecord
		if err := msgpack.Unmarshal(v, &rec); err != nil || len(rec.Box) != 32 || len(rec.Person) != 32 {
			return fmt.Errorf("client: decode link request: %v", err)
		}
		r := LinkRequest{From: PublicID{Sign: bytes.Clone(k[len(personRequestPrefix):]), Box: [32]byte(rec.Box)}, Person: PersonID(rec.Person)}
		for _, l := range linked {
			if bytes.Equal(l.Sign, r.From.Sign) && l.Box == r.From.Box {
				r.Linked = true
			}
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

// ErrNoLinkRequest is returned by JoinPerson for a person that no linked
// device asked this device to join.
var ErrNoLinkRequest = errors.New("client: no linked device added this device to that person")

// JoinPerson moves this device from its person to p, which a linked
// device added it to (a LinkRequest with Linked set). The old person
// still lists this device, so it becomes one of alsoPersons (see
// leavePersonLocked).
func (c *Client) JoinPerson(ctx context.Context, p PersonID) error {
	requests, err := c.LinkRequests(ctx)
	if err != nil {
		return err
	}
	var from *LinkRequest
	for i := range requests {
		if requests[i].Person == p && requests[i].Linked {
			from = &requests[i]
		}
	}
	if from == nil {
		return fmt.Errorf("%w %s: link a device of that person from here first", ErrNoLinkRequest, p)
	}
	c.personMu.Lock()
	defer c.personMu.Unlock()
	return c.joinPersonLocked(ctx, from.From, p, true)
}

// leavePersonLocked adds to b what leaving this device's person own
// takes: it becomes one of alsoPersons, as its chain still lists this
// device, with the chain kept beside the others'. A person whose chain
// never reached the relay is dropped. Replies queued as the person are
// dropped too, unless the person is kept. c.personMu is held.
func (c *Client) leavePersonLocked(ctx context.Context, b *Batch, own PersonID) error {
	unpublished, err := c.exists(ctx, []byte(personNewKey))
	if err != nil {
		return fmt.Errorf("client: read new sigchain: %w", err)
	}

	keptAsAlso := false
	chain, err := c.store.Get(ctx, []byte(personChainKey))
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return fmt.Errorf("client: read sigchain: %w", err)
	case !unpublished:
		b.Put(peerKey(knownPersonPrefix, own[:]), chain)
		b.Put(peerKey(personAlsoPrefix, own[:]), []byte{1})
		keptAsAlso = true
	}

	// A person kept as one of alsoPersons still sends the replies queued
	// as it (see sendHandoffs), because its inbox was read past them.
	prefixes := []string{personNotifiedPrefix}
	if !keptAsAlso {
		prefixes = append(prefixes, personQueue(own))
	}
	for _, prefix := range prefixes {
		err := c.store.Scan(ctx, []byte(prefix), func(k, _ []byte) error {
			b.Del(bytes.Clone(k))
			return nil
		})
		if err != nil {
			return fmt.Errorf("client: read the records of the person left: %w", err)
		}
	}

	b.Del([]byte(personChainKey))
	b.Del([]byte(personNewKey))
	b.Del([]byte(personIDKey))
	return nil
}

// acceptLinkRequest joins the person of dev's link request, if there is
// one from dev with its box key, once this device links dev.
func (c *Client) acceptLinkRequest(ctx context.Context, dev PublicID) error {
	v, err := c.store.Get(ctx, peerKey(personRequestPrefix, dev.Sign))
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("client: read link request: %w", err)
	}
	var rec linkRequestRecord
	if err := msgpack.Unmarshal(v, &rec); err != nil || len(rec.Person) != 32 || !bytes.Equal(rec.Box, dev.Box[:]) {
		return nil
	}
	c.personMu.Lock()
	defer c.personMu.Unlock()
	return c.joinPersonLocked(ctx, dev, PersonID(rec.Person), false)
}

// readPersonInbox reads the person's inbox for the current user key, and
// replies as the person to the offers in it.
func (s *session) readPersonInbox(ctx context.Context, p PersonID, key *keyring.UserKey) error {
	as, err := personIdentity(key)
	if err != nil {
		return err
	}
	counter := append(personKey(personInboxPrefix, p, key.Generation()), s.host...)
	return s.readInboxOf(ctx, as, counter, func(m *handoffBody) error {
		return s.c.takePersonHandoff(ctx, as, personQueue(p), m)
	})
}

// takePersonHandoff acts on the offers in one message to the person.
func (c *Client) takePersonHandoff(ctx context.Context, as *Identity, queue string, m *handoffBody) error {
	sender := PublicID{Sign: m.Sender, Box: [32]byte(m.SenderBox)}
	for _, it := range proofsApplied(m.Items) {
		if it.Kind != itemOffer {
			continue
		}
		if len(it.Doc) != 16 || len(it.Sign) != 32 || len(it.Box) != 32 {
			c.log.Warn("person's handoff item skipped: malformed", "from", sender.Fingerprint())
			continue
		}
		if err := c.replyToOffer(ctx, sender, false, envelope.DocID(it.Doc), it, as, queue); err != nil {
			return err
		}
	}
	return nil
}

// offerToPersons offers each document shared with a person to the
// person's current user key, once per generation, and ends the shares
// whose offer was replied to.
func (s *session) offerToPersons(ctx context.Context) error {
	c := s.c
	type share struct {
		p   PersonID
		doc envelope.DocID
		rec shareRecord
	}
	var shares []share
	err := c.store.Scan(ctx, []byte(personSharePrefix), func(k, v []byte) error {
		rest := k[len(personSharePrefix):]
		if len(rest) != 32+16 {
			return fmt.Errorf("client: share with a person under a key of %d bytes", len(rest))
		}
		var rec shareRecord
		if err := msgpack.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("client: decode share with a person: %w", err)
		}
		shares = append(shares, share{PersonID(rest[:32]), envelope.DocID(rest[32:]), rec})
		return nil
	})
	if err != nil || len(shares) == 0 {
		return err
	}
	chains := map[PersonID]*keyring.Chain{}
	for _, sh := range shares {
		chain, ok := chains[sh.p]
		if !ok {
			chain, _, err = s.fetchChain(ctx, sh.p, peerKey(knownPersonPrefix, sh.p[:]))
			if err != nil {
				c.log.Error("sigchain of a person shared with not verified, share waits", "person", sh.p.String()[:12], "doc", sh.doc, "err", err)
			}
			chains[sh.p] = chain
		}
		if chain == nil {
			continue
		}
		if err := c.offerToPerson(ctx, sh.p, sh.doc, sh.rec, chain.UserKey()); err != nil {
			return err
		}
	}
	return nil
}

func (c *Client) offerToPerson(ctx context.Context, p PersonID, doc envelope.DocID, rec shareRecord, user keyring.UserPublicKey) error {
	shareKey := peerKey(personSharePrefix, p[:], doc[:])
	to := userPublicID(user)
	var b Batch
	if rec.Generation == user.Generation {
		_, waiting, err := c.openOffer(ctx, to.Sign, doc)
		if err != nil || waiting {
			return err
		}
		// The person replied and the key was taken (see takeReply).
		b.Del(shareKey)
		c.log.Info("share with a person replied to", "doc", doc, "person", p.String()[:12])
		if err := c.store.Write(ctx, &b); err != nil {
			return fmt.Errorf("client: save share: %w", err)
		}
		return nil
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.docs[doc]
	if !ok || d.removed() {
		b.Del(shareKey)
		c.log.Warn("share with a person deleted: the document is not on this device or it was removed from it", "doc", doc)
		if err := c.store.Write(ctx, &b); err != nil {
			return fmt.Errorf("client: save share: %w", err)
		}
		return nil
	}

	// The offer goes out before the record names its key, so a crash
	// between the two makes the offer again rather than end the share.
	if _, err := c.offerToLocked(ctx, d, to, membership.Role(rec.Role), true); err != nil {
		return err
	}
	if rec.Sign != nil && !bytes.Equal(rec.Sign, to.Sign) {
		// A device revoked since could reply to the offer to the previous
		// user key.
		b.Del(peerKey(offerPrefix, rec.Sign, doc[:]))
		b.Del(peerKey(queuePrefix, rec.Sign, []byte{itemOffer}, doc[:]))
		b.Del(peerKey(queuePrefix, rec.Sign, []byte{itemProof}, doc[:]))
	}
	rec.Generation, rec.Sign = user.Generation, bytes.Clone(to.Sign)
	raw, err := msgpack.Marshal(&rec)
	if err != nil {
		return fmt.Errorf("client: encode share: %w", err)
	}
	b.Put(shareKey, raw)
	if err := c.store.Write(ctx, &b); err != nil {
		return fmt.Errorf("client: save share: %w", err)
	}
	return nil
}

// personQueue returns the prefix of the items queued to send as p.
func personQueue(p PersonID) string { return personQueuePrefix + string(p[:]) }

// personIdentities returns, as an Identity, the current user key of this
// device's person and of each of alsoPersons that this device holds.
func (c *Client) personIdentities(ctx context.Context) (map[PersonID]*Identity, error) {
	out := map[PersonID]*Identity{}
	add := func(p PersonID, chainKey []byte) error {
		chain, err := c.loadChain(ctx, chainKey)
		if err != nil || chain == nil {
			return err
		}
		key, err := c.userKey(ctx, p, chain.UserKey().Generation)
		if err != nil || key == nil {
			return err
		}
		id, err := personIdentity(key)
		if err == nil {
			out[p] = id
		}
		return err
	}
	if own, ok, err := c.personID(ctx); err != nil {
		return nil, err
	} else if ok {
		if err := add(own, []byte(personChainKey)); err != nil {
			return nil, err
		}
	}
	others, err := c.alsoPersons(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range others {
		if err := add(p, peerKey(knownPersonPrefix, p[:])); err != nil {
			return nil, err
		}
	}
	return out, nil
}
