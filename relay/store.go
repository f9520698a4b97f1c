package relay

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"interlude/sync/envelope"
	"interlude/sync/membership"
	"interlude/sync/wire"
)

// deviceKey is a device's Ed25519 public key, the relay's only notion of
// identity.
type deviceKey = [ed25519.PublicKeySize]byte

// All relay data lives in one Badger key space. The first byte of a key
// names the record, and integers are big-endian so that keys of one
// document sort by cursor or sequence number.
const (
	// schemaKey -> one byte, the storage layout version.
	prefixMeta byte = 0
	// doc, cursor -> author, envelope: the document's append-only log.
	prefixLog byte = 1
	// doc -> last cursor of the document's log.
	prefixLastCursor byte = 2
	// doc, device -> added-by, sealed key: one membership, kept in step
	// with the membership log as the index of who may subscribe.
	prefixMember byte = 3
	// device, doc -> nothing: the index ListDocs scans.
	prefixDeviceDoc byte = 4
	// doc, author -> the author's last stored sequence number and the
	// hash of that envelope, the head of the author's chain.
	prefixLastSeq byte = 5
	// doc, author, seq -> cursor, so a retried push finds its first copy.
	prefixSeqCursor byte = 6
	// seq -> one audit record (see audit.go).
	prefixAudit byte = 7
	// doc, index -> the last envelope cursor when the entry was appended,
	// author, countersignature, entry: the document's membership log.
	prefixEntry byte = 8
	// invitation id -> the invitee's response (see invite.go).
	prefixInvite byte = 9
	// chain id -> entries, blobs and writers of a sigchain (see
	// sigchain.go). The three sigchain prefixes only add records, so
	// they need no new schema version.
	prefixChainHead byte = 10
	// chain id, n -> entry n of the sigchain, from 1.
	prefixChainEntry byte = 11
	// chain id, n -> blob n of the sigchain, from 1.
	prefixChainBlob byte = 12
)

// schemaVersion is the storage layout this build reads and writes.
// Version 2 stores the hash of each author's last envelope beside its
// sequence number, and the audit log. Version 3 adds the membership log,
// the relay's countersigning key and invitations.
const schemaVersion = 3

var schemaKey = []byte{prefixMeta, 's', 'c', 'h', 'e', 'm', 'a'}

// sequenceError is returned by appendEnvelope for a sequence number that is
// not the author's next one and is not a retry of a stored envelope.
type sequenceError struct {
	Seq      uint64
	Expected uint64
	// Reused is set when Seq was already stored with other bytes.
	Reused bool
}

func (e *sequenceError) Error() string {
	if e.Reused {
		return fmt.Sprintf("sequence number %d is already stored with a different envelope; the next sequence number is %d", e.Seq, e.Expected)
	}
	return fmt.Sprintf("sequence number %d is out of order; expected %d", e.Seq, e.Expected)
}

// chainError is returned by appendEnvelope for an envelope with the
// author's next sequence number whose Prev is not the hash of the
// author's last stored envelope.
type chainError struct {
	Seq      uint64
	Prev     envelope.Hash
	Expected envelope.Hash
}

func (e *chainError) Error() string {
	if e.Expected.IsZero() {
		return fmt.Sprintf("envelope with sequence number %d names previous envelope %x, but the author has no stored envelope: the first envelope has the zero hash as Prev", e.Seq, e.Prev[:])
	}
	return fmt.Sprintf("envelope with sequence number %d names previous envelope %x, but the author's last stored envelope (sequence number %d) has hash %x: seal the next envelope on top of the last acknowledged one", e.Seq, e.Prev[:], e.Seq-1, e.Expected[:])
}

// logEntry is one stored envelope with its position in the document's log.
type logEntry struct {
	Cursor   uint64
	Author   deviceKey
	Envelope []byte
}

// store keeps documents, memberships and envelope logs in Badger. It
// stores only ciphertext: envelopes and sealed keys are opaque bytes to it.
type store struct {
	db    *badger.DB
	locks docLocks
	// relayKey countersigns membership entries.
	relayKey ed25519.PrivateKey

	// states caches the membership states of recently used documents.
	// A state missing from it is rebuilt from the log under the
	// document's lock (see membershipState).
	states *stateCache
	// rebuildState is rebuildMembershipState. A test replaces it to
	// pause a rebuild between reading the log and caching the state.
	rebuildState func(envelope.DocID) (*membership.State, error)
}

// indexCacheSize bounds the memory Badger uses for table indexes when the
// database is encrypted. Without a bound, Badger keeps every index in
// memory, decrypted.
const indexCacheSize = 64 << 20

