package relay

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"interlude/sync/envelope"
	"interlude/sync/membership"
	"interlude/sync/wire"
)

// maxEntry is the largest membership entry or invitation response the
// relay takes, in bytes. An entry that seals the key to the maximum of
// membership.MaxMembers members is about 115 KiB.
const maxEntry = 256 << 10

// handle runs one request of an authenticated device and returns the reply.
func (c *conn) handle(msg wire.Message) outgoing {
	switch m := msg.(type) {
	case *wire.AppendEntry:
		return outgoing{msg: c.appendEntry(m)}
	case *wire.GetLog:
		return outgoing{msg: c.getLog(m)}
	case *wire.PostInvite:
		return outgoing{msg: c.postInvite(m)}
	case *wire.TakeInvite:
		return outgoing{msg: c.takeInvite(m)}
	case *wire.ListDocs:
		return outgoing{msg: c.listDocs(m)}
	case *wire.Claim:
		return outgoing{msg: c.claim(m)}
	case *wire.PutChain:
		return outgoing{msg: c.putChain(m)}
	case *wire.GetChain:
		return outgoing{msg: c.getChain(m)}
	case *wire.Push:
		return outgoing{msg: c.push(m)}
	case *wire.Subscribe:
		return c.subscribe(m)
	case *wire.Auth:
		return outgoing{msg: c.reject(0, wire.CodeMalformed, nil, "Auth sent twice: this connection is already authenticated")}
	default:
		return outgoing{msg: c.reject(0, wire.CodeMalformed, nil, fmt.Sprintf("message type %d is not a request", msg.Type()))}
	}
}

func (c *conn) appendEntry(m *wire.AppendEntry) wire.Message {
	doc, e := c.parseDoc(m.Ref, m.Doc)
	if e != nil {
		return e
	}
	if len(m.Entry) > maxEntry {
		return c.reject(m.Ref, wire.CodeTooLarge, &doc, fmt.Sprintf("membership entry of %d bytes is larger than the limit of %d", len(m.Entry), maxEntry))
	}
	keys := c.keysFor(doc)
	index, sig, stored, err := c.srv.store.appendMember(doc, keys, m.Entry)
	if staleErr, ok := errors.AsType[*staleLogError](err); ok {
		return c.reject(m.Ref, wire.CodeStaleLog, &doc, staleErr.Error())
	}
	switch {
	case errors.Is(err, membership.ErrNotAllowed):
		if member, merr := c.srv.store.isMemberAny(doc, keys); merr == nil && !member {
			// A non-member learns nothing about which documents exist.
			return c.reject(m.Ref, wire.CodeNotMember, &doc, fmt.Sprintf("this device is not a member of document %s: ask an admin to add it", doc))
		}
		return c.reject(m.Ref, wire.CodeForbidden, &doc, err.Error())
	case errors.Is(err, membership.ErrMalformed), errors.Is(err, membership.ErrSignature), errors.Is(err, membership.ErrChain), errors.Is(err, membership.ErrInvalid):
		return c.reject(m.Ref, wire.CodeBadEntry, &doc, err.Error())
	case err != nil:
		return c.internal(m.Ref, doc, "append membership entry", err)
	}
	if stored {
		c.srv.hub.notify(doc)
		// appendMember decoded and checked the entry already.
		if e, err := membership.Decode(m.Entry); err == nil && (e.Op == membership.OpAdd || e.Op == membership.OpAddDevice) {
			c.srv.notifyShared(e.Subject.Sign)
		}
		event := AuditAddMember
		if index == 0 {
			event = AuditCreate
			c.log.Info("document created", "doc", doc.String())
		} else {
			c.log.Info("membership entry appended", "doc", doc.String(), "index", index)
		}
		c.auditEvent(event, doc[:], index, uint64(len(m.Entry)), "")
	}
	return &wire.EntryAck{Ref: m.Ref, Doc: doc[:], Index: index, Countersig: sig}
}

