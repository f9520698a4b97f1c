package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/vmihailenco/msgpack/v5"

	"interlude/sync/envelope"
	"interlude/sync/membership"
)

// Each document carries its signed membership log (package
// sync/membership). The client keeps a copy of the log with the relay's
// countersignature of each entry, the document key of every key epoch it
// can open, and the membership changes this device asked for but the
// relay has not accepted yet. An admin's client turns each such change
// into an entry on top of the newest log when it syncs, so two admins
// changing members at once do not lose either change.

// More report kinds, about the membership log.
const (
	// ReportMembershipFork: the relay countersigned two different
	// entries at one index of the membership log. Detail names both
	// hashes. With both countersignatures, the pair proves that the relay
	// showed members different logs.
	ReportMembershipFork ReportKind = "membership_fork"
	// ReportBadEntry: a delivered membership entry does not decode,
	// breaks a rule of the log, or lacks a valid countersignature.
	ReportBadEntry ReportKind = "bad_entry"
	// ReportUnknownHead: an envelope names a membership head that is no
	// entry of the log this device holds: the relay shows members
	// different logs, or it withheld entries.
	ReportUnknownHead ReportKind = "unknown_head"
	// ReportNotWriter: an envelope's author was no writer or admin at the
	// membership head it names.
	ReportNotWriter ReportKind = "not_writer"
	// ReportNoEpochKey: an envelope is sealed under a key epoch this
	// device holds no key for, or one its membership head does not have.
	ReportNoEpochKey ReportKind = "no_epoch_key"
)

// ErrNotAdmin is returned for a membership change asked of a device that
// is not an admin of the document.
var ErrNotAdmin = errors.New("client: this device is not an admin of the document")

// ErrNotMember is returned for a removal or role change of a key that is
// not a member of the document, such as a device id of someone who
// joined by invitation under a key of their own for the document.
var ErrNotMember = errors.New("client: not a member of the document")

// ErrAlreadyMember is returned by AddMember and Share for a device whose
// key in the document this device has recorded as a current member.
var ErrAlreadyMember = errors.New("client: already a member")

// logRecord is one stored entry of the membership log.
type logRecord struct {
	_msgpack   struct{} `msgpack:",as_array"`
	Entry      []byte
	Countersig []byte // empty until the relay accepted the entry
}

// pendingOp is a membership change this device asked for, stored until
// the relay accepts the entry made of it.
type pendingOp struct {
	_msgpack struct{} `msgpack:",as_array"`
	N        uint64   // position in the store, so changes keep their order
	Op       uint8
	Sign     []byte
	Box      []byte
	Role     uint8
}

// memberLog is a document's membership log as this device holds it.
// Guarded by Client.mu.
type memberLog struct {
	state   *membership.State
	entries []*membership.Entry
	sigs    [][]byte
	ops     []pendingOp
	nextOp  uint64
}

func logPrefix(id envelope.DocID) []byte { return append(docPrefix(id), "/mlog/"...) }
func logKey(id envelope.DocID, index uint64) []byte {
	return binary.BigEndian.AppendUint64(logPrefix(id), index)
}
func opPrefix(id envelope.DocID) []byte { return append(docPrefix(id), "/mop/"...) }
func opKey(id envelope.DocID, n uint64) []byte {
	return binary.BigEndian.AppendUint64(opPrefix(id), n)
}

