package relay

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/vmihailenco/msgpack/v5"
)

// The audit log is an append-only list of what the relay did, with
// metadata only: no envelope, sealed key or request text. Each record
// carries the hash of the record before it, so changing, removing or
// inserting a record breaks the chain, and a head record with the last
// number and hash shows a cut tail. It lives in the relay's Badger
// database, so it is encrypted at rest with the rest of the data.
//
// NOTE: someone who can rewrite the whole database can also rewrite the
// whole chain and its head. The chain shows edits made without
// recomputing every later record; copying the head hash elsewhere from
// time to time would anchor it.

// AuditEvent names what an audit record is about.
type AuditEvent string

// Audit events.
const (
	// AuditAuth: a device authenticated.
	AuditAuth AuditEvent = "auth"
	// AuditCreate: a device created a document.
	AuditCreate AuditEvent = "create"
	// AuditAddMember: an admin appended a membership entry after the
	// first: an add, a removal or a change of role.
	AuditAddMember AuditEvent = "add_member"
	// AuditPush: the relay stored an envelope, or acknowledged a retried
	// push of one it had stored.
	AuditPush AuditEvent = "push"
	// AuditReject: the relay rejected a request or a connection.
	AuditReject AuditEvent = "reject"
	// AuditChain: a device appended to a sigchain. Doc holds the
	// chain's id, Cursor its entries after the append, and Size the
	// entries and blobs appended.
	AuditChain AuditEvent = "chain"
)

// AuditRecord is one entry of the audit log.
type AuditRecord struct {
	_msgpack struct{} `msgpack:",as_array"`
	// Seq numbers the records from 1 without gaps.
	Seq  uint64
	Time time.Time
	// Event is the kind of event the record logs.
	Event AuditEvent
	// Conn is the relay's id of the connection, as in its logs.
	Conn uint64
	// Device is the first 8 bytes of the device's public key, or empty
	// before authentication.
	Device []byte
	// Doc is the document id, or empty when the request named none.
	Doc []byte
	// Cursor is the log position of a pushed envelope, or the index of
	// an appended membership entry.
	Cursor uint64
	// Size is the size in bytes of a pushed envelope or appended entry.
	Size uint64
	// Code is the wire error code of a reject.
	Code string
	// Prev is the hash of the previous record, and zero for the first.
	Prev []byte
}

// ErrAuditBroken is returned by VerifyAudit when the audit log's hash
// chain does not hold.
var ErrAuditBroken = errors.New("relay: audit log chain is broken")

const (
	// auditDomain prefixes every hashed record, so a record hash is never
	// mistaken for another hash of the relay.
	auditDomain = "interlude/relay/audit v1\x00"
	// auditBatch bounds the records written in one Badger transaction.
	auditBatch = 1000
	// auditDelay is how long the writer collects records after the first
	// before it writes them. Each write syncs the disk, so collecting
	// keeps the audit log from doubling the disk syncs of a busy relay,
	// at the cost of losing up to this much of the log in a crash.
	auditDelay = 100 * time.Millisecond
)

var auditHeadKey = []byte{prefixMeta, 'a', 'u', 'd', 'i', 't'}

func auditKey(seq uint64) []byte { return key(prefixAudit, be64(seq)) }

func auditHash(value []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(auditDomain))
	h.Write(value)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// auditLog appends records from any goroutine and writes them from one,
// in batches, so that the audit log costs the push path no disk sync of
// its own. A record is durable within about auditDelay of the event, not
// before the reply: a crash can lose the newest records, never break the
// chain.
type auditLog struct {
	db  *badger.DB
	log *slog.Logger

	mu   sync.Mutex
	cond *sync.Cond // signalled on mu when written or closed changes
	// The fields below are guarded by mu.
	pending []AuditRecord // records not yet written
	queued  uint64        // count of records ever appended
	written uint64        // count of records ever written or lost
	closed  bool
	dropped uint64 // count of records appended after close

	wake chan struct{} // capacity 1; a record is pending
	now  chan struct{} // capacity 1; write without waiting for auditDelay
	done chan struct{} // closed when the writer returns

	// lastSeq and lastHash are the head of the chain. Only the writer
	// goroutine uses them once it has started.
	lastSeq  uint64
	lastHash [sha256.Size]byte
}

