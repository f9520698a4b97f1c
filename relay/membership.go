package relay

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"

	"interlude/sync/envelope"
	"interlude/sync/membership"
	"interlude/sync/wire"
)

// The relay orders each document's membership log and decides every
// request from it: members may subscribe, writers and admins may push,
// admins may change the membership. It checks entries without any
// document key (see package sync/membership), and it countersigns each
// entry it accepts, so a relay that shows two members different logs
// hands out two countersigned entries at one index: a proof of its fork.

var relayKeyKey = []byte{prefixMeta, 'r', 'e', 'l', 'a', 'y', 'k', 'e', 'y'}

// loadRelayKey returns the relay's countersigning key, creating and
// storing one in a new database. The key lives in the database, so it is
// encrypted at rest with it.
func (s *store) loadRelayKey() (ed25519.PrivateKey, error) {
	var seed []byte
	err := s.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(relayKeyKey)
		if errors.Is(err, badger.ErrKeyNotFound) {
			seed = make([]byte, ed25519.SeedSize)
			if _, err := rand.Read(seed); err != nil {
				return fmt.Errorf("read random relay key: %w", err)
			}
			return txn.Set(relayKeyKey, seed)
		}
		if err != nil {
			return err
		}
		seed, err = item.ValueCopy(nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("load relay countersigning key: %w", err)
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("relay countersigning key is %d bytes, want %d: the data directory is damaged", len(seed), ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// staleLogError is returned by appendMember for an entry that does not
// follow the log's head.
type staleLogError struct {
	Index, Len uint64
}

func (e *staleLogError) Error() string {
	return fmt.Sprintf("membership entry has index %d, but the log has %d entries: fetch the log with GetLog and rebuild the entry on its head", e.Index, e.Len)
}

// membershipState returns doc's membership state, or an empty state for a
// document with no log. The caller must not change it, and must not hold
// doc's lock, because a state missing from the cache is rebuilt under it.
func (s *store) membershipState(doc envelope.DocID) (*membership.State, error) {
	if st, ok := s.states.get(doc); ok {
		return st, nil
	}
	defer s.locks.lock(doc)()
	return s.lockedMembershipState(doc)
}

// lockedMembershipState is membershipState for a caller that holds doc's
// lock. Holding it while the log is read and the state cached keeps an
// append from committing in between, which would leave a state without
// that entry in the cache. Another goroutine may have rebuilt the state
// while this one waited for the lock, so the cache is checked again.
func (s *store) lockedMembershipState(doc envelope.DocID) (*membership.State, error) {
	return s.states.load(doc, s.rebuildState)
}

// rebuildMembershipState applies doc's stored membership log to an empty
// state, as on the first use after a start.
func (s *store) rebuildMembershipState(doc envelope.DocID) (*membership.State, error) {
	st := &membership.State{}
	records, err := s.memberRecords(doc, 0)
	if err != nil {
		return nil, err
	}
	for _, rec := range records {
		e, err := membership.Decode(rec.Entry)
		if err != nil {
			return nil, fmt.Errorf("stored membership entry of document %s: %w", doc, err)
		}
		if err := st.Apply(e); err != nil {
			return nil, fmt.Errorf("stored membership log of document %s: %w", doc, err)
		}
	}
	return st, nil
}

// appendMember checks raw, an encoded membership entry sent by a
// connection that holds keys, the device's key and those it claimed for
// doc, and
// appends it to doc's log with the relay's countersignature. It returns
// the entry's index and the countersignature. An entry the log already
// holds byte for byte returns its stored countersignature, so a client
// can retry. Errors: *staleLogError, or one wrapping membership.ErrMalformed,
// ErrSignature, ErrNotAllowed, ErrChain or ErrInvalid.
func (s *store) appendMember(doc envelope.DocID, keys []deviceKey, raw []byte) (index uint64, countersig []byte, stored bool, err error) {
	defer s.locks.lock(doc)()

	e, err := membership.Decode(raw)
	if err != nil {
		return 0, nil, false, err
	}
	if e.Doc != doc {
		return 0, nil, false, fmt.Errorf("%w: entry is for document %x, the request names %s", membership.ErrInvalid, e.Doc[:], doc)
	}
	if !slices.Contains(keys, e.Author) {
		return 0, nil, false, fmt.Errorf("%w: entry author %x is neither this connection's device nor a key it claimed for document %s: claim the key first, or send only entries this device signed", membership.ErrNotAllowed, e.Author[:8], doc)
	}
	if e.Index > 0 {
		// Only a member may append, so a stranger learns nothing of the
		// log, such as its length, and builds no state in the cache.
		exists, err := s.docExists(doc)
		if err != nil {
			return 0, nil, false, err
		}
		if !exists {
			return 0, nil, false, fmt.Errorf("%w: document %s has no log to append to", membership.ErrNotAllowed, doc)
		}
	}
	st, err := s.lockedMembershipState(doc)
	if err != nil {
		return 0, nil, false, err
	}
	if _, member := st.Member(e.Author); e.Index > 0 && !member {
		return 0, nil, false, fmt.Errorf("%w: entry author %x is not a member of document %s", membership.ErrNotAllowed, e.Author[:8], doc)
	}
	if e.Index < st.Len() {
		same, sig, err := s.sameMemberEntry(doc, e.Index, raw)
		if err != nil {
			return 0, nil, false, err
		}
		if same {
			return e.Index, sig, false, nil
		}
		return 0, nil, false, &staleLogError{Index: e.Index, Len: st.Len()}
	}
	if e.Index > st.Len() {
		return 0, nil, false, &staleLogError{Index: e.Index, Len: st.Len()}
	}
	next := st.Clone()
	if err := next.Apply(e); err != nil {
		return 0, nil, false, err
	}

	sig := membership.Countersign(s.relayKey, doc, e.Index, e.Hash())
	err = s.db.Update(func(txn *badger.Txn) error {
		// The entry is ordered after the envelopes stored so far, so
		// subscribers receive it before any envelope that names it.
		after, err := getUint(txn, lastCursorKey(doc))
		if err != nil {
			return err
		}
		value := make([]byte, 0, 8+len(e.Author)+len(sig)+len(raw))
		value = binary.BigEndian.AppendUint64(value, after)
		value = append(value, e.Author[:]...)
		value = append(value, sig[:]...)
		value = append(value, raw...)
		if err := txn.Set(entryKey(doc, e.Index), value); err != nil {
			return err
		}
		return updateMemberIndex(txn, doc, e)
	})
	if err != nil {
		// Badger may have applied part of a failed commit, so the
		// cached state may be behind the log. Dropping it makes the next
		// use rebuild the state from what Badger holds.
		s.states.remove(doc)
		return 0, nil, false, err
	}
	s.states.put(doc, next)
	return e.Index, sig[:], true, nil
}

// updateMemberIndex keeps the member records that Subscribe and ListDocs
// read in step with the log: each member's record holds the newest key
// sealed to it.
func updateMemberIndex(txn *badger.Txn, doc envelope.DocID, e *membership.Entry) error {
	if e.Op.Rotates() {
		if err := txn.Delete(memberKey(doc, e.Subject.Sign)); err != nil {
			return err
		}
		if err := txn.Delete(deviceDocKey(e.Subject.Sign, doc)); err != nil {
			return err
		}
	}
	for _, k := range e.Keys {
		if err := setMember(txn, doc, k.Member, e.Author, k.Sealed[:]); err != nil {
			return err
		}
	}
	return nil
}

func (s *store) sameMemberEntry(doc envelope.DocID, index uint64, raw []byte) (bool, []byte, error) {
	records, err := s.memberRecords(doc, index)
	if err != nil {
		return false, nil, err
	}
	if len(records) == 0 || records[0].Index != index {
		return false, nil, fmt.Errorf("membership entry %d of document %s is missing below the log's length", index, doc)
	}
	return bytes.Equal(records[0].Entry, raw), records[0].Countersig, nil
}

// memberRecord is one stored membership entry.
type memberRecord struct {
	Index uint64
	// After is the document's last envelope cursor when the entry was
	// appended.
	After      uint64
	Author     deviceKey
	Entry      []byte
	Countersig []byte
}

// memberRecords returns doc's membership entries from index from.
func (s *store) memberRecords(doc envelope.DocID, from uint64) ([]memberRecord, error) {
	var records []memberRecord
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		records, err = readMemberRecords(txn, doc, from)
		return err
	})
	return records, err
}

func readMemberRecords(txn *badger.Txn, doc envelope.DocID, from uint64) ([]memberRecord, error) {
	var records []memberRecord
	prefix := key(prefixEntry, doc[:])
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	for it.Seek(entryKey(doc, from)); it.Valid(); it.Next() {
		v, err := it.Item().ValueCopy(nil)
		if err != nil {
			return nil, err
		}
		if len(v) < 8+ed25519.PublicKeySize+ed25519.SignatureSize {
			return nil, fmt.Errorf("membership record of document %s is %d bytes, too short", doc, len(v))
		}
		r := memberRecord{Index: binary.BigEndian.Uint64(it.Item().Key()[len(prefix):]), After: binary.BigEndian.Uint64(v)}
		v = v[8:]
		v = v[copy(r.Author[:], v):]
		r.Countersig, r.Entry = v[:ed25519.SignatureSize], v[ed25519.SignatureSize:]
		records = append(records, r)
	}
	return records, nil
}

// maxLogReply bounds the entry bytes of one Log reply, well below
// wire.MaxFrame.
const maxLogReply = 3 << 20

// memberLog returns doc's countersigned membership entries from index
// from up to index last, at least one if there is one, and more set when
// it stopped before last or the end to stay under maxLogReply.
func (s *store) memberLog(doc envelope.DocID, from, last uint64) (entries []wire.LogEntry, more bool, err error) {
	records, err := s.memberRecords(doc, from)
	if err != nil {
		return nil, false, err
	}
	entries = make([]wire.LogEntry, 0, len(records))
	size := 0
	for _, r := range records {
		if r.Index > last {
			break
		}
		size += len(r.Entry) + len(r.Countersig)
		if len(entries) > 0 && size > maxLogReply {
			return entries, true, nil
		}
		entries = append(entries, wire.LogEntry{Entry: r.Entry, Countersig: r.Countersig})
	}
	return entries, false, nil
}

// docExists reports whether doc has a membership log, reading Badger
// only, so that no membership state is built or cached for it.
func (s *store) docExists(doc envelope.DocID) (bool, error) {
	exists := false
	err := s.db.View(func(txn *badger.Txn) error {
		exists = hasKeyWithPrefix(txn, key(prefixEntry, doc[:]))
		return nil
	})
	return exists, err
}

// lastRemoval returns the index of the newest entry of doc's log that
// removed one of keys, if there is one.
func (s *store) lastRemoval(doc envelope.DocID, keys []deviceKey) (index uint64, ok bool, err error) {
	// Anyone may ask, so a request for a document that does not exist
	// gets its reply without building, and caching, a state for it:
	// requests for random ids must not push real documents out of the
	// cache.
	exists, err := s.docExists(doc)
	if err != nil || !exists {
		return 0, false, err
	}
	st, err := s.membershipState(doc)
	if err != nil {
		return 0, false, err
	}
	if !slices.ContainsFunc(keys, func(k deviceKey) bool { return st.WasMember(k) }) {
		return 0, false, nil
	}
	records, err := s.memberRecords(doc, 0)
	if err != nil {
		return 0, false, err
	}
	for _, r := range records {
		e, err := membership.Decode(r.Entry)
		if err != nil {
			return 0, false, fmt.Errorf("stored membership entry %d of document %s: %w", r.Index, doc, err)
		}
		if e.Op.Rotates() && slices.Contains(keys, e.Subject.Sign) {
			index, ok = e.Index, true
		}
	}
	return index, ok, nil
}

func entryKey(doc envelope.DocID, index uint64) []byte {
	return key(prefixEntry, doc[:], be64(index))
}

// errInviteNotOpen is returned by postInvite for an invitation id that no
// inviter has opened with takeInvite.
var errInviteNotOpen = errors.New("invitation not open")

// postInvite stores the response to invitation id unless another is
// stored. It reports whether the stored response is this one. The id must
// have been opened by takeInvite, so a link with a changed character,
// which names an id nobody made, is rejected rather than stored.
func (s *store) postInvite(id, response []byte) (bool, error) {
	ok := false
	err := s.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(key(prefixInvite, id))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return errInviteNotOpen
		}
		if err != nil {
			return err
		}
		var stored []byte
		if err := item.Value(func(v []byte) error {
			stored = bytes.Clone(v)
			return nil
		}); err != nil {
			return err
		}
		if len(stored) == 0 {
			ok = true
			return txn.Set(key(prefixInvite, id), response)
		}
		ok = bytes.Equal(stored, response)
		return nil
	})
	return ok, err
}

// takeInvite opens invitation id if it is not open yet, and returns the
// response stored for it, or nil. The response stays stored, so the
// invitation cannot take another.
func (s *store) takeInvite(id []byte) ([]byte, error) {
	var resp []byte
	err := s.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(key(prefixInvite, id))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return txn.Set(key(prefixInvite, id), []byte{})
		}
		if err != nil {
			return err
		}
		resp, err = item.ValueCopy(nil)
		return err
	})
	if len(resp) == 0 {
		resp = nil
	}
	return resp, err
}