// openStore opens the database in dir, encrypted at rest with key unless
// key is empty. It caches the membership states of up to cacheSize
// documents and logs the cache's evictions to cacheLog.
func openStore(dir string, key EncryptionKey, cacheSize int, log, cacheLog *slog.Logger) (*store, error) {
	opts := badger.DefaultOptions(dir).
		WithSyncWrites(true). // an acknowledged push must survive a killed process
		WithLogger(badgerLogger{log})
	if len(key) > 0 {
		if len(key) != EncryptionKeySize {
			return nil, fmt.Errorf("encryption key of %d bytes, want %d", len(key), EncryptionKeySize)
		}
		opts = opts.WithEncryptionKey(key).WithIndexCacheSize(indexCacheSize)
	}
	db, err := badger.Open(opts)
	if errors.Is(err, badger.ErrEncryptionKeyMismatch) {
		return nil, keyMismatchError(dir, len(key) > 0)
	}
	if err != nil {
		return nil, fmt.Errorf("open Badger database in %q: %w", dir, err)
	}
	s := &store{db: db, states: newStateCache(cacheSize, cacheLog)}
	s.rebuildState = s.rebuildMembershipState
	if err := s.checkSchema(); err != nil {
		db.Close()
		return nil, fmt.Errorf("data directory %q: %w", dir, err)
	}
	if s.relayKey, err = s.loadRelayKey(); err != nil {
		db.Close()
		return nil, fmt.Errorf("data directory %q: %w", dir, err)
	}
	return s, nil
}

// checkSchema writes the layout version into a new database and rejects a
// database written in another layout.
func (s *store) checkSchema() error {
	return s.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(schemaKey)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return txn.Set(schemaKey, []byte{schemaVersion})
		}
		if err != nil {
			return err
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		if len(v) != 1 || v[0] != schemaVersion {
			return fmt.Errorf("relay storage layout %v is not version %d, the one this build reads: use a relay build that matches the data or another data directory", v, schemaVersion)
		}
		return nil
	})
}

func (s *store) close() error {
	return s.db.Close()
}

// ping reads one key to show the database is open and readable.
func (s *store) ping() error {
	return s.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get(schemaKey)
		return err
	})
}

func (s *store) isMember(doc envelope.DocID, device deviceKey) (bool, error) {
	var member bool
	err := s.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get(memberKey(doc, device))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		member = err == nil
		return err
	})
	return member, err
}

func setMember(txn *badger.Txn, doc envelope.DocID, member, addedBy deviceKey, sealedKey []byte) error {
	value := make([]byte, 0, len(addedBy)+len(sealedKey))
	value = append(value, addedBy[:]...)
	value = append(value, sealedKey...)
	if err := txn.Set(memberKey(doc, member), value); err != nil {
		return err
	}
	return txn.Set(deviceDocKey(member, doc), nil)
}

// grants returns up to limit memberships of device in document id order,
// of the documents with ids greater than after, or of all documents when
// after is empty. It sets more when the device has further memberships.
func (s *store) grants(device deviceKey, after []byte, limit int) (grants []wire.Grant, more bool, err error) {
	grants = []wire.Grant{}
	err = s.db.View(func(txn *badger.Txn) error {
		prefix := deviceDocPrefix(device)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		// The index is sorted by document id, so the page starts with a
		// seek, and the key of after itself, if stored, is skipped.
		start := key(prefixDeviceDoc, device[:], after)
		for it.Seek(start); it.Valid(); it.Next() {
			if len(after) > 0 && bytes.Equal(it.Item().Key(), start) {
				continue
			}
			if len(grants) == limit {
				more = true
				return nil
			}
			var doc envelope.DocID
			copy(doc[:], it.Item().Key()[len(prefix):])
			item, err := txn.Get(memberKey(doc, device))
			if err != nil {
				return fmt.Errorf("membership of document %s listed in the device index: %w", doc, err)
			}
			value, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			g, err := grantFromRecord(doc, value)
			if err != nil {
				return err
			}
			grants = append(grants, g)
		}
		return nil
	})
	return grants, more, err
}

// grantFromRecord turns a member record's value, the adding member's key
// and the sealed document key, into a grant.
func grantFromRecord(doc envelope.DocID, value []byte) (wire.Grant, error) {
	if len(value) < ed25519.PublicKeySize {
		return wire.Grant{}, fmt.Errorf("membership record of document %s is %d bytes, shorter than a member key", doc, len(value))
	}
	return wire.Grant{
		Doc:       bytes.Clone(doc[:]),
		AddedBy:   value[:ed25519.PublicKeySize],
		SealedKey: value[ed25519.PublicKeySize:],
	}, nil
}

