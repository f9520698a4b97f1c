package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"interlude/sync/envelope"
	"interlude/sync/membership"
)

// The client checks every delivered envelope against the hash chain of
// its author, because the relay is trusted to store and forward only. It
// has no document key, and it must not be able to drop, reorder, replay
// or forge updates, roll a document back, or show two members different
// histories without the members noticing.
//
// Per document and author the client stores the last sequence number it
// accepted and that envelope's hash (the chain head), and an index of
// every accepted envelope's hash by sequence number. A delivered envelope
// is applied only if it is the next link of its author's chain. Anything
// else is kept aside under the document's "/rejected/" keys, logged, and
// recorded as a Report the app can show.

// ReportKind names what a Report found.
type ReportKind string

// Report kinds.
const (
	// ReportMalformed: a delivered envelope does not decode.
	ReportMalformed ReportKind = "malformed"
	// ReportWrongDocument: a delivered envelope belongs to another
	// document, as when a relay swaps in another document's ciphertext.
	ReportWrongDocument ReportKind = "wrong_document"
	// ReportBadSignature: a delivered envelope's signature does not
	// verify: someone changed it after its author signed it.
	ReportBadSignature ReportKind = "bad_signature"
	// ReportKeyCommitment: a signed envelope's key commitment does not
	// match the document key, so its author sealed it under another key.
	ReportKeyCommitment ReportKind = "key_commitment"
	// ReportUndecryptable: a signed envelope whose key commitment matched
	// does not decrypt, or its padding is invalid.
	ReportUndecryptable ReportKind = "undecryptable"
	// ReportGap: an envelope skips sequence numbers of its author, so
	// the relay dropped or reordered envelopes. It is kept aside and
	// applied if the missing ones arrive.
	ReportGap ReportKind = "gap"
	// ReportBrokenChain: an envelope has its author's next sequence
	// number but names another predecessor than the one this device
	// holds.
	ReportBrokenChain ReportKind = "broken_chain"
	// ReportReplay: an envelope this device already holds was delivered
	// again under a new cursor.
	ReportReplay ReportKind = "replay"
	// ReportFork: two different envelopes carry one author's sequence
	// number. This device holds one of them, and the relay delivered the
	// other or another member's envelope names it. The relay is showing
	// members different histories, or the author's device signed two.
	ReportFork ReportKind = "fork"
	// ReportRollback: the relay delivered a cursor at or below one it had
	// delivered before, or caught up at a lower cursor than this device
	// has received: it serves an older state of the document.
	ReportRollback ReportKind = "rollback"
	// ReportWithheld: another member's envelope lists an author's
	// envelopes up to some sequence number as received, and this device,
	// caught up with the relay, has accepted fewer of them.
	ReportWithheld ReportKind = "withheld"
	// ReportSigchain: the relay served a person's sigchain that does not
	// verify, has another id, forks from the copy this device verified
	// before, or is shorter than it (see SigchainReports).
	ReportSigchain ReportKind = "sigchain"
)

// Report is one finding about the relay, or about an author, recorded
// when a delivery broke the rules. Reports are stored with the document.
type Report struct {
	Kind ReportKind
	// Author is the first 8 bytes of the author's key in hex, or empty
	// when the envelope did not decode.
	Author string
	// Seq is the author's sequence number the report is about.
	Seq uint64
	// Cursor is the relay cursor of the delivery, or 0.
	Cursor uint64
	Time   time.Time
	// Detail explains the finding in a sentence, without content.
	Detail string
}

// MemberSync is the sync state of one author of a document, as this
// device has it.
type MemberSync struct {
	// Member is the author's device key.
	Member [32]byte
	// Seq is the author's newest sequence number this device accepted.
	Seq uint64
	// LastSynced is when this device received that envelope: the last
	// time it synced with the member's changes.
	LastSynced time.Time
}

// maxReports bounds the reports kept per document. Older ones are
// deleted.
const maxReports = 100

// maxParked bounds the envelopes per document that wait for a gap in
// their author's chain to close. Envelopes beyond it stay under
// "/rejected/" but are not retried.
const maxParked = 4096

type authorKey = [32]byte