func (c *conn) getLog(m *wire.GetLog) wire.Message {
	doc, e := c.parseDoc(m.Ref, m.Doc)
	if e != nil {
		return e
	}
	keys := c.keysFor(doc)
	member, err := c.srv.store.isMemberAny(doc, keys)
	if err != nil {
		return c.internal(m.Ref, doc, "check membership", err)
	}
	last := uint64(math.MaxUint64)
	if !member {
		// A former member gets the log up to the entry that removed it,
		// so its client learns of the removal instead of guessing
		// between a removal and a relay that lost the document.
		removal, ok, err := c.srv.store.lastRemoval(doc, keys)
		if err != nil {
			return c.internal(m.Ref, doc, "read membership log", err)
		}
		if !ok {
			if e := c.checkMember(m.Ref, doc, keys); e != nil {
				return e
			}
		} else {
			last = removal
		}
	}
	entries, more, err := c.srv.store.memberLog(doc, m.From, last)
	if err != nil {
		return c.internal(m.Ref, doc, "read membership log", err)
	}
	return &wire.Log{Ref: m.Ref, Doc: doc[:], Entries: entries, More: more}
}

func (c *conn) postInvite(m *wire.PostInvite) wire.Message {
	if len(m.ID) != 16 || len(m.Response) == 0 || len(m.Response) > maxEntry {
		return c.reject(m.Ref, wire.CodeMalformed, nil, fmt.Sprintf("invitation id of %d bytes and response of %d: want 16 and 1 to %d", len(m.ID), len(m.Response), maxEntry))
	}
	ok, err := c.srv.store.postInvite(m.ID, m.Response)
	if errors.Is(err, errInviteNotOpen) {
		return c.reject(m.Ref, wire.CodeNotFound, nil, "no open invitation matches this link: check that the whole link was copied unchanged, or ask the inviter to sync so the relay learns of it")
	}
	if err != nil {
		c.log.Error("store invitation response: Badger failed", "ref", m.Ref, "err", err)
		return &wire.Error{Ref: m.Ref, Code: wire.CodeInternal, Message: "the relay failed to store the response; retry later"}
	}
	if !ok {
		return c.reject(m.Ref, wire.CodeInvitationUsed, nil, "this invitation already has a response from someone else: ask the inviter for a new link")
	}
	c.srv.notifyInvite([16]byte(m.ID))
	return &wire.OK{Ref: m.Ref}
}

func (c *conn) takeInvite(m *wire.TakeInvite) wire.Message {
	if len(m.ID) != 16 {
		return c.reject(m.Ref, wire.CodeMalformed, nil, fmt.Sprintf("invitation id of %d bytes, want 16", len(m.ID)))
	}
	resp, err := c.srv.store.takeInvite(m.ID)
	if err != nil {
		c.log.Error("read invitation response: Badger failed", "ref", m.Ref, "err", err)
		return &wire.Error{Ref: m.Ref, Code: wire.CodeInternal, Message: "the relay failed to read the response; retry later"}
	}
	if len(resp) == 0 {
		c.waitInvite([16]byte(m.ID))
	}
	return &wire.Invite{Ref: m.Ref, ID: m.ID, Response: resp}
}

// maxListGrants is the maximum number of grants in one Docs reply.
// wire.Decode accepts at most 65536 msgpack elements in a frame, and a
// Docs frame has four per grant plus five, so a reply of more than 16382
// grants would fail to decode at the client. The cap leaves room below
// that, and a test sends a full reply over the WebSocket.
const maxListGrants = 8192

// listDocs returns one page of the device's documents, after the document
// id m.After and at most m.Limit or maxListGrants of them.
func (c *conn) listDocs(m *wire.ListDocs) wire.Message {
	if len(m.After) != 0 && len(m.After) != len(envelope.DocID{}) {
		return c.reject(m.Ref, wire.CodeMalformed, nil, fmt.Sprintf("ListDocs After of %d bytes, want empty for the first page or a document id of %d bytes", len(m.After), len(envelope.DocID{})))
	}
	limit := maxListGrants
	if m.Limit > 0 && m.Limit < maxListGrants {
		limit = int(m.Limit)
	}
	grants, more, err := c.srv.store.grants(c.device, m.After, limit)
	var claimed []wire.Grant
	if err == nil {
		claimed, err = c.claimedGrants(m.After)
	}
	if err != nil {
		c.log.Error("list documents: Badger read failed", "ref", m.Ref, "err", err)
		return &wire.Error{Ref: m.Ref, Code: wire.CodeInternal, Message: "the relay failed to read its storage; retry later"}
	}
	grants, more = mergeGrants(grants, more, claimed, limit)
	return &wire.Docs{Ref: m.Ref, Grants: grants, More: more}
}