// loadLog reads a document's membership log and pending changes.
func (c *Client) loadLog(ctx context.Context, id envelope.DocID) (*memberLog, error) {
	l := &memberLog{state: &membership.State{}}
	err := c.store.Scan(ctx, logPrefix(id), func(_, value []byte) error {
		var rec logRecord
		if err := msgpack.Unmarshal(value, &rec); err != nil {
			return fmt.Errorf("decode membership entry: %w", err)
		}
		e, err := membership.Decode(rec.Entry)
		if err != nil {
			return err
		}
		if err := l.state.Apply(e); err != nil {
			return err
		}
		l.entries = append(l.entries, e)
		l.sigs = append(l.sigs, rec.Countersig)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("client: read membership log of document %s: %w", id, err)
	}
	err = c.store.Scan(ctx, opPrefix(id), func(_, value []byte) error {
		var op pendingOp
		if err := msgpack.Unmarshal(value, &op); err != nil {
			return fmt.Errorf("decode membership change: %w", err)
		}
		l.ops = append(l.ops, op)
		l.nextOp = op.N + 1
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("client: read membership changes of document %s: %w", id, err)
	}
	return l, nil
}

// epochKey returns the document key of epoch, or nil if this device holds
// none.
func (d *document) epochKey(epoch uint32) *[envelope.KeySize]byte {
	if epoch == 0 || int(epoch) > len(d.meta.EpochKeys) {
		return nil
	}
	k := d.meta.EpochKeys[epoch-1]
	if len(k) != envelope.KeySize {
		return nil
	}
	return (*[envelope.KeySize]byte)(bytes.Clone(k))
}

// setEpochKey records the key of epoch, and keeps meta.Key the newest.
func (d *document) setEpochKey(epoch uint32, key *[envelope.KeySize]byte) {
	for len(d.meta.EpochKeys) < int(epoch) {
		d.meta.EpochKeys = append(d.meta.EpochKeys, nil)
	}
	d.meta.EpochKeys[epoch-1] = bytes.Clone(key[:])
	if int(epoch) == len(d.meta.EpochKeys) {
		d.meta.Key = bytes.Clone(key[:])
	}
}

// learnKeysLocked opens every epoch key of d's log that this device can:
// those sealed to it, and then each older one from the prior key a
// removal carries, walking back from the newest. It reports whether it
// learned any.
func (c *Client) learnKeysLocked(d *document) bool {
	learned := false
	self := d.self.member()
	boxPub := d.self.public.Box
	for _, e := range d.log.entries {
		if d.epochKey(e.Epoch) != nil {
			continue
		}
		if k, ok := e.OpenKey(self, &boxPub, &d.self.boxKey); ok {
			d.setEpochKey(e.Epoch, k)
			learned = true
		}
	}
	for i := len(d.log.entries) - 1; i >= 0; i-- {
		e := d.log.entries[i]
		if !e.Op.Rotates() || d.epochKey(e.Epoch-1) != nil {
			continue
		}
		k := d.epochKey(e.Epoch)
		if k == nil {
			continue
		}
		prior, err := e.OpenPrior(k)
		if err != nil {
			c.log.Error("prior epoch key in the membership log does not open", "doc", d.id, "index", e.Index, "err", err)
			continue
		}
		d.setEpochKey(e.Epoch-1, prior)
		learned = true
	}
	return learned
}

// appendEntryLocked applies a checked entry to d's log and puts it into b.
// The caller writes d's meta, whose epoch keys may have grown, with b.
func (c *Client) appendEntryLocked(d *document, e *membership.Entry, raw, countersig []byte, b *Batch) error {
	if err := d.log.state.Apply(e); err != nil {
		return err
	}
	d.log.entries = append(d.log.entries, e)
	d.log.sigs = append(d.log.sigs, countersig)
	rec, err := msgpack.Marshal(&logRecord{Entry: raw, Countersig: countersig})
	if err != nil {
		return fmt.Errorf("client: encode membership entry: %w", err)
	}
	b.Put(logKey(d.id, e.Index), rec)
	c.learnKeysLocked(d)
	return nil
}

// receiveEntry checks one entry the relay sent, by GetLog or in a
// subscription, and appends it if it is the log's next. relayKey is the
// session's countersigning key. An entry this device already holds is
// compared: a different one at the same index is a fork.
func (r *receiver) receiveEntry(d *document, raw, countersig []byte, relayKey ed25519.PublicKey) error {
	e, err := membership.Decode(raw)
	if err != nil {
		return r.report(d, Report{Kind: ReportBadEntry, Detail: err.Error()})
	}
	if e.Doc != d.id {
		return r.report(d, Report{Kind: ReportBadEntry, Detail: fmt.Sprintf("the relay delivered a membership entry of document %x as document %s", e.Doc[:], d.id)})
	}
	hash := e.Hash()
	if !membership.VerifyCountersign(relayKey, e.Doc, e.Index, hash, countersig) {
		return r.report(d, Report{Kind: ReportBadEntry, Seq: e.Index, Detail: fmt.Sprintf("membership entry %d carries no valid countersignature of the relay's key", e.Index)})
	}
	l := d.log
	if e.Index < l.state.Len() {
		held := l.entries[e.Index]
		if held.Hash() == hash {
			if len(l.sigs[e.Index]) == 0 {
				// This device's own entry, accepted while the reply was lost.
				return r.c.storeCountersigLocked(d, e.Index, raw, countersig, r.b)
			}
			return nil
		}
		detail := fmt.Sprintf("this device holds entry %d with hash %s, the relay delivered %s", e.Index, held.Hash(), hash)
		proof := membership.ForkProof{Doc: d.id, Index: e.Index, A: held.Hash(), B: hash, SigA: l.sigs[e.Index], SigB: countersig, RelayPublicKey: relayKey}
		if proof.Verify() == nil {
			detail += ", both countersigned by the relay: proof that it shows members different membership logs"
		}
		return r.report(d, Report{Kind: ReportMembershipFork, Seq: e.Index, Detail: detail})
	}
	if e.Index > l.state.Len() {
		return r.report(d, Report{Kind: ReportBadEntry, Seq: e.Index, Detail: fmt.Sprintf("the relay delivered membership entry %d, but this device holds only %d: entries were withheld", e.Index, l.state.Len())})
	}
	if err := r.c.appendEntryLocked(d, e, raw, countersig, r.b); err != nil {
		return r.report(d, Report{Kind: ReportBadEntry, Seq: e.Index, Detail: err.Error()})
	}
	r.c.log.Info("membership entry applied", "doc", d.id, "index", e.Index, "op", e.Op.String(), "epoch", e.Epoch)
	return nil
}

func (c *Client) storeCountersigLocked(d *document, index uint64, raw, countersig []byte, b *Batch) error {
	d.log.sigs[index] = countersig
	rec, err := msgpack.Marshal(&logRecord{Entry: raw, Countersig: countersig})
	if err != nil {
		return fmt.Errorf("client: encode membership entry: %w", err)
	}
	b.Put(logKey(d.id, index), rec)
	return nil
}

// adminDocLocked returns doc if this device is an admin of it, for a
// change only admins may make.
func (c *Client) adminDocLocked(doc envelope.DocID) (*document, error) {
	if c.closed {
		return nil, ErrClosed
	}
	d, ok := c.docs[doc]
	if !ok {
		return nil, fmt.Errorf("%w %s", ErrUnknownDocument, doc)
	}
	if m, ok := d.log.state.Member(d.self.member()); !ok || m.Role != membership.RoleAdmin {
		return nil, fmt.Errorf("%w %s: ask an admin to make this change", ErrNotAdmin, doc)
	}
	return d, nil
}

// queueOp stores a membership change of doc for the next sync.
func (c *Client) queueOp(ctx context.Context, doc envelope.DocID, op pendingOp) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, err := c.adminDocLocked(doc)
	if err != nil {
		return err
	}
	switch membership.Op(op.Op) {
	case membership.OpRemove, membership.OpChangeRole:
		// A change of a key that is no member would be dropped at the
		// next sync while the caller believed it made.
		_, member := d.log.state.Member([32]byte(op.Sign))
		if !member && !c.hasOpLocked(d, membership.OpAdd, op.Sign) {
			return fmt.Errorf("%w %s: key %x is not one of its members. A person who joined by a link is a member under an id of their own for this document: pick the id from the document's member list", ErrNotMember, doc, op.Sign[:8])
		}
	}
	return c.queueOpLocked(ctx, d, op)
}

// queueOpLocked stores op as a change of d for the next sync. The caller
// has checked that this device may make it.
func (c *Client) queueOpLocked(ctx context.Context, d *document, op pendingOp) error {
	return c.queueOpWithLocked(ctx, d, op, &Batch{})
}

// queueOpWithLocked is queueOpLocked that saves the change in one write
// with b, so a crash keeps both or neither.
func (c *Client) queueOpWithLocked(ctx context.Context, d *document, op pendingOp, b *Batch) error {
	doc := d.id
	op.N = d.log.nextOp
	value, err := msgpack.Marshal(&op)
	if err != nil {
		return fmt.Errorf("client: encode membership change: %w", err)
	}
	b.Put(opKey(doc, op.N), value)
	if err := c.store.Write(ctx, b); err != nil {
		return fmt.Errorf("client: save membership change of document %s: %w", doc, err)
	}
	d.log.nextOp++
	d.log.ops = append(d.log.ops, op)
	c.log.Info("membership change saved", "doc", doc, "op", membership.Op(op.Op).String())
	c.notifyLocked(doc)
	c.signalWake()
	return nil
}

// Share offers doc to the device with public id to, to join as a writer
// (see AddMember). Only an admin may share.
func (c *Client) Share(ctx context.Context, doc envelope.DocID, to PublicID) error {
	return c.AddMember(ctx, doc, to, membership.RoleWriter)
}

// checkMemberRole rejects a role other than reader, writer or admin, the
// roles a member can be given.
func checkMemberRole(role membership.Role) error {
	if role != membership.RoleReader && role != membership.RoleWriter && role != membership.RoleAdmin {
		return fmt.Errorf("client: invalid role %d: want reader, writer or admin", role)
	}
	return nil
}

// AddMember offers doc to the device with public id to, to join with
// role. The offer goes out on the next sync. That device replies with its
// own key for doc once it syncs, and the next sync here adds that key, so
// the relay's log never names the device key (see handoff.go). Only an
// admin may add members.
func (c *Client) AddMember(ctx context.Context, doc envelope.DocID, to PublicID, role membership.Role) error {
	if len(to.Sign) != ed25519.PublicKeySize {
		return fmt.Errorf("client: invalid public id: signing key of %d bytes", len(to.Sign))
	}
	if err := checkMemberRole(role); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d, err := c.adminDocLocked(doc)
	if err != nil {
		return err
	}
	if bytes.Equal(to.Sign, c.id.public.Sign) {
		return fmt.Errorf("client: %s is this device: share with another device's public id", to.Fingerprint())
	}
	// A device removed as lost from this device's person keeps running
	// in other hands.
	if err := c.checkNotRevoked(ctx, to); err != nil {
		return err
	}
	// A device recorded as a member would reply with a key that opens
	// nothing (see replyToOffer), so the offer would only add a dead member.
	if c.knownMemberLocked(ctx, d, to.Sign) {
		return fmt.Errorf("%w: device %s is a member of document %s already", ErrAlreadyMember, to.Fingerprint(), doc)
	}
	_, err = c.offerToLocked(ctx, d, to, role, true)
	return err
}

// AddMemberByKey adds the device with public id to to doc with role
// under its device key, on the next sync, without an offer. It is for a
// device that cannot reply to offers, such as one that stays offline
// until the change is sent; the relay can then match that key across
// every document shared this way.
func (c *Client) AddMemberByKey(ctx context.Context, doc envelope.DocID, to PublicID, role membership.Role) error {
	if len(to.Sign) != ed25519.PublicKeySize {
		return fmt.Errorf("client: invalid public id: signing key of %d bytes", len(to.Sign))
	}
	return c.queueOp(ctx, doc, pendingOp{Op: uint8(membership.OpAdd), Sign: slices.Clone(to.Sign), Box: slices.Clone(to.Box[:]), Role: uint8(role)})
}

// RemoveMember removes the member with signing key member from doc. On
// the next sync this device starts a new key epoch: every later update is
// sealed under a key the removed member never receives.
//
// A member that is not an admin may remove the keys of its own person,
// such as a lost device's key that UnlinkDevice could not match: that
// change is a device removal, which any member may make for its person.
func (c *Client) RemoveMember(ctx context.Context, doc envelope.DocID, member ed25519.PublicKey) error {
	if len(member) != ed25519.PublicKeySize {
		return fmt.Errorf("client: invalid member key of %d bytes, want %d", len(member), ed25519.PublicKeySize)
	}
	c.mu.Lock()
	if d, ok := c.docs[doc]; ok && !c.closed {
		st := d.log.state
		self := d.self.member()
		m, _ := st.Member(self)
		mine, ok1 := st.Person(self)
		theirs, ok2 := st.Person([32]byte(member))
		_, current := st.Member([32]byte(member))
		if m.Role != membership.RoleAdmin && ok1 && ok2 && mine == theirs && current && [32]byte(member) != self {
			defer c.mu.Unlock()
			if c.hasOpLocked(d, membership.OpRemoveDevice, member) {
				return nil
			}
			return c.queueOpLocked(ctx, d, pendingOp{Op: uint8(membership.OpRemoveDevice), Sign: slices.Clone(member)})
		}
	}
	c.mu.Unlock()
	return c.queueOp(ctx, doc, pendingOp{Op: uint8(membership.OpRemove), Sign: slices.Clone(member)})
}

// ChangeRole gives the member with signing key member of doc the role,
// on the next sync.
func (c *Client) ChangeRole(ctx context.Context, doc envelope.DocID, member ed25519.PublicKey, role membership.Role) error {
	if len(member) != ed25519.PublicKeySize {
		return fmt.Errorf("client: invalid member key of %d bytes, want %d", len(member), ed25519.PublicKeySize)
	}
	return c.queueOp(ctx, doc, pendingOp{Op: uint8(membership.OpChangeRole), Sign: slices.Clone(member), Role: uint8(role)})
}

// Members returns doc's current members, as this device's copy of the
// membership log has them.
func (c *Client) Members(doc envelope.DocID) ([]membership.Member, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.docs[doc]
	if !ok {
		return nil, fmt.Errorf("%w %s", ErrUnknownDocument, doc)
	}
	return d.log.state.Members(), nil
}

// MembershipCode returns a short code of the membership log's head that
// two members compare, by phone or in person: if the codes differ while
// both are synced, the relay shows them different logs.
func (c *Client) MembershipCode(doc envelope.DocID) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.docs[doc]
	if !ok {
		return "", fmt.Errorf("%w %s", ErrUnknownDocument, doc)
	}
	n := d.log.state.Len()
	if n == 0 {
		return "", fmt.Errorf("client: document %s has no membership log yet", doc)
	}
	return membership.HeadCode(d.id, n-1, d.log.state.Head()), nil
}