// authorState is the stored chain head of one author of a document, and
// the newest envelope of that author that other members listed as
// received.
type authorState struct {
	_msgpack struct{} `msgpack:",as_array"`
	Seq      uint64
	Hash     []byte
	// Received is when the envelope Seq arrived, in Unix nanoseconds.
	Received int64
	// Claimed is the highest sequence number of this author that another
	// member's envelope listed as received. ClaimedHash is that
	// envelope's hash, and ClaimedBy the key prefix of that member.
	Claimed     uint64
	ClaimedHash []byte
	ClaimedBy   []byte
	// Reported is the Claimed value last reported as withheld.
	Reported uint64
}

func (s *authorState) hash() envelope.Hash {
	var h envelope.Hash
	copy(h[:], s.Hash)
	return h
}

// parkedEnvelope is a kept-aside envelope that skipped sequence numbers
// of its author and is retried once they arrive.
type parkedEnvelope struct {
	key []byte // its "/rejected/" store key
	seq uint64
}

// docTrust is a document's chain state. Its fields are guarded by
// Client.mu, like the document's. It is loaded from the store on first
// use, and dropped (set to nil) when a write fails, so the next use
// reloads what the store holds.
type docTrust struct {
	authors map[authorKey]*authorState
	// ownHash is the hash of this device's envelope meta.LastSeq.
	ownHash envelope.Hash
	reports []Report
	// reportKeys holds the store key of each report, in the same order.
	reportKeys  [][]byte
	nextReport  uint64
	parked      map[authorKey][]parkedEnvelope
	parkedCount int
	// rollbackAt is the cursor for which a rollback was last reported,
	// so a relay that replays a whole log yields one report, not one per
	// envelope.
	rollbackAt uint64
}

// Store keys of the chain state. The index of hashes by sequence number
// grows with every envelope, so it lives under its own prefix "c/" and
// Open's scan of "d/" for documents does not read it.
func authorPrefix(id envelope.DocID) []byte { return append(docPrefix(id), "/author/"...) }
func authorStateKey(id envelope.DocID, author authorKey) []byte {
	return append(authorPrefix(id), author[:]...)
}
func ownHashKey(id envelope.DocID) []byte   { return append(docPrefix(id), "/own"...) }
func reportPrefix(id envelope.DocID) []byte { return append(docPrefix(id), "/report/"...) }
func rejectedPrefix(id envelope.DocID) []byte {
	return append(docPrefix(id), "/rejected/"...)
}

// rejectedKey names a kept-aside delivery by cursor and hash, so two
// deliveries under one cursor do not overwrite each other.
func rejectedKey(id envelope.DocID, cursor uint64, raw []byte) []byte {
	sum := sha256.Sum256(raw)
	return append(binary.BigEndian.AppendUint64(rejectedPrefix(id), cursor), sum[:8]...)
}

func chainIndexKey(id envelope.DocID, author authorKey, seq uint64) []byte {
	k := make([]byte, 0, 2+len(id)+len(author)+8)
	k = append(k, "c/"...)
	k = append(k, id[:]...)
	k = append(k, author[:]...)
	return binary.BigEndian.AppendUint64(k, seq)
}

func shortKey(k []byte) string {
	if len(k) > 8 {
		k = k[:8]
	}
	return hex.EncodeToString(k)
}