// push checks and stores one envelope. The checks run from the cheapest
// to the most expensive, and all come before the sequence and chain
// checks, so a rejected push never consumes a sequence number.
func (c *conn) push(m *wire.Push) wire.Message {
	doc, e := c.parseDoc(m.Ref, m.Doc)
	if e != nil {
		return e
	}
	keys := c.keysFor(doc)
	if e := c.checkMember(m.Ref, doc, keys); e != nil {
		return e
	}

	env, err := envelope.Unmarshal(m.Envelope)
	if err != nil {
		return c.reject(m.Ref, wire.CodeBadEnvelope, &doc, err.Error())
	}
	if env.Doc != doc {
		return c.reject(m.Ref, wire.CodeBadEnvelope, &doc, fmt.Sprintf("envelope is for document %s, but the push names document %s", env.Doc, doc))
	}
	if !slices.Contains(keys, env.Author) {
		return c.reject(m.Ref, wire.CodeBadEnvelope, &doc, fmt.Sprintf("envelope author %x is neither this connection's device %x nor a key it claimed for document %s: claim the key first, or push only envelopes this device signed", env.Author[:8], c.device[:8], doc))
	}
	if env.Kind == envelope.KindEphemeral {
		return c.reject(m.Ref, wire.CodeBadEnvelope, &doc, "ephemeral envelopes are not stored: push only updates, snapshots and membership changes")
	}
	if err := env.Verify(); err != nil {
		return c.reject(m.Ref, wire.CodeBadSignature, &doc, err.Error())
	}
	// The author's rights are checked under the document's lock, with
	// the membership append that could change them, so an author demoted
	// while its push waits for the lock cannot slip one more in.
	var rejection *wire.Error
	check := func(st *membership.State) error {
		if rejection = c.checkWriter(m.Ref, doc, env, st); rejection != nil {
			return errRejected
		}
		return nil
	}
	// Unmarshal accepted only canonical bytes, so the hash of the pushed
	// bytes is the envelope's hash.
	cursor, stored, err := c.srv.store.appendEnvelope(doc, env.Author, env.Seq, env.Prev, env.Hash(), m.Envelope, check)
	if rejection != nil {
		return rejection
	}
	if seqErr, ok := errors.AsType[*sequenceError](err); ok {
		return c.reject(m.Ref, wire.CodeBadSequence, &doc, seqErr.Error())
	}
	if chainErr, ok := errors.AsType[*chainError](err); ok {
		return c.reject(m.Ref, wire.CodeBadChain, &doc, chainErr.Error())
	}
	if err != nil {
		return c.internal(m.Ref, doc, "store envelope", err)
	}
	if stored {
		c.srv.hub.notify(doc)
	}
	c.auditEvent(AuditPush, doc[:], cursor, uint64(len(m.Envelope)), "")
	return &wire.Ack{Ref: m.Ref, Doc: doc[:], Cursor: cursor}
}

func (c *conn) subscribe(m *wire.Subscribe) outgoing {
	doc, e := c.parseDoc(m.Ref, m.Doc)
	if e != nil {
		return outgoing{msg: e}
	}
	if e := c.checkMember(m.Ref, doc, c.keysFor(doc)); e != nil {
		return outgoing{msg: e}
	}
	sub := &subscription{
		doc:        doc,
		includeOwn: m.IncludeOwn,
		wake:       c.wake,
		pos:        m.After,
		entryPos:   m.EntriesFrom,
	}
	return outgoing{msg: &wire.OK{Ref: m.Ref}, subscribe: sub}
}

func (c *conn) parseDoc(ref uint64, b []byte) (envelope.DocID, *wire.Error) {
	var doc envelope.DocID
	if len(b) != len(doc) {
		return doc, c.reject(ref, wire.CodeMalformed, nil, fmt.Sprintf("document id of %d bytes, want %d", len(b), len(doc)))
	}
	copy(doc[:], b)
	return doc, nil
}

