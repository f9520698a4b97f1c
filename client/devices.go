package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"slices"

	"github.com/vmihailenco/msgpack/v5"

	"interlude/sync/envelope"
	"interlude/sync/membership"
)

// A person's devices.
//
// A person who uses a second device, such as a therapist with a laptop
// and a phone, links it from a device they already use. The linking
// device offers the new one every document it is a member of, and adds
// the key the new device replies with, with its own role. It does so
// through the membership log's add_device entries, which any member may
// make for its own person (see handoff.go). A device linked by key
// (LinkDeviceKey) is added under its device key at once, and a recovery
// device under the keys its root derives (see recovery.go), so the relay
// lists it those documents on its first sync.
//
// Each device keeps the devices it linked itself. Before it sends
// membership changes of a document, it brings those devices into the
// document if they were never members of it, so a document shared later
// with a device reaches the devices it linked. A device removed from a
// document is never added back to it.
//
// A device never learns links from a membership log. Any member can make
// an add_device entry that names someone else's device as its own, in a
// document it created. A device that trusted such an entry would add the
// stranger to all its other documents. So documents shared with either of
// two devices reach both only when each linked the other. A device drops
// a link to a device that the log shows removed only when the removal's
// author is itself or a device it linked.

// linkedPrefix starts the store keys of linked devices.
const linkedPrefix = "link/"

func linkedKey(sign []byte) []byte { return append([]byte(linkedPrefix), sign...) }

// linkedRecord is a device of this device's person.
type linkedRecord struct {
	_msgpack struct{} `msgpack:",as_array"`
	Sign     []byte
	Box      []byte
	// ByKey is set for a device added to documents under its device key
	// (LinkDeviceKey), not through offers (see handoff.go). Records of
	// the version before offers lack it, and take offers from now on.
	ByKey bool
	// Root is the root of a recovery device's document keys (see
	// recovery.go); secret. Empty for other devices.
	Root []byte
}

// decodeLinked decodes a linkedRecord of this version or an older one,
// which has fewer fields: msgpack decodes an array into a struct only
// when the field counts match.
func decodeLinked(b []byte) (linkedRecord, error) {
	var rec linkedRecord
	var fields []msgpack.RawMessage
	if err := msgpack.Unmarshal(b, &fields); err != nil {
		return rec, fmt.Errorf("client: decode linked device: %w", err)
	}
	targets := []any{&rec.Sign, &rec.Box, &rec.ByKey, &rec.Root}
	if len(fields) < 2 || len(fields) > len(targets) {
		return rec, fmt.Errorf("client: decode linked device: record of %d fields, want 2 to %d", len(fields), len(targets))
	}
	for i, f := range fields {
		if len(f) == 0 {
			continue // nil, as an empty Root is stored
		}
		if err := msgpack.Unmarshal(f, targets[i]); err != nil {
			return rec, fmt.Errorf("client: decode linked device: field %d: %w", i+1, err)
		}
	}
	return rec, nil
}

// LinkedDevice is a device this device links its documents to.
type LinkedDevice struct {
	PublicID
	// ByKey is set for a device added under its device key.
	ByKey bool
	// Recovery is set for a recovery device linked with
	// LinkRecoveryDevice.
	Recovery bool
	root     []byte // secret: see linkedRecord.Root
}

// LinkDevice makes the device with public keys dev another device of this
// device's person. Every document this device is a member of, now and
// later, is offered to dev on the next sync, and dev, once it runs and
// replies, is added under its own key for each document (see
// handoff.go). It returns the number of documents offered.
//
// Compare dev's fingerprint (PublicID.Fingerprint) with the one the new
// device shows before linking it: a public id altered on its way here
// would link a stranger's device to every document.
//
// A link request from dev (see LinkRequests) is accepted: this device
// joins dev's person.
func (c *Client) LinkDevice(ctx context.Context, dev PublicID) (int, error) {
	if err := c.checkNotRevoked(ctx, dev); err != nil {
		return 0, err
	}
	n, err := c.link(ctx, dev, linkedRecord{})
	if err != nil {
		return n, err
	}
	// Outside c.mu, which a sync takes while it holds c.personMu.
	return n, c.acceptLinkRequest(ctx, dev)
}