// trustLocked returns d's chain state, loading it on first use.
func (c *Client) trustLocked(ctx context.Context, d *document) (*docTrust, error) {
	if d.trust != nil {
		return d.trust, nil
	}
	t := &docTrust{authors: make(map[authorKey]*authorState), parked: make(map[authorKey][]parkedEnvelope)}

	err := c.store.Scan(ctx, authorPrefix(d.id), func(key, value []byte) error {
		var author authorKey
		if len(key) != len(authorPrefix(d.id))+len(author) {
			return fmt.Errorf("author record key of %d bytes", len(key))
		}
		copy(author[:], key[len(key)-len(author):])
		st := &authorState{}
		if err := msgpack.Unmarshal(value, st); err != nil {
			return fmt.Errorf("decode author %x: %w", author[:8], err)
		}
		t.authors[author] = st
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("client: read envelope chains of document %s: %w", d.id, err)
	}

	own, err := c.store.Get(ctx, ownHashKey(d.id))
	switch {
	case err == nil && len(own) == envelope.HashSize:
		copy(t.ownHash[:], own)
	case err == nil:
		return nil, fmt.Errorf("client: own chain head of document %s is %d bytes, want %d", d.id, len(own), envelope.HashSize)
	case !errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("client: read own chain head of document %s: %w", d.id, err)
	}

	err = c.store.Scan(ctx, reportPrefix(d.id), func(key, value []byte) error {
		var r Report
		if err := msgpack.Unmarshal(value, &r); err != nil {
			return fmt.Errorf("decode report: %w", err)
		}
		t.reports = append(t.reports, r)
		t.reportKeys = append(t.reportKeys, key)
		t.nextReport = binary.BigEndian.Uint64(key[len(key)-8:]) + 1
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("client: read reports of document %s: %w", d.id, err)
	}

	// Kept-aside envelopes ahead of their author's chain wait for the
	// gap to close. Their signatures are checked when they are retried.
	err = c.store.Scan(ctx, rejectedPrefix(d.id), func(key, value []byte) error {
		env, err := envelope.Unmarshal(value)
		if err != nil || env.Doc != d.id || env.Author == d.self.member() {
			return nil
		}
		if st := t.authors[env.Author]; st == nil || env.Seq > st.Seq+1 {
			t.park(env.Author, key, env.Seq)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("client: read kept-aside envelopes of document %s: %w", d.id, err)
	}
	d.trust = t
	return t, nil
}

func (t *docTrust) park(author authorKey, key []byte, seq uint64) bool {
	if t.parkedCount >= maxParked {
		return false
	}
	t.parked[author] = append(t.parked[author], parkedEnvelope{key: slices.Clone(key), seq: seq})
	t.parkedCount++
	return true
}

// takeParked removes and returns the parked envelope of author with seq.
func (t *docTrust) takeParked(author authorKey, seq uint64) (parkedEnvelope, bool) {
	list := t.parked[author]
	for i, p := range list {
		if p.seq == seq {
			t.parked[author] = slices.Delete(list, i, i+1)
			t.parkedCount--
			if len(t.parked[author]) == 0 {
				delete(t.parked, author)
			}
			return p, true
		}
	}
	return parkedEnvelope{}, false
}

func (c *Client) selfKey() authorKey {
	var k authorKey
	copy(k[:], c.id.public.Sign)
	return k
}

// sealHeaderLocked returns the header fields of this device's next
// envelope after seq-1: Prev chains it to the envelope before, and Seen
// lists the newest envelope accepted from each other author.
func (c *Client) sealHeaderLocked(t *docTrust, d *document, seq uint64, prev envelope.Hash) (envelope.Header, error) {
	h := envelope.Header{
		Kind: envelope.KindUpdate,
		Doc:  d.id,
		// The newest epoch and the head of the log this device holds: the
		// relay accepts the envelope only if both are in its log.
		Epoch:          d.log.state.Epoch(),
		MembershipHead: envelope.Hash(d.log.state.Head()),
		Seq:            seq,
		Prev:           prev,
	}
	if seq > 1 && prev.IsZero() {
		return h, fmt.Errorf("client: document %s has %d updates of this device but no stored hash of the last one, as written by a client before envelope format %d, so its updates cannot be chained: copy its text into a new document", d.id, seq-1, envelope.Version)
	}
	self := d.self.member()
	for author, st := range t.authors {
		if author == self || st.Seq == 0 {
			continue
		}
		h.Seen = append(h.Seen, envelope.Seen{Author: author, Seq: st.Seq, Hash: st.hash()})
	}
	if len(h.Seen) > envelope.MaxSeen {
		// Keep the authors heard from most recently.
		slices.SortFunc(h.Seen, func(a, b envelope.Seen) int {
			return -cmpInt64(t.authors[a.Author].Received, t.authors[b.Author].Received)
		})
		h.Seen = h.Seen[:envelope.MaxSeen]
	}
	slices.SortFunc(h.Seen, func(a, b envelope.Seen) int { return bytes.Compare(a.Author[:], b.Author[:]) })
	return h, nil
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Reports returns the reports recorded for doc, oldest first. An app
// shows them as a warning that the relay, or a member's device, did not
// follow the protocol.
func (c *Client) Reports(doc envelope.DocID) ([]Report, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.docs[doc]
	if !ok {
		return nil, fmt.Errorf("%w %s", ErrUnknownDocument, doc)
	}
	t, err := c.trustLocked(context.Background(), d)
	if err != nil {
		return nil, err
	}
	return slices.Clone(t.reports), nil
}

// LastSynced returns, for each other author of doc this device has
// accepted envelopes from, the newest sequence number and when it
// arrived, sorted by member key.
func (c *Client) LastSynced(doc envelope.DocID) ([]MemberSync, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.docs[doc]
	if !ok {
		return nil, fmt.Errorf("%w %s", ErrUnknownDocument, doc)
	}
	t, err := c.trustLocked(context.Background(), d)
	if err != nil {
		return nil, err
	}
	self := d.self.member()
	var out []MemberSync
	for author, st := range t.authors {
		if author == self || st.Seq == 0 {
			continue
		}
		out = append(out, MemberSync{Member: author, Seq: st.Seq, LastSynced: time.Unix(0, st.Received)})
	}
	slices.SortFunc(out, func(a, b MemberSync) int { return bytes.Compare(a.Member[:], b.Member[:]) })
	return out, nil
}

// receiver checks and applies one group of deliveries. Everything it
// changes goes into one Batch, written by applyDeliveries.
type receiver struct {
	c   *Client
	ctx context.Context
	b   *Batch
	now time.Time
	// hashes holds the chain index entries put into b, which the store
	// does not hold yet.
	hashes map[string]envelope.Hash
	// dirty lists the authors whose state must be written, by document.
	dirty map[*document]map[authorKey]bool
}

func newReceiver(ctx context.Context, c *Client, b *Batch) *receiver {
	return &receiver{c: c, ctx: ctx, b: b, now: time.Now(), hashes: make(map[string]envelope.Hash), dirty: make(map[*document]map[authorKey]bool)}
}

// author returns the state of author in d, creating an empty one.
func (r *receiver) author(d *document, author authorKey) *authorState {
	st := d.trust.authors[author]
	if st == nil {
		st = &authorState{}
		d.trust.authors[author] = st
	}
	return st
}

func (r *receiver) markDirty(d *document, author authorKey) {
	if r.dirty[d] == nil {
		r.dirty[d] = make(map[authorKey]bool)
	}
	r.dirty[d][author] = true
}

// hashAt returns the hash of author's envelope seq in d, if this device
// accepted it.
func (r *receiver) hashAt(d *document, author authorKey, seq uint64) (envelope.Hash, bool, error) {
	if author == d.self.member() && seq == d.meta.LastSeq {
		return d.trust.ownHash, true, nil
	}
	if st := d.trust.authors[author]; st != nil && st.Seq == seq {
		return st.hash(), true, nil
	}
	key := chainIndexKey(d.id, author, seq)
	if h, ok := r.hashes[string(key)]; ok {
		return h, true, nil
	}
	b, err := r.c.store.Get(r.ctx, key)
	if errors.Is(err, ErrNotFound) {
		return envelope.Hash{}, false, nil
	}
	if err != nil {
		return envelope.Hash{}, false, fmt.Errorf("client: read chain index of document %s: %w", d.id, err)
	}
	var h envelope.Hash
	copy(h[:], b)
	return h, len(b) == len(h), nil
}

// report records a finding: logged as an error with the ids involved,
// kept in memory and written with the batch.
func (r *receiver) report(d *document, rep Report) error {
	rep.Time = r.now
	t := d.trust
	key := binary.BigEndian.AppendUint64(reportPrefix(d.id), t.nextReport)
	t.nextReport++
	value, err := msgpack.Marshal(&rep)
	if err != nil {
		return fmt.Errorf("client: encode report: %w", err)
	}
	r.b.Put(key, value)
	t.reports = append(t.reports, rep)
	t.reportKeys = append(t.reportKeys, key)
	if len(t.reports) > maxReports {
		r.b.Del(t.reportKeys[0])
		t.reports = t.reports[1:]
		t.reportKeys = t.reportKeys[1:]
	}
	r.c.log.Error("relay misbehaviour: delivery rejected or reported", "doc", d.id, "kind", string(rep.Kind), "author", rep.Author, "seq", rep.Seq, "cursor", rep.Cursor, "detail", rep.Detail)
	return nil
}

// keepAside stores a delivery that is not applied, so that a later
// version of the client, or a closed gap, can use it.
func (r *receiver) keepAside(d *document, cursor uint64, raw []byte) []byte {
	key := rejectedKey(d.id, cursor, raw)
	r.b.Put(key, raw)
	return key
}

// receive checks one delivery and applies it if it is the next link of
// its author's chain.
func (r *receiver) receive(d *document, cursor uint64, raw []byte) error {
	// 1. A relay sends each cursor once and in increasing order. A cursor
	//    at or below one already received means it is serving an older
	//    log. The envelope is still checked below, because the chains,
	//    not the cursors, decide what is applied.
	stale := cursor <= d.meta.Cursor
	if stale {
		if d.trust.rollbackAt != d.meta.Cursor {
			d.trust.rollbackAt = d.meta.Cursor
			err := r.report(d, Report{Kind: ReportRollback, Cursor: cursor, Detail: fmt.Sprintf("the relay delivered cursor %d after cursor %d: it serves an older state of the document", cursor, d.meta.Cursor)})
			if err != nil {
				return err
			}
		}
	} else {
		d.meta.Cursor = cursor
	}

	// 2. The envelope must decode and belong to this document.
	env, err := envelope.Unmarshal(raw)
	if err != nil {
		r.keepAside(d, cursor, raw)
		return r.report(d, Report{Kind: ReportMalformed, Cursor: cursor, Detail: err.Error()})
	}
	if env.Doc != d.id {
		r.keepAside(d, cursor, raw)
		return r.report(d, r.about(env, cursor, ReportWrongDocument, fmt.Sprintf("the relay delivered an envelope of document %s as document %s", env.Doc, d.id)))
	}
	// 3. This device's own envelopes are applied when they are written.
	//    A relay sends them back only on request, which this client does
	//    not make.
	if env.Author == d.self.member() {
		r.c.log.Debug("own envelope delivered, skipped", "doc", d.id, "seq", env.Seq, "cursor", cursor)
		return nil
	}
	// 4. The membership log decides who may write: the author must have
	//    been a writer or admin at the head the envelope names, and the
	//    envelope sealed under that head's key epoch.
	if rep, ok := r.checkMembership(d, env, cursor); !ok {
		r.keepAside(d, cursor, raw)
		if err := env.Verify(); err != nil {
			rep = r.about(env, cursor, ReportBadSignature, err.Error())
		}
		return r.report(d, rep)
	}
	return r.chain(d, env, cursor, raw, nil, stale)
}

// checkMembership checks env's membership head, key epoch and author
// against d's log, and returns the report to make if they fail.
func (r *receiver) checkMembership(d *document, env *envelope.Envelope, cursor uint64) (Report, bool) {
	index, epoch, ok := d.log.state.HeadAt(membership.Hash(env.MembershipHead))
	if !ok {
		return r.about(env, cursor, ReportUnknownHead, fmt.Sprintf("the envelope names membership head %s, which is no entry of this device's log of %d entries: the relay shows members different membership logs, or withheld entries", env.MembershipHead, d.log.state.Len())), false
	}
	if env.Epoch != epoch {
		return r.about(env, cursor, ReportNoEpochKey, fmt.Sprintf("the envelope is sealed under key epoch %d, but its membership head %s is in epoch %d", env.Epoch, env.MembershipHead, epoch)), false
	}
	if role, ok := d.log.state.RoleAt(env.Author, index); !ok || !role.CanWrite() {
		return r.about(env, cursor, ReportNotWriter, fmt.Sprintf("the author was no writer of the document at membership entry %d", index)), false
	}
	if d.epochKey(env.Epoch) == nil {
		return r.about(env, cursor, ReportNoEpochKey, fmt.Sprintf("this device holds no key of epoch %d", env.Epoch)), false
	}
	return Report{}, true
}

// about returns a report on env.
func (r *receiver) about(env *envelope.Envelope, cursor uint64, kind ReportKind, detail string) Report {
	return Report{Kind: kind, Author: shortKey(env.Author[:]), Seq: env.Seq, Cursor: cursor, Detail: detail}
}

// chain places env in its author's chain: the next link is opened and
// applied, anything else kept aside and reported. parkedKey is the
// kept-aside key of an envelope retried after a gap closed, or nil.
// stale is set for a cursor already reported as a rollback, whose
// replayed envelopes need no report of their own.
func (r *receiver) chain(d *document, env *envelope.Envelope, cursor uint64, raw, parkedKey []byte, stale bool) error {
	st := r.author(d, env.Author)
	next := st.Seq + 1
	if env.Seq == next && env.Prev == st.hash() {
		return r.accept(d, env, cursor, raw, parkedKey)
	}

	// Not the next link. Whatever the reason, a forged envelope is
	// reported as forged, not as what its forged header claims.
	if err := env.Verify(); err != nil {
		if parkedKey == nil {
			r.keepAside(d, cursor, raw)
		}
		return r.report(d, r.about(env, cursor, ReportBadSignature, err.Error()))
	}
	switch {
	case env.Seq < next:
		held, ok, err := r.hashAt(d, env.Author, env.Seq)
		if err != nil {
			return err
		}
		if ok && held == env.Hash() {
			// Identical bytes are already applied, so there is nothing
			// to keep aside.
			if stale {
				return nil
			}
			return r.report(d, r.about(env, cursor, ReportReplay, fmt.Sprintf("the relay delivered again the envelope with sequence number %d, which this device already holds", env.Seq)))
		}
		if !ok {
			// NOTE: without the hash of the accepted envelope, a replay
			// and a fork look alike, so the envelope is kept aside.
			if parkedKey == nil {
				r.keepAside(d, cursor, raw)
			}
			return r.report(d, r.about(env, cursor, ReportReplay, fmt.Sprintf("the relay delivered sequence number %d of this author again, after this device accepted up to %d", env.Seq, st.Seq)))
		}
		if parkedKey == nil {
			r.keepAside(d, cursor, raw)
		}
		return r.report(d, r.about(env, cursor, ReportFork, fmt.Sprintf("this device holds another envelope with sequence number %d of this author (hash %s, delivered %s)", env.Seq, held, env.Hash())))
	case env.Seq > next:
		key := parkedKey
		if key == nil {
			key = r.keepAside(d, cursor, raw)
		}
		d.trust.park(env.Author, key, env.Seq)
		if parkedKey != nil {
			return nil // reported when it first arrived
		}
		return r.report(d, r.about(env, cursor, ReportGap, fmt.Sprintf("the relay delivered sequence number %d of this author, but the next one this device expects is %d: envelopes were dropped or reordered", env.Seq, next)))
	default:
		if parkedKey == nil {
			r.keepAside(d, cursor, raw)
		}
		return r.report(d, r.about(env, cursor, ReportBrokenChain, fmt.Sprintf("the envelope names previous envelope %s, but this device holds %s as sequence number %d", env.Prev, st.hash(), st.Seq)))
	}
}

// accept opens the next link of an author's chain, advances the chain
// and applies the update.
func (r *receiver) accept(d *document, env *envelope.Envelope, cursor uint64, raw, parkedKey []byte) error {
	plaintext, openErr := env.Open(d.epochKey(env.Epoch))
	if errors.Is(openErr, envelope.ErrSignature) {
		// A forgery is no link of the author's chain.
		if parkedKey == nil {
			r.keepAside(d, cursor, raw)
		}
		return r.report(d, r.about(env, cursor, ReportBadSignature, openErr.Error()))
	}
	if parkedKey != nil {
		r.b.Del(parkedKey)
	}

	// 1. The author signed this envelope as its next one, so the chain
	//    moves on even if the content is unusable: the relay delivered
	//    what the author wrote.
	st := r.author(d, env.Author)
	hash := env.Hash()
	st.Seq, st.Hash, st.Received = env.Seq, hash[:], r.now.UnixNano()
	indexKey := chainIndexKey(d.id, env.Author, env.Seq)
	r.b.Put(indexKey, hash[:])
	r.hashes[string(indexKey)] = hash
	r.markDirty(d, env.Author)
	if st.Claimed == env.Seq && !bytes.Equal(st.ClaimedHash, hash[:]) {
		err := r.report(d, r.about(env, cursor, ReportFork, fmt.Sprintf("member %s said it received sequence number %d of this author with hash %x, but the relay delivered %s", shortKey(st.ClaimedBy), env.Seq, shortHash(st.ClaimedHash), hash)))
		if err != nil {
			return err
		}
	}

	// 2. Apply the content, or keep it aside.
	switch {
	case errors.Is(openErr, envelope.ErrCommitment):
		r.keepAside(d, cursor, raw)
		if err := r.report(d, r.about(env, cursor, ReportKeyCommitment, openErr.Error())); err != nil {
			return err
		}
	case openErr != nil:
		r.keepAside(d, cursor, raw)
		if err := r.report(d, r.about(env, cursor, ReportUndecryptable, openErr.Error())); err != nil {
			return err
		}
	case env.Kind != envelope.KindUpdate:
		// TODO: apply snapshots and membership changes. Until then they
		// are kept aside for a client that can.
		r.keepAside(d, cursor, raw)
		r.c.log.Warn("delivered envelope of a kind this client does not apply, kept aside", "doc", d.id, "kind", env.Kind.String(), "author", shortKey(env.Author[:]), "seq", env.Seq, "cursor", cursor)
	default:
		if err := r.apply(d, plaintext, cursor, raw); err != nil {
			return err
		}
	}

	// 3. What the author had received from others shows what this device
	//    is missing, or holds differently.
	if err := r.checkSeen(d, env, cursor); err != nil {
		return err
	}

	// 4. An envelope kept aside for a gap that this one closed comes next.
	p, ok := d.trust.takeParked(env.Author, env.Seq+1)
	if !ok {
		return nil
	}
	parkedRaw, err := r.pendingOrStored(p.key)
	if err != nil {
		return err
	}
	next, err := envelope.Unmarshal(parkedRaw)
	if err != nil {
		return nil // it stays kept aside, reported when it arrived
	}
	return r.chain(d, next, parkedCursor(p.key), parkedRaw, p.key, false)
}

// apply applies one update to the CRDT and stores it as an update record,
// compacting when the records reach compactAfter.
func (r *receiver) apply(d *document, update []byte, cursor uint64, raw []byte) error {
	if err := d.crdt.Apply(update); err != nil {
		// The author's update, not the relay, is at fault: keep it for a
		// later version of the client and move on, because one bad update
		// must not stall the document.
		r.c.log.Error("delivered update rejected and kept aside", "doc", d.id, "cursor", cursor, "err", err)
		r.keepAside(d, cursor, raw)
		return nil
	}
	if d.records+1 > compactAfter {
		if err := r.c.compactLocked(r.ctx, d, r.b, &d.meta); err != nil {
			return err
		}
		d.records = 0
		return nil
	}
	r.b.Put(recordKey(d.id, d.meta.NextRecord), update)
	d.meta.NextRecord++
	d.records++
	return nil
}

// checkSeen compares env's list of what its author had received with
// what this device holds.
func (r *receiver) checkSeen(d *document, env *envelope.Envelope, cursor uint64) error {
	self := d.self.member()
	for _, s := range env.Seen {
		if s.Author == self && s.Seq > d.meta.LastSeq {
			// Someone received more of this device's envelopes than it
			// wrote: its local data was lost or copied. Not the relay.
			r.c.log.Warn("a member has seen envelopes of this device that it does not hold", "doc", d.id, "member", shortKey(env.Author[:]), "seq", s.Seq, "own_seq", d.meta.LastSeq)
			continue
		}
		var heldSeq uint64
		if s.Author == self {
			heldSeq = d.meta.LastSeq
		} else if st := d.trust.authors[s.Author]; st != nil {
			heldSeq = st.Seq
		}
		if s.Seq <= heldSeq {
			held, ok, err := r.hashAt(d, s.Author, s.Seq)
			if err != nil {
				return err
			}
			if ok && held != s.Hash {
				rep := Report{Kind: ReportFork, Author: shortKey(s.Author[:]), Seq: s.Seq, Cursor: cursor,
					Detail: fmt.Sprintf("member %s received envelope %s as sequence number %d of this author, but this device holds %s: the relay shows members different histories", shortKey(env.Author[:]), s.Hash, s.Seq, held)}
				if err := r.report(d, rep); err != nil {
					return err
				}
			}
			continue
		}
		st := r.author(d, s.Author)
		if s.Seq > st.Claimed {
			st.Claimed, st.ClaimedHash, st.ClaimedBy = s.Seq, slices.Clone(s.Hash[:]), slices.Clone(env.Author[:8])
			r.markDirty(d, s.Author)
		}
	}
	return nil
}

// checkWithheld reports each author of whom another member has received
// more than this device holds. It runs once the relay has caught up, when
// nothing that an honest relay holds can still be on its way.
func (r *receiver) checkWithheld(d *document) error {
	for author, st := range d.trust.authors {
		if st.Claimed <= st.Seq || st.Claimed <= st.Reported {
			continue
		}
		st.Reported = st.Claimed
		r.markDirty(d, author)
		rep := Report{Kind: ReportWithheld, Author: shortKey(author[:]), Seq: st.Claimed,
			Detail: fmt.Sprintf("member %s received this author's envelopes up to sequence number %d, but this device, caught up with the relay, has accepted them only up to %d", shortKey(st.ClaimedBy), st.Claimed, st.Seq)}
		if err := r.report(d, rep); err != nil {
			return err
		}
	}
	return nil
}

// finish puts the changed author states into the batch.
func (r *receiver) finish() error {
	for d, authors := range r.dirty {
		for author := range authors {
			value, err := msgpack.Marshal(d.trust.authors[author])
			if err != nil {
				return fmt.Errorf("client: encode chain head of document %s: %w", d.id, err)
			}
			r.b.Put(authorStateKey(d.id, author), value)
		}
	}
	return nil
}

// pendingOrStored returns the value of key from the batch, where a
// delivery kept aside in this group is, or else from the store.
func (r *receiver) pendingOrStored(key []byte) ([]byte, error) {
	for i := len(r.b.Ops) - 1; i >= 0; i-- {
		op := r.b.Ops[i]
		if bytes.Equal(op.Key, key) {
			if op.Delete {
				break
			}
			return op.Value, nil
		}
	}
	v, err := r.c.store.Get(r.ctx, key)
	if err != nil {
		return nil, fmt.Errorf("client: read kept-aside envelope: %w", err)
	}
	return v, nil
}

// parkedCursor returns the cursor a kept-aside key was delivered under.
func parkedCursor(key []byte) uint64 {
	if len(key) < 16 {
		return 0
	}
	return binary.BigEndian.Uint64(key[len(key)-16:])
}

func shortHash(h []byte) []byte {
	if len(h) > 8 {
		return h[:8]
	}
	return h
}

// caughtUpLocked checks a document once the relay has sent the whole
// backlog up to cursor. A lower cursor than this device has received is a
// rollback, and authors that others have received more of are withheld.
// Findings are written at once.
func (c *Client) caughtUpLocked(d *document, cursor uint64) {
	ctx := context.Background()
	if _, err := c.trustLocked(ctx, d); err != nil {
		c.log.Error("check document after catching up failed", "doc", d.id, "err", err)
		return
	}
	var b Batch
	r := newReceiver(ctx, c, &b)
	err := func() error {
		if cursor < d.meta.Cursor && d.trust.rollbackAt != d.meta.Cursor {
			d.trust.rollbackAt = d.meta.Cursor
			rep := Report{Kind: ReportRollback, Cursor: cursor, Detail: fmt.Sprintf("the relay caught up at cursor %d, but this device has received up to cursor %d: it serves an older state of the document", cursor, d.meta.Cursor)}
			if err := r.report(d, rep); err != nil {
				return err
			}
		}
		if err := r.checkWithheld(d); err != nil {
			return err
		}
		return r.finish()
	}()
	if err == nil && len(b.Ops) > 0 {
		err = c.store.Write(ctx, &b)
	}
	if err != nil {
		d.trust = nil // reload what the store holds
		c.log.Error("save reports after catching up failed", "doc", d.id, "err", err)
	}
}