// checkMember rejects a connection none of whose keys for doc is a
// member of it. A document that does not exist gets the same Error, so a
// non-member learns nothing about which documents exist.
func (c *conn) checkMember(ref uint64, doc envelope.DocID, keys []deviceKey) *wire.Error {
	member, err := c.srv.store.isMemberAny(doc, keys)
	if err != nil {
		return c.internal(ref, doc, "check membership", err)
	}
	if !member {
		return c.reject(ref, wire.CodeNotMember, &doc, fmt.Sprintf("this device is not a member of document %s: ask a member to add it", doc))
	}
	return nil
}

// errRejected signals to appendEnvelope that the check rejected a push, whose
// reply the check has already made.
var errRejected = errors.New("push rejected")

// checkWriter rejects an envelope whose author is not a writer or admin
// in the current membership log, or whose membership head and key epoch
// are not an entry of the log and that entry's epoch.
func (c *conn) checkWriter(ref uint64, doc envelope.DocID, env *envelope.Envelope, st *membership.State) *wire.Error {
	m, ok := st.Member(env.Author)
	if !ok || !m.Role.CanWrite() {
		return c.reject(ref, wire.CodeForbidden, &doc, fmt.Sprintf("author %x is not a writer of document %s: ask an admin for the writer role", env.Author[:8], doc))
	}
	_, epoch, ok := st.HeadAt(membership.Hash(env.MembershipHead))
	if !ok {
		return c.reject(ref, wire.CodeBadEpoch, &doc, fmt.Sprintf("envelope names membership head %s, which is no entry of the log of document %s: fetch the log and seal again", env.MembershipHead, doc))
	}
	if env.Epoch != epoch {
		return c.reject(ref, wire.CodeBadEpoch, &doc, fmt.Sprintf("envelope has key epoch %d, but its membership head is in epoch %d", env.Epoch, epoch))
	}
	return nil
}

// reject logs a rejected request and returns the Error to send. doc may be
// nil when the request names no valid document.
func (c *conn) reject(ref uint64, code wire.Code, doc *envelope.DocID, message string) *wire.Error {
	attrs := []any{"code", string(code), "ref", ref}
	var docID []byte
	if doc != nil {
		attrs = append(attrs, "doc", doc.String())
		docID = doc[:]
	}
	c.log.Info("request rejected", append(attrs, "reason", message)...)
	c.auditEvent(AuditReject, docID, 0, 0, string(code))
	return &wire.Error{Ref: ref, Code: code, Message: message}
}

// internal logs a storage failure and returns a CodeInternal Error that
// keeps the failure's details out of the reply.
func (c *conn) internal(ref uint64, doc envelope.DocID, op string, err error) *wire.Error {
	c.log.Error(op+": Badger failed", "ref", ref, "doc", doc.String(), "err", err)
	return &wire.Error{Ref: ref, Code: wire.CodeInternal, Message: "the relay failed to " + op + "; retry later"}
}

// requestRef returns the Ref of a request, or 0 for other messages.
func requestRef(msg wire.Message) uint64 {
	switch m := msg.(type) {
	case *wire.AppendEntry:
		return m.Ref
	case *wire.GetLog:
		return m.Ref
	case *wire.PostInvite:
		return m.Ref
	case *wire.TakeInvite:
		return m.Ref
	case *wire.ListDocs:
		return m.Ref
	case *wire.Subscribe:
		return m.Ref
	case *wire.Push:
		return m.Ref
	case *wire.Claim:
		return m.Ref
	case *wire.PutChain:
		return m.Ref
	case *wire.GetChain:
		return m.Ref
	}
	return 0
}

// maxConnInvites bounds the invitations one connection waits on. An
// inviter past it still gets responses, at its client's next timed pass.
const maxConnInvites = 4096

// waitInvite records that this connection opened invitation id and waits
// for its response.
func (c *conn) waitInvite(id [16]byte) {
	c.claimMu.Lock()
	defer c.claimMu.Unlock()
	if c.invites == nil {
		c.invites = make(map[[16]byte]struct{})
	}
	if len(c.invites) < maxConnInvites {
		c.invites[id] = struct{}{}
	}
}

// stopWaitingInvite reports whether this connection waited on invitation
// id, and stops waiting.
func (c *conn) stopWaitingInvite(id [16]byte) bool {
	c.claimMu.Lock()
	defer c.claimMu.Unlock()
	_, ok := c.invites[id]
	delete(c.invites, id)
	return ok
}