// LinkDeviceKey links dev like LinkDevice, but adds dev to each document
// under its device key at once, without waiting for a reply. It is for
// a device that never runs to reply to offers, such as a recovery device,
// and for a recovery client, which links a new device and stops. The
// relay then finds dev's key in every document of the person.
func (c *Client) LinkDeviceKey(ctx context.Context, dev PublicID) (int, error) {
	return c.link(ctx, dev, linkedRecord{ByKey: true})
}

// link saves rec, with dev's keys, as a linked device and brings dev
// into every document of this device.
func (c *Client) link(ctx context.Context, dev PublicID, rec linkedRecord) (int, error) {
	if len(dev.Sign) != ed25519.PublicKeySize {
		return 0, fmt.Errorf("client: invalid public id: signing key of %d bytes, want %d", len(dev.Sign), ed25519.PublicKeySize)
	}
	if bytes.Equal(dev.Sign, c.id.public.Sign) {
		return 0, fmt.Errorf("client: %s is this device: run the link command on another device of yours", dev.Fingerprint())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, ErrClosed
	}

	rec.Sign, rec.Box = dev.Sign, dev.Box[:]
	value, err := msgpack.Marshal(&rec)
	if err != nil {
		return 0, fmt.Errorf("client: encode linked device: %w", err)
	}
	var b Batch
	b.Put(linkedKey(dev.Sign), value)
	// A revocation not made yet is dropped. One made stays: the
	// sigchain never adds a revoked device again.
	b.Del(peerKey(personRevokePrefix, dev.Sign))
	// Linking again sends every offer again, in case the relay lost one.
	err = c.store.Scan(ctx, peerKey(offerPrefix, dev.Sign), func(key, _ []byte) error {
		b.Del(bytes.Clone(key))
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("client: read open offers to %s: %w", dev.Fingerprint(), err)
	}
	if err := c.store.Write(ctx, &b); err != nil {
		return 0, fmt.Errorf("client: save linked device %s: %w", dev.Fingerprint(), err)
	}
	c.log.Info("device linked", "linked", dev.Fingerprint(), "by_key", rec.ByKey, "recovery", rec.Root != nil)

	peers, err := c.peerMemberKeys(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, d := range c.sortedDocsLocked() {
		added, err := c.addDeviceLocked(ctx, d, LinkedDevice{PublicID: dev, ByKey: rec.ByKey, Recovery: rec.Root != nil, root: rec.Root}, peers)
		if err != nil {
			return n, err
		}
		if added {
			n++
		}
	}
	return n, nil
}

// UnlinkDevice removes the device with signing key dev, such as a lost
// phone, from every document where it is a device of this device's
// person, and deletes its record. Each removal starts a new key epoch on the next
// sync, so nothing written afterwards opens with what dev holds. It
// returns the number of documents changed.
func (c *Client) UnlinkDevice(ctx context.Context, dev ed25519.PublicKey) (int, error) {
	if len(dev) != ed25519.PublicKeySize {
		return 0, fmt.Errorf("client: invalid device key of %d bytes, want %d", len(dev), ed25519.PublicKeySize)
	}
	if bytes.Equal(dev, c.id.public.Sign) {
		return 0, fmt.Errorf("client: this device cannot unlink itself: unlink it from another device of yours")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, ErrClosed
	}
	n, unsure, err := c.unlinkLocked(ctx, dev)
	c.log.Info("device unlinked", "documents", n, "unsure", len(unsure))
	if err == nil && len(unsure) > 0 {
		err = &UnlinkUnsureError{Docs: unsure}
	}
	return n, err
}

// unlinkLocked does UnlinkDevice's work: it deletes the link to dev,
// queues the removal of dev's keys from every document where they are
// members of this device's person, and drops queued additions of them.
// It returns the number of documents changed and those to check.
func (c *Client) unlinkLocked(ctx context.Context, dev ed25519.PublicKey) (int, []envelope.DocID, error) {
	all, err := c.LinkedDevices(ctx)
	if err != nil {
		return 0, nil, err
	}
	var b Batch
	b.Del(linkedKey(dev))
	// The person's sigchain revokes dev on the next sync, if it lists
	// it, which rotates the user key (see person.go).
	if err := c.revokeLater(ctx, &b, dev); err != nil {
		return 0, nil, err
	}
	b.Del(peerKey(personNotifiedPrefix, dev))
	if err := c.store.Write(ctx, &b); err != nil {
		return 0, nil, fmt.Errorf("client: delete linked device: %w", err)
	}
	var root []byte
	others := slices.DeleteFunc(all, func(l LinkedDevice) bool {
		if bytes.Equal(l.Sign, dev) {
			root = l.root
			return true
		}
		return false
	})
	peers, err := c.peerMemberKeys(ctx)
	if err != nil {
		return 0, nil, err
	}
	lost := peers[[32]byte(dev)]
	delete(peers, [32]byte(dev))
	known := map[envelope.DocID]map[[32]byte]bool{}
	mark := func(doc envelope.DocID, k [32]byte) {
		if known[doc] == nil {
			known[doc] = map[[32]byte]bool{}
		}
		known[doc][k] = true
	}
	// Every other device's key this device learned from an offer or a
	// reply is known, also that of a device that linked this one.
	for _, keys := range peers {
		for doc, k := range keys {
			mark(doc, k)
		}
	}
	for _, o := range others {
		for _, d := range c.docs {
			keys, err := memberKeysOf([32]byte(o.Sign), o.root, d.id, peers[[32]byte(o.Sign)])
			if err != nil {
				return 0, nil, err
			}
			for _, k := range keys {
				mark(d.id, k)
			}
		}
	}
	n := 0
	var unsure []envelope.DocID
	for _, d := range c.sortedDocsLocked() {
		targets, err := memberKeysOf([32]byte(dev), root, d.id, lost)
		if err != nil {
			return n, nil, err
		}
		found, maybe := unlinkTargets(d, targets, known[d.id])
		if maybe {
			unsure = append(unsure, d.id)
		}
		// An addition of dev that is queued and not sent yet is
		// dropped, or it would bring dev back after the removal.
		dropped := false
		for _, op := range slices.Clone(d.log.ops) {
			if membership.Op(op.Op) == membership.OpAddDevice && len(op.Sign) == ed25519.PublicKeySize && slices.Contains(targets, [32]byte(op.Sign)) {
				if err := c.dropOpLocked(ctx, d, op.N); err != nil {
					return n, nil, err
				}
				dropped = true
			}
		}
		if len(found) == 0 && !dropped {
			continue
		}
		n++
		var gone Batch
		gone.Put(peerKey(removedPrefix, dev, d.id[:]), []byte{1})
		if err := c.store.Write(ctx, &gone); err != nil {
			return n, nil, fmt.Errorf("client: save the removal of a linked device from document %s: %w", d.id, err)
		}
		for _, target := range found {
			if c.hasOpLocked(d, membership.OpRemoveDevice, target[:]) {
				continue
			}
			if err := c.queueOpLocked(ctx, d, pendingOp{Op: uint8(membership.OpRemoveDevice), Sign: bytes.Clone(target[:])}); err != nil {
				return n, nil, err
			}
		}
	}
	if err := c.forgetPeer(ctx, dev); err != nil {
		return n, nil, err
	}
	return n, unsure, nil
}

// memberKeysOf returns the keys that the device with key sign may be a
// member of doc under, as far as this device can tell: its device key,
// the key its offer or reply named (recorded, by document), and for a
// recovery device the key its root derives.
func memberKeysOf(sign [32]byte, root []byte, doc envelope.DocID, recorded map[envelope.DocID][32]byte) ([][32]byte, error) {
	keys := [][32]byte{sign}
	if k, ok := recorded[doc]; ok {
		keys = append(keys, k)
	}
	if root != nil {
		k, err := deriveDocKeys(root, doc)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k.member())
	}
	return keys, nil
}

// UnlinkUnsureError is returned by UnlinkDevice, with the removals it
// could make saved, when some documents have a member of this device's
// person that this device cannot identify. The unlinked device may be a
// member of them under its own key for the document, if it created them
// or joined them by invitation. Check their member lists (Members,
// MemberID on each remaining device) and remove the unknown ids with
// RemoveMember.
type UnlinkUnsureError struct {
	Docs []envelope.DocID
}

func (e *UnlinkUnsureError) Error() string {
	return fmt.Sprintf("client: in %d documents the removed device may still be a member: under an id this device cannot match to a device of yours, or in its own right, where someone shared the document with it. Check each document's members, remove ids of yours you do not recognize, and ask an admin to remove the device where it was shared with it: %v", len(e.Docs), e.Docs)
}

// unlinkTargets returns those of keys that are members of d for this
// device's person: the unlinked device's device key, and its key in d
// as its offer or reply gave it (see handoff.go). A device that created
// d, or joined it by invitation, before offers existed is a member under
// a document key that no other device can derive and that the log binds
// to it by no signature of its device key. So unsure reports a member of
// this device's person in d that is neither this device, nor one of
// keys, nor a key of another linked device (known), instead of guessing.
func unlinkTargets(d *document, keys [][32]byte, known map[[32]byte]bool) (found [][32]byte, unsure bool) {
	st := d.log.state
	self := d.self.member()
	mine, ok := st.Person(self)
	if !ok {
		return nil, false
	}
	for _, k := range keys {
		if _, member := st.Member(k); !member {
			continue
		}
		if theirs, ok := st.Person(k); ok && theirs == mine {
			found = append(found, k)
		} else {
			// The device is a member in its own right, as someone
			// shared d with it too: only an admin can remove it.
			unsure = true
		}
	}
	for _, m := range st.Members() {
		if p, _ := st.Person(m.Sign); p == mine && m.Sign != self && !slices.Contains(keys, m.Sign) && !known[m.Sign] {
			unsure = true
		}
	}
	return found, unsure
}

// LinkedDevices returns the devices this device links its documents to,
// which it linked itself.
func (c *Client) LinkedDevices(ctx context.Context) ([]LinkedDevice, error) {
	var out []LinkedDevice
	err := c.store.Scan(ctx, []byte(linkedPrefix), func(_, value []byte) error {
		rec, err := decodeLinked(value)
		if err != nil {
			return err
		}
		if len(rec.Sign) != ed25519.PublicKeySize || len(rec.Box) != 32 {
			return fmt.Errorf("client: linked device record with keys of %d and %d bytes", len(rec.Sign), len(rec.Box))
		}
		if rec.Root != nil && len(rec.Root) != 32 {
			return fmt.Errorf("client: linked recovery device with a root of %d bytes, want 32", len(rec.Root))
		}
		out = append(out, LinkedDevice{PublicID: PublicID{Sign: rec.Sign, Box: [32]byte(rec.Box)}, ByKey: rec.ByKey, Recovery: rec.Root != nil, root: rec.Root})
		return nil
	})
	return out, err
}

// unlinkRemovedLocked unlinks each linked device that this device or
// another linked device removed from a document, as the logs here show:
// the person removed it as lost there. Unlinking removes its keys from
// the other documents here and drops additions of it not sent yet.
func (c *Client) unlinkRemovedLocked(ctx context.Context) error {
	linked, err := c.LinkedDevices(ctx)
	if err != nil || len(linked) == 0 {
		return err
	}
	peers, err := c.peerMemberKeys(ctx)
	if err != nil {
		return err
	}
	gone := map[[32]byte]envelope.DocID{}
	for _, d := range c.sortedDocsLocked() {
		self := d.self.member()
		// owner maps each key in d that belongs to a linked device, as
		// far as this device can tell, to that device's key.
		owner := map[[32]byte][32]byte{}
		for _, dev := range linked {
			sign := [32]byte(dev.Sign)
			keys, err := memberKeysOf(sign, dev.root, d.id, peers[sign])
			if err != nil {
				return err
			}
			for _, k := range keys {
				owner[k] = sign
			}
		}
		for _, e := range d.log.entries {
			if e.Op != membership.OpRemoveDevice || e.Subject.Sign == self {
				continue
			}
			_, byLinked := owner[e.Author]
			subject, ok := owner[e.Subject.Sign]
			if _, seen := gone[subject]; ok && !seen && (e.Author == self || byLinked) {
				gone[subject] = d.id
			}
		}
	}
	for _, l := range linked {
		doc, ok := gone[[32]byte(l.Sign)]
		if !ok {
			continue
		}
		n, unsure, err := c.unlinkLocked(ctx, l.Sign)
		if err != nil {
			return err
		}
		c.log.Info("linked device removed by another device of this person, unlinked here too", "doc", doc, "linked", l.Fingerprint(), "documents", n)
		if len(unsure) > 0 {
			c.log.Warn("documents with a member of this person that this device cannot match: check their members", "docs", len(unsure), "linked", l.Fingerprint())
		}
	}
	return nil
}

// followLinksLocked brings d in step with this device's links. It
// removes this device's device key where it holds d under its document
// key, and brings in the linked devices that were never members of d.
// unlinkRemovedLocked runs first, so a device removed elsewhere is no
// longer linked here. linked and peers are LinkedDevices and
// peerMemberKeys, read once for all documents of a sync.
func (c *Client) followLinksLocked(ctx context.Context, d *document, linked []LinkedDevice, peers map[[32]byte]map[envelope.DocID][32]byte) error {
	if _, ok := d.log.state.Member(d.self.member()); !ok {
		return nil
	}
	// A device linked both ways gets its device key added to documents
	// it holds under its document key, by the other device, which
	// cannot tell the two keys apart. The device removes that extra key
	// where it belongs to its own person, so removing its document key
	// later leaves nothing of it behind.
	device := c.id.deviceKeys().member()
	if d.meta.DocKey && !c.hasOpLocked(d, membership.OpRemoveDevice, device[:]) {
		mine, _ := d.log.state.Person(d.self.member())
		if theirs, ok := d.log.state.Person(device); ok && theirs == mine {
			op := pendingOp{Op: uint8(membership.OpRemoveDevice), Sign: bytes.Clone(device[:])}
			if err := c.queueOpLocked(ctx, d, op); err != nil {
				return err
			}
		}
	}
	for _, dev := range linked {
		if _, err := c.addDeviceLocked(ctx, d, dev, peers); err != nil {
			return err
		}
	}
	return nil
}

// addDeviceLocked brings dev into d if this device is a member of d and
// dev never was, under none of the keys this device has recorded for it: it
// queues an offer (see handoff.go) or, for a device linked by key, the
// addition of its device key. peers holds the linked devices' keys in
// each document, as peerMemberKeys returns them.
func (c *Client) addDeviceLocked(ctx context.Context, d *document, dev LinkedDevice, peers map[[32]byte]map[envelope.DocID][32]byte) (bool, error) {
	st := d.log.state
	if _, ok := st.Member(d.self.member()); !ok {
		return false, nil
	}
	if st.WasMember([32]byte(dev.Sign)) || c.hasOpLocked(d, membership.OpAddDevice, dev.Sign) {
		return false, nil
	}
	if k, ok := peers[[32]byte(dev.Sign)][d.id]; ok && (st.WasMember(k) || c.hasOpLocked(d, membership.OpAddDevice, k[:])) {
		return false, nil
	}
	// A device removed from d is not offered d again, also after it is
	// linked again.
	if gone, err := c.exists(ctx, peerKey(removedPrefix, dev.Sign, d.id[:])); err != nil || gone {
		return false, err
	}
	if dev.root != nil {
		return c.addRecoveryLocked(ctx, d, dev)
	}
	if !dev.ByKey {
		return c.offerLocked(ctx, d, dev.PublicID)
	}
	op := pendingOp{Op: uint8(membership.OpAddDevice), Sign: slices.Clone(dev.Sign), Box: slices.Clone(dev.Box[:])}
	if err := c.queueOpLocked(ctx, d, op); err != nil {
		return false, err
	}
	return true, nil
}

// hasOpLocked reports whether a change op of member is pending in d.
func (c *Client) hasOpLocked(d *document, op membership.Op, member []byte) bool {
	return slices.ContainsFunc(d.log.ops, func(p pendingOp) bool {
		return membership.Op(p.Op) == op && bytes.Equal(p.Sign, member)
	})
}

// sortedDocsLocked returns the documents in id order, so that changes are
// made in the same order on every run.
func (c *Client) sortedDocsLocked() []*document {
	docs := make([]*document, 0, len(c.docs))
	for _, d := range c.docs {
		docs = append(docs, d)
	}
	slices.SortFunc(docs, func(a, b *document) int { return bytes.Compare(a.id[:], b.id[:]) })
	return docs
}