func openAuditLog(db *badger.DB, log *slog.Logger) (*auditLog, error) {
	a := &auditLog{db: db, log: log, wake: make(chan struct{}, 1), now: make(chan struct{}, 1), done: make(chan struct{})}
	a.cond = sync.NewCond(&a.mu)
	err := db.View(func(txn *badger.Txn) error {
		var err error
		a.lastSeq, a.lastHash, err = readAuditHead(txn)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read audit log head: %w", err)
	}
	go a.run()
	return a, nil
}

func readAuditHead(txn *badger.Txn) (seq uint64, hash [sha256.Size]byte, err error) {
	item, err := txn.Get(auditHeadKey)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, hash, nil
	}
	if err != nil {
		return 0, hash, err
	}
	err = item.Value(func(v []byte) error {
		if len(v) != 8+sha256.Size {
			return fmt.Errorf("audit log head is %d bytes, want %d", len(v), 8+sha256.Size)
		}
		seq = binary.BigEndian.Uint64(v)
		copy(hash[:], v[8:])
		return nil
	})
	return seq, hash, err
}

// append queues r. Seq, Prev and, if unset, Time are filled in by the
// writer and here.
func (a *auditLog) append(r AuditRecord) {
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		// Only connections that outlive Shutdown's deadline get here.
		a.dropped++
		return
	}
	a.pending = append(a.pending, r)
	a.queued++
	signal(a.wake)
}

// signal wakes the receiver of ch, a channel of capacity 1, unless a
// wake-up is already pending.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// flush waits until every record appended before the call is written.
func (a *auditLog) flush() {
	signal(a.now)
	a.mu.Lock()
	defer a.mu.Unlock()
	target := a.queued
	for a.written < target && !a.closed {
		a.cond.Wait()
	}
}

// close writes what is queued and stops the writer.
func (a *auditLog) close() {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		<-a.done
		return
	}
	a.closed = true
	a.mu.Unlock()
	signal(a.now)
	signal(a.wake)
	<-a.done

	a.mu.Lock()
	dropped := a.dropped
	a.mu.Unlock()
	if dropped > 0 {
		a.log.Warn("audit records dropped after the audit log closed", "records", dropped)
	}
}

func (a *auditLog) run() {
	defer close(a.done)
	delay := time.NewTimer(auditDelay)
	delay.Stop()
	for {
		<-a.wake
		delay.Reset(auditDelay)
		select {
		case <-delay.C:
		case <-a.now:
			delay.Stop()
		}
		a.mu.Lock()
		batch := a.pending
		a.pending = nil
		closed := a.closed
		a.mu.Unlock()

		if len(batch) > 0 {
			a.write(batch)
		}
		a.mu.Lock()
		a.written += uint64(len(batch))
		a.cond.Broadcast()
		a.mu.Unlock()
		if closed {
			return
		}
	}
}

// write appends batch to the chain, auditBatch records per transaction.
// A failed transaction loses its records but leaves the chain as it was,
// and the failure is logged.
func (a *auditLog) write(batch []AuditRecord) {
	for len(batch) > 0 {
		n := min(len(batch), auditBatch)
		if err := a.writeChunk(batch[:n]); err != nil {
			a.log.Error("write audit records to Badger failed, records lost", "records", n, "after_seq", a.lastSeq, "err", err)
		}
		batch = batch[n:]
	}
}

func (a *auditLog) writeChunk(records []AuditRecord) error {
	seq, hash := a.lastSeq, a.lastHash
	err := a.db.Update(func(txn *badger.Txn) error {
		for i := range records {
			r := &records[i]
			seq++
			r.Seq = seq
			r.Prev = bytes.Clone(hash[:])
			value, err := msgpack.Marshal(r)
			if err != nil {
				return fmt.Errorf("encode audit record %d: %w", seq, err)
			}
			if err := txn.Set(auditKey(seq), value); err != nil {
				return err
			}
			hash = auditHash(value)
		}
		head := binary.BigEndian.AppendUint64(nil, seq)
		return txn.Set(auditHeadKey, append(head, hash[:]...))
	})
	if err != nil {
		return err
	}
	a.lastSeq, a.lastHash = seq, hash
	return nil
}

// walk calls fn for each record in order and checks the chain: numbers
// from 1 without gaps, each Prev the hash of the record before, and the
// last record matching the head.
func (a *auditLog) walk(fn func(AuditRecord, [sha256.Size]byte) error) error {
	return a.db.View(func(txn *badger.Txn) error {
		headSeq, headHash, err := readAuditHead(txn)
		if err != nil {
			return err
		}
		prefix := []byte{prefixAudit}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		var seq uint64
		var prev [sha256.Size]byte
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			seq++
			if k := item.Key(); len(k) != 9 || binary.BigEndian.Uint64(k[1:]) != seq {
				return fmt.Errorf("%w: record %d is missing: the next key is %x", ErrAuditBroken, seq, k)
			}
			value, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			var r AuditRecord
			if err := msgpack.Unmarshal(value, &r); err != nil {
				return fmt.Errorf("%w: record %d does not decode: %v", ErrAuditBroken, seq, err)
			}
			if r.Seq != seq {
				return fmt.Errorf("%w: record %d carries number %d", ErrAuditBroken, seq, r.Seq)
			}
			if !bytes.Equal(r.Prev, prev[:]) {
				return fmt.Errorf("%w: record %d names previous hash %x, but record %d hashes to %x", ErrAuditBroken, seq, r.Prev, seq-1, prev)
			}
			prev = auditHash(value)
			if fn != nil {
				if err := fn(r, prev); err != nil {
					return err
				}
			}
		}
		if seq != headSeq || prev != headHash {
			return fmt.Errorf("%w: the log ends at record %d with hash %s, but the head names record %d with hash %s", ErrAuditBroken, seq, hex.EncodeToString(prev[:8]), headSeq, hex.EncodeToString(headHash[:8]))
		}
		return nil
	})
}