// appendEnvelope stores env as the next entry of doc's log and returns its
// cursor. The caller has checked the signature and that author wrote env,
// whose header holds seq and prev and whose hash is hash. A seq already
// stored with the same bytes is a retry after a lost Ack: it returns the
// stored cursor with stored false and writes nothing. Any other seq than
// the author's next one returns a *sequenceError, and the next seq with a
// prev other than the hash of the author's last envelope a *chainError.
// check runs first, under doc's lock, on doc's membership state; its
// error is returned as it is and nothing is written.
func (s *store) appendEnvelope(doc envelope.DocID, author deviceKey, seq uint64, prev, hash envelope.Hash, env []byte, check func(*membership.State) error) (cursor uint64, stored bool, err error) {
	defer s.locks.lock(doc)()

	st, err := s.lockedMembershipState(doc)
	if err != nil {
		return 0, false, fmt.Errorf("read membership log of document %s: %w", doc, err)
	}
	if err := check(st); err != nil {
		return 0, false, err
	}

	// One transaction writes the log entry, the last cursor, the chain
	// head and the sequence index, so a crash leaves either all of them
	// or none.
	err = s.db.Update(func(txn *badger.Txn) error {
		lastSeq, lastHash, err := getChainHead(txn, doc, author)
		if err != nil {
			return err
		}
		switch {
		case seq == lastSeq+1:
			if prev != lastHash {
				return &chainError{Seq: seq, Prev: prev, Expected: lastHash}
			}
			last, err := getUint(txn, lastCursorKey(doc))
			if err != nil {
				return err
			}
			cursor = last + 1
			stored = true
			return writeEntry(txn, doc, author, seq, hash, cursor, env)
		case seq <= lastSeq:
			cursor, err = storedCursor(txn, doc, author, seq)
			if err != nil {
				return err
			}
			same, err := sameEnvelope(txn, doc, cursor, env)
			if err != nil {
				return err
			}
			if !same {
				return &sequenceError{Seq: seq, Expected: lastSeq + 1, Reused: true}
			}
			return nil
		default:
			return &sequenceError{Seq: seq, Expected: lastSeq + 1}
		}
	})
	if err != nil {
		return 0, false, err
	}
	return cursor, stored, nil
}

func writeEntry(txn *badger.Txn, doc envelope.DocID, author deviceKey, seq uint64, hash envelope.Hash, cursor uint64, env []byte) error {
	value := make([]byte, 0, len(author)+len(env))
	value = append(value, author[:]...)
	value = append(value, env...)
	if err := txn.Set(logKey(doc, cursor), value); err != nil {
		return err
	}
	if err := txn.Set(lastCursorKey(doc), binary.BigEndian.AppendUint64(nil, cursor)); err != nil {
		return err
	}
	head := binary.BigEndian.AppendUint64(nil, seq)
	if err := txn.Set(lastSeqKey(doc, author), append(head, hash[:]...)); err != nil {
		return err
	}
	return txn.Set(seqCursorKey(doc, author, seq), binary.BigEndian.AppendUint64(nil, cursor))
}

// getChainHead returns the author's last stored sequence number and the
// hash of that envelope, or zeros when the author has stored none.
func getChainHead(txn *badger.Txn, doc envelope.DocID, author deviceKey) (seq uint64, hash envelope.Hash, err error) {
	item, err := txn.Get(lastSeqKey(doc, author))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, hash, nil
	}
	if err != nil {
		return 0, hash, err
	}
	err = item.Value(func(v []byte) error {
		if len(v) != 8+len(hash) {
			return fmt.Errorf("chain head of document %s author %x is %d bytes, want %d", doc, author[:8], len(v), 8+len(hash))
		}
		seq = binary.BigEndian.Uint64(v)
		copy(hash[:], v[8:])
		return nil
	})
	return seq, hash, err
}

func storedCursor(txn *badger.Txn, doc envelope.DocID, author deviceKey, seq uint64) (uint64, error) {
	cursor, err := getUint(txn, seqCursorKey(doc, author, seq))
	if err != nil {
		return 0, err
	}
	if cursor == 0 {
		return 0, fmt.Errorf("sequence index of document %s has no cursor for author %x seq %d below the author's last", doc, author[:8], seq)
	}
	return cursor, nil
}

func sameEnvelope(txn *badger.Txn, doc envelope.DocID, cursor uint64, env []byte) (bool, error) {
	item, err := txn.Get(logKey(doc, cursor))
	if err != nil {
		return false, fmt.Errorf("log entry %d of document %s: %w", cursor, doc, err)
	}
	same := false
	err = item.Value(func(value []byte) error {
		same = len(value) >= ed25519.PublicKeySize && bytes.Equal(value[ed25519.PublicKeySize:], env)
		return nil
	})
	return same, err
}