// buildEntryLocked turns the first pending change of d into an entry on
// top of the current log. It returns nil and drops the change if the log
// makes it impossible, such as adding a member twice.
func (c *Client) buildEntryLocked(ctx context.Context, d *document) (*membership.Entry, error) {
	for len(d.log.ops) > 0 {
		op := d.log.ops[0]
		// An addition a reply asked for was checked against the log as
		// it was then. A key that has been a member since, and was
		// removed, stays out: the reply may predate the removal.
		if stale, err := c.staleReplyLocked(ctx, d, op); err != nil || stale {
			if err != nil {
				return nil, err
			}
			c.log.Warn("membership change dropped: a reply asked to add a key that was removed since", "doc", d.id, "op", membership.Op(op.Op).String())
			if err := c.dropOpLocked(ctx, d, op.N); err != nil {
				return nil, err
			}
			continue
		}
		e, err := c.entryFor(d, op)
		if err == nil {
			return e, nil
		}
		if !errors.Is(err, membership.ErrInvalid) && !errors.Is(err, membership.ErrNotAllowed) {
			return nil, err
		}
		c.log.Warn("membership change dropped: the log does not allow it", "doc", d.id, "op", membership.Op(op.Op).String(), "err", err)
		if err := c.dropOpLocked(ctx, d, op.N); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

func (c *Client) entryFor(d *document, op pendingOp) (*membership.Entry, error) {
	st := d.log.state
	key := d.epochKey(st.Epoch())
	if key == nil {
		return nil, fmt.Errorf("client: this device holds no key of epoch %d of document %s", st.Epoch(), d.id)
	}
	var subject [32]byte
	copy(subject[:], op.Sign)
	switch membership.Op(op.Op) {
	case membership.OpAdd:
		m := membership.Member{Sign: subject, Role: membership.Role(op.Role)}
		copy(m.Box[:], op.Box)
		return st.NewAdd(d.self.signing, m, key)
	case membership.OpRemove:
		e, _, err := st.NewRemove(d.self.signing, subject, key)
		return e, err
	case membership.OpChangeRole:
		return st.NewChangeRole(d.self.signing, subject, membership.Role(op.Role))
	case membership.OpAddDevice:
		m := membership.Member{Sign: subject}
		copy(m.Box[:], op.Box)
		return st.NewAddDevice(d.self.signing, m, key)
	case membership.OpRemoveDevice:
		e, _, err := st.NewRemoveDevice(d.self.signing, subject, key)
		return e, err
	}
	return nil, fmt.Errorf("%w: unknown membership change %d", membership.ErrInvalid, op.Op)
}

func (c *Client) dropOpLocked(ctx context.Context, d *document, n uint64) error {
	var b Batch
	b.Del(opKey(d.id, n))
	if err := c.store.Write(ctx, &b); err != nil {
		return fmt.Errorf("client: save membership change of document %s: %w", d.id, err)
	}
	d.log.ops = slices.DeleteFunc(d.log.ops, func(op pendingOp) bool { return op.N == n })
	c.notifyLocked(d.id)
	return nil
}