// VerifyAudit walks the whole audit log and checks its hash chain. It
// first waits for records still being written. It returns an error
// wrapping ErrAuditBroken, naming the first bad record, if a record was
// changed, removed or inserted, or the log's tail was cut.
func (s *Server) VerifyAudit() error {
	s.audit.flush()
	return s.audit.walk(nil)
}

// AuditAnchor names one record of the audit log by its number and the
// hash of its encoding. Copied out of the relay's reach, to a ticket, a
// log store or paper, it anchors the chain: a database rewritten from
// that record on no longer matches it.
type AuditAnchor struct {
	Seq  uint64
	Hash [sha256.Size]byte
}

// String returns the anchor as SEQ:HASH, the hash in hex.
func (a AuditAnchor) String() string {
	return fmt.Sprintf("%d:%s", a.Seq, hex.EncodeToString(a.Hash[:]))
}

// ParseAuditAnchor parses the form String returns.
func ParseAuditAnchor(s string) (AuditAnchor, error) {
	var a AuditAnchor
	seq, h, ok := strings.Cut(strings.TrimSpace(s), ":")
	n, err := strconv.ParseUint(seq, 10, 64)
	if !ok || err != nil || n == 0 {
		return a, fmt.Errorf("invalid audit anchor %q: want SEQ:HASH as 'interlude relay audit' prints it", s)
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != sha256.Size {
		return a, fmt.Errorf("invalid audit anchor %q: the hash after the colon must be %d hex digits", s, 2*sha256.Size)
	}
	a.Seq = n
	copy(a.Hash[:], b)
	return a, nil
}

// AuditHead returns the newest record of the audit log as an anchor, after
// the records still being written. An empty log returns Seq 0.
func (s *Server) AuditHead() (AuditAnchor, error) {
	s.audit.flush()
	var a AuditAnchor
	err := s.audit.db.View(func(txn *badger.Txn) error {
		var err error
		a.Seq, a.Hash, err = readAuditHead(txn)
		return err
	})
	return a, err
}

// VerifyAuditAnchors checks the whole chain as VerifyAudit does, and that
// each anchor's record is still there with the same hash. It returns an
// error wrapping ErrAuditBroken that names the first anchor that does not
// match: the log was rewritten or cut after that anchor was taken.
func (s *Server) VerifyAuditAnchors(anchors ...AuditAnchor) error {
	s.audit.flush()
	want := make(map[uint64][sha256.Size]byte, len(anchors))
	var last uint64
	for _, a := range anchors {
		want[a.Seq] = a.Hash
		last = max(last, a.Seq)
	}
	var seen uint64
	err := s.audit.walk(func(r AuditRecord, h [sha256.Size]byte) error {
		seen = r.Seq
		if w, ok := want[r.Seq]; ok && w != h {
			return fmt.Errorf("%w: record %d hashes to %s, but the anchor expects %s: the log was rewritten after the anchor was taken", ErrAuditBroken, r.Seq, hex.EncodeToString(h[:8]), hex.EncodeToString(w[:8]))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if seen < last {
		return fmt.Errorf("%w: the log ends at record %d, but an anchor names record %d", ErrAuditBroken, seen, last)
	}
	return nil
}

// ReadAudit calls fn for each audit record in order, after the records
// still being written, and checks the chain as VerifyAudit does. It stops
// at the first error fn returns and returns it.
func (s *Server) ReadAudit(fn func(AuditRecord) error) error {
	s.audit.flush()
	if fn == nil {
		return s.audit.walk(nil)
	}
	return s.audit.walk(func(r AuditRecord, _ [sha256.Size]byte) error { return fn(r) })
}

// auditEvent queues an audit record for this connection.
func (c *conn) auditEvent(event AuditEvent, doc []byte, cursor, size uint64, code string) {
	r := AuditRecord{Event: event, Conn: c.id, Cursor: cursor, Size: size, Code: code}
	if c.device != (deviceKey{}) {
		r.Device = bytes.Clone(c.device[:8])
	}
	if doc != nil {
		r.Doc = bytes.Clone(doc)
	}
	c.srv.audit.append(r)
}