// readLog returns the log entries of doc after cursor after, in cursor
// order, and the document's last cursor. It stops before the entry that
// would take the entries' total size past maxBytes, but always returns at
// least one entry if there is one, and sets more when it stopped early.
//
// It also returns the membership entries from index entryFrom, read in the
// same snapshot, so the caller can deliver each before the envelopes
// stored after it.
func (s *store) readLog(doc envelope.DocID, after, entryFrom uint64, maxBytes int) (entries []logEntry, members []memberRecord, last uint64, more bool, err error) {
	err = s.db.View(func(txn *badger.Txn) error {
		// The last cursor and the entries come from one snapshot, so
		// every entry up to last is in the log.
		last, err = getUint(txn, lastCursorKey(doc))
		if err != nil {
			return err
		}
		members, err = readMemberRecords(txn, doc, entryFrom)
		if err != nil {
			return err
		}
		prefix := logPrefix(doc)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		size := 0
		for it.Seek(logKey(doc, after+1)); it.Valid(); it.Next() {
			item := it.Item()
			if len(entries) > 0 && size+int(item.ValueSize()) > maxBytes {
				more = true
				return nil
			}
			value, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			if len(value) < ed25519.PublicKeySize {
				return fmt.Errorf("log entry of document %s is %d bytes, shorter than its author key", doc, len(value))
			}
			e := logEntry{
				Cursor:   binary.BigEndian.Uint64(item.Key()[len(prefix):]),
				Envelope: value[ed25519.PublicKeySize:],
			}
			copy(e.Author[:], value)
			entries = append(entries, e)
			size += len(value)
		}
		return nil
	})
	return entries, members, last, more, err
}

func hasKeyWithPrefix(txn *badger.Txn, prefix []byte) bool {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	it.Rewind()
	return it.Valid()
}

// getUint reads a big-endian uint64 value, or 0 when the key is missing.
func getUint(txn *badger.Txn, key []byte) (uint64, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var n uint64
	err = item.Value(func(v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("counter at key %x is %d bytes, want 8", key, len(v))
		}
		n = binary.BigEndian.Uint64(v)
		return nil
	})
	return n, err
}

func key(prefix byte, parts ...[]byte) []byte {
	n := 1
	for _, p := range parts {
		n += len(p)
	}
	k := make([]byte, 0, n)
	k = append(k, prefix)
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

func be64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

func logPrefix(doc envelope.DocID) []byte { return key(prefixLog, doc[:]) }

func logKey(doc envelope.DocID, cursor uint64) []byte {
	return key(prefixLog, doc[:], be64(cursor))
}

func lastCursorKey(doc envelope.DocID) []byte { return key(prefixLastCursor, doc[:]) }

func memberPrefix(doc envelope.DocID) []byte { return key(prefixMember, doc[:]) }

func memberKey(doc envelope.DocID, device deviceKey) []byte {
	return key(prefixMember, doc[:], device[:])
}

func deviceDocPrefix(device deviceKey) []byte { return key(prefixDeviceDoc, device[:]) }

func deviceDocKey(device deviceKey, doc envelope.DocID) []byte {
	return key(prefixDeviceDoc, device[:], doc[:])
}

func lastSeqKey(doc envelope.DocID, author deviceKey) []byte {
	return key(prefixLastSeq, doc[:], author[:])
}

func seqCursorKey(doc envelope.DocID, author deviceKey, seq uint64) []byte {
	return key(prefixSeqCursor, doc[:], author[:], be64(seq))
}

// docLocks serializes the writes to each document, so that two pushes
// cannot take the same cursor and two Creates cannot both find the
// document empty. Entries exist only while some goroutine holds or waits
// for the lock, so the map does not grow with the number of documents.
type docLocks struct {
	mu     sync.Mutex
	active map[envelope.DocID]*docLock // guarded by mu
}

type docLock struct {
	sync.Mutex
	users int // holders and waiters; guarded by docLocks.mu
}

// lock locks doc and returns the function that unlocks it.
func (l *docLocks) lock(doc envelope.DocID) (unlock func()) {
	l.mu.Lock()
	if l.active == nil {
		l.active = make(map[envelope.DocID]*docLock)
	}
	d := l.active[doc]
	if d == nil {
		d = &docLock{}
		l.active[doc] = d
	}
	d.users++
	l.mu.Unlock()

	d.Lock()
	return func() {
		d.Unlock()
		l.mu.Lock()
		d.users--
		if d.users == 0 {
			delete(l.active, doc)
		}
		l.mu.Unlock()
	}
}

// badgerLogger passes Badger's warnings and errors to slog and drops its
// informational messages, which report routine compactions and file
// openings.
type badgerLogger struct{ log *slog.Logger }

func (b badgerLogger) Errorf(format string, args ...any) {
	b.log.Error(strings.TrimSpace(fmt.Sprintf(format, args...)))
}

func (b badgerLogger) Warningf(format string, args ...any) {
	b.log.Warn(strings.TrimSpace(fmt.Sprintf(format, args...)))
}

func (badgerLogger) Infof(string, ...any)  {}
func (badgerLogger) Debugf(string, ...any) {}
