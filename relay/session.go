package relay

import (
	"crypto/ed25519"
	"errors"
	"fmt"

	"interlude/sync/envelope"
	"interlude/sync/wire"
)

// maxSealedKey is the largest sealed document key the relay stores, in
// bytes. A document key sealed to a device is well under 100 bytes; the
// limit keeps a Docs reply with many grants far below wire.MaxFrame.
const maxSealedKey = 1024

// handle runs one request of an authenticated device and returns the reply.
func (c *conn) handle(msg wire.Message) outgoing {
	switch m := msg.(type) {
	case *wire.Create:
		return outgoing{msg: c.create(m)}
	case *wire.AddMember:
		return outgoing{msg: c.addMember(m)}
	case *wire.ListDocs:
		return outgoing{msg: c.listDocs(m)}
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

func (c *conn) create(m *wire.Create) wire.Message {
	doc, e := c.parseDoc(m.Ref, m.Doc)
	if e != nil {
		return e
	}
	if e := c.checkSealedKey(m.Ref, doc, m.SealedKey); e != nil {
		return e
	}

	result, err := c.srv.store.create(doc, c.device, m.SealedKey)
	if err != nil {
		return c.internal(m.Ref, doc, "create document", err)
	}
	switch result {
	case docOwnedByOthers:
		return c.reject(m.Ref, wire.CodeDocExists, &doc, fmt.Sprintf("document %s already exists with other members: ask a member to add this device, or create a document with a new random id", doc))
	case docCreated:
		c.log.Info("document created", "doc", doc.String())
		c.auditEvent(AuditCreate, doc[:], 0, 0, "")
	}
	return &wire.OK{Ref: m.Ref}
}

func (c *conn) addMember(m *wire.AddMember) wire.Message {
	doc, e := c.parseDoc(m.Ref, m.Doc)
	if e != nil {
		return e
	}
	if len(m.Member) != ed25519.PublicKeySize {
		return c.reject(m.Ref, wire.CodeMalformed, &doc, fmt.Sprintf("member key of %d bytes, want an Ed25519 public key of %d", len(m.Member), ed25519.PublicKeySize))
	}
	if e := c.checkSealedKey(m.Ref, doc, m.SealedKey); e != nil {
		return e
	}

	member := deviceKey(m.Member)
	err := c.srv.store.addMember(doc, member, c.device, m.SealedKey)
	if errors.Is(err, errNotMember) {
		return c.reject(m.Ref, wire.CodeNotMember, &doc, fmt.Sprintf("this device is not a member of document %s, so it cannot add members", doc))
	}
	if err != nil {
		return c.internal(m.Ref, doc, "add member", err)
	}
	c.log.Info("member added", "doc", doc.String(), "member", fmt.Sprintf("%x", member[:8]))
	c.auditEvent(AuditAddMember, doc[:], 0, 0, "")
	return &wire.OK{Ref: m.Ref}
}

func (c *conn) listDocs(m *wire.ListDocs) wire.Message {
	grants, err := c.srv.store.grants(c.device)
	if err != nil {
		c.log.Error("list documents: Badger read failed", "ref", m.Ref, "err", err)
		return &wire.Error{Ref: m.Ref, Code: wire.CodeInternal, Message: "the relay failed to read its storage; retry later"}
	}
	// TODO: page the grants; one Docs frame fits a few thousand grants
	// at most, and the writer closes the connection if encoding fails.
	return &wire.Docs{Ref: m.Ref, Grants: grants}
}

// push checks and stores one envelope. The checks run from the cheapest
// to the most expensive, and all come before the sequence and chain
// checks, so a rejected push never consumes a sequence number.
func (c *conn) push(m *wire.Push) wire.Message {
	doc, e := c.parseDoc(m.Ref, m.Doc)
	if e != nil {
		return e
	}
	if e := c.checkMember(m.Ref, doc); e != nil {
		return e
	}

	env, err := envelope.Unmarshal(m.Envelope)
	if err != nil {
		return c.reject(m.Ref, wire.CodeBadEnvelope, &doc, err.Error())
	}
	if env.Doc != doc {
		return c.reject(m.Ref, wire.CodeBadEnvelope, &doc, fmt.Sprintf("envelope is for document %s, but the push names document %s", env.Doc, doc))
	}
	if env.Author != c.device {
		return c.reject(m.Ref, wire.CodeBadEnvelope, &doc, fmt.Sprintf("envelope author %x is not this connection's device %x: push only envelopes this device signed", env.Author[:8], c.device[:8]))
	}
	if env.Kind == envelope.KindEphemeral {
		return c.reject(m.Ref, wire.CodeBadEnvelope, &doc, "ephemeral envelopes are not stored: push only updates, snapshots and membership changes")
	}
	if err := env.Verify(); err != nil {
		return c.reject(m.Ref, wire.CodeBadSignature, &doc, err.Error())
	}

	// Unmarshal accepted only canonical bytes, so the hash of the pushed
	// bytes is the envelope's hash.
	cursor, stored, err := c.srv.store.appendEnvelope(doc, c.device, env.Seq, env.Prev, env.Hash(), m.Envelope)
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
	if e := c.checkMember(m.Ref, doc); e != nil {
		return outgoing{msg: e}
	}
	sub := &subscription{
		doc:        doc,
		includeOwn: m.IncludeOwn,
		wake:       c.wake,
		pos:        m.After,
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

func (c *conn) checkSealedKey(ref uint64, doc envelope.DocID, sealedKey []byte) *wire.Error {
	if len(sealedKey) == 0 {
		return c.reject(ref, wire.CodeMalformed, &doc, "missing sealed key: seal the document key to the member's device")
	}
	if len(sealedKey) > maxSealedKey {
		return c.reject(ref, wire.CodeMalformed, &doc, fmt.Sprintf("sealed key of %d bytes is larger than the limit of %d", len(sealedKey), maxSealedKey))
	}
	return nil
}

// checkMember rejects a device that is not a member of doc. A document
// that does not exist gets the same Error, so a non-member learns nothing
// about which documents exist.
func (c *conn) checkMember(ref uint64, doc envelope.DocID) *wire.Error {
	member, err := c.srv.store.isMember(doc, c.device)
	if err != nil {
		return c.internal(ref, doc, "check membership", err)
	}
	if !member {
		return c.reject(ref, wire.CodeNotMember, &doc, fmt.Sprintf("this device is not a member of document %s: ask a member to add it", doc))
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
	case *wire.Create:
		return m.Ref
	case *wire.AddMember:
		return m.Ref
	case *wire.ListDocs:
		return m.Ref
	case *wire.Subscribe:
		return m.Ref
	case *wire.Push:
		return m.Ref
	}
	return 0
}
