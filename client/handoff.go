package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"golang.org/x/crypto/hkdf"
	"golang.org/x/crypto/nacl/box"

	"interlude/sync/envelope"
	"interlude/sync/membership"
	"interlude/sync/wire"
)

// Handoffs: a device joins a document under its own key for it.
//
// When a device adds a linked device to a document, or shares a document
// with a device's public id, it does not name that device's device key
// there, which the relay would then find in every document it is added
// to. It offers the document instead: a short message, sealed to the
// device, that names the document. The device replies with its key pair
// for that document, which only it can derive, and the offering device
// adds that key: with add_device for a linked device, else as a member
// with the role it chose. The relay's membership logs then hold a
// different key for the device in each document, as they do for a device
// that created a document or joined it by invitation.
//
// Offers and replies travel through the relay's one-time slots, the ones
// invitations use. Each device has an inbox: slot n of it has an id that
// HKDF derives from the device's public keys and n, so anyone with the
// device's public id can post there, and the relay, which cannot open
// the messages, sees only that a slot was used. A sender signs each
// message with its device key over the slot id and the recipient, and
// seals it anonymously to the recipient's box key, so the relay learns
// neither the sender nor the documents, and cannot move a message to
// another slot or device. A device reads its inbox in order, and a sender
// writes to the first slot that nobody used.
//
// A device replies to offers from any sender, since anyone with its
// public id may share a document with it. A reply counts only to an open
// offer and only from the key the offer was sealed to. Linked devices
// keep each other's key in each document, so unlinking a lost device
// removes exactly its keys (see UnlinkDevice). See replyToOffer for what
// a device that was not linked gets, and maxOfferMarks for the bound on
// what offers make a device claim.
//
// A recovery device never runs to reply; its keys derive from a root the
// linking device keeps (see recovery.go).

const (
	inboxSlotInfo = "interlude/client/v1 inbox slot\x00"
	handoffDomain = "interlude/client/v1 handoff message\x00"
	handoffFormat = 1

	itemOffer uint8 = 1
	itemReply uint8 = 2
	// itemProof carries an offer's Proof in Box, beside the offer of the
	// same document: an item of its own, because versions before proofs
	// decode only four fields and skip kinds they do not know.
	itemProof uint8 = 3

	// maxHandoffItems bounds the items of one message, so one fits a
	// relay slot (256 KiB) with room to spare: an item is under 120
	// bytes encoded.
	maxHandoffItems = 1024
	// maxInboxPerPass bounds the inbox slots one session pass reads, so
	// a sender that fills many slots cannot hold the session in its
	// inbox. The rest are read in the next pass.
	maxInboxPerPass = 64
	// maxSlotTries bounds the used slots of another device's inbox that
	// one post skips in a pass, for the same reason. The post resumes
	// there in the next pass.
	maxSlotTries = 64
	// maxOfferMarks bounds the documents this device claims because
	// devices it did not link offered them and that have not arrived, so
	// offers of made-up documents cannot push its claims past the relay's
	// limit. Real use stays far below it.
	maxOfferMarks = 1024
)

// Store keys of handoffs. Peer keys are 32-byte Ed25519 device keys and
// documents 16-byte ids.
const (
	inboxNextKey    = "handoff/in/"      // + relay host: next slot of this device's inbox to read
	peerSlotPrefix  = "handoff/slot/"    // + peer + relay host: next slot of its inbox to try
	queuePrefix     = "handoff/q/"       // + peer + kind + doc: an item to send
	offerPrefix     = "handoff/offer/"   // + peer + doc: an offer waiting for its reply
	peerKeyPrefix   = "handoff/peerkey/" // + peer + doc: the peer's member key there
	offeredByPrefix = "handoff/from/"    // + peer: its box key, for a device that offered a recovery device documents
	// + peer + doc: the device was removed from doc, so it is not offered
	// doc again. forgetPeer keeps these, for a device linked again.
	removedPrefix = "handoff/removed/"
	// + doc + key: an addition of key to doc that a reply asked for.
	fromReplyPrefix = "handoff/fromreply/"
)

func peerKey(prefix string, peer []byte, rest ...[]byte) []byte {
	k := append([]byte(prefix), peer...)
	for _, r := range rest {
		k = append(k, r...)
	}
	return k
}

// handoffItem is an offer (Sign and Box are the sender's member key in
// Doc) or a reply (the key the sender is to be added under).
type handoffItem struct {
	_msgpack struct{} `msgpack:",as_array"`
	Kind     uint8
	Doc      []byte
	Sign     []byte
	Box      []byte
	// Proof, in an offer, is a signature by Sign over offerProof, which
	// shows that the sender holds that member key (see replyToOffer). It
	// travels as an itemProof, and is not encoded with the offer.
	Proof []byte `msgpack:"-"`
}

// DecodeMsgpack decodes an item of four fields, or of five as one
// version sent an offer with its proof, since msgpack decodes an array
// into a struct only when the field counts match.
func (it *handoffItem) DecodeMsgpack(dec *msgpack.Decoder) error {
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return err
	}
	if n != 4 && n != 5 {
		return fmt.Errorf("handoff item of %d fields, want 4 or 5", n)
	}
	if it.Kind, err = dec.DecodeUint8(); err != nil {
		return err
	}
	for _, f := range []*[]byte{&it.Doc, &it.Sign, &it.Box, &it.Proof}[:n-1] {
		if *f, err = dec.DecodeBytes(); err != nil {
			return err
		}
	}
	return nil
}

const offerProofDomain = "interlude/client/v1 offer proof\x00"

// offerProof returns what the member key of an offer signs: the
// document and both devices' keys, so a proof made for one offer proves
// nothing in another.
func offerProof(doc envelope.DocID, from, to []byte) []byte {
	m := append([]byte(offerProofDomain), doc[:]...)
	m = append(m, from...)
	return append(m, to...)
}

// queuedItem is an item waiting to be sent, with the recipient's box key.
type queuedItem struct {
	_msgpack struct{} `msgpack:",as_array"`
	PeerBox  []byte
	Item     handoffItem
}

// handoffBody is the part of a message that the sender signs.
type handoffBody struct {
	_msgpack  struct{} `msgpack:",as_array"`
	Sender    []byte
	SenderBox []byte
	Items     []handoffItem
}

// inboxSlot returns the id of slot n of the inbox of the device with
// public keys to.
func inboxSlot(to PublicID, n uint64) ([16]byte, error) {
	var id [16]byte
	info := binary.BigEndian.AppendUint64([]byte(inboxSlotInfo), n)
	secret := append(bytes.Clone(to.Sign), to.Box[:]...)
	if _, err := io.ReadFull(hkdf.New(sha256.New, secret, nil, info), id[:]); err != nil {
		return id, fmt.Errorf("client: derive inbox slot %d: %w", n, err)
	}
	return id, nil
}

func handoffSigned(slot [16]byte, to []byte, body []byte) []byte {
	m := append([]byte(handoffDomain), slot[:]...)
	m = append(m, to...)
	return append(m, body...)
}

// sealHandoff signs the items for slot of to's inbox and seals them to to.
func (id *Identity) sealHandoff(to PublicID, slot [16]byte, items []handoffItem) ([]byte, error) {
	body, err := msgpack.Marshal(&handoffBody{Sender: id.public.Sign, SenderBox: id.public.Box[:], Items: items})
	if err != nil {
		return nil, fmt.Errorf("client: encode handoff message: %w", err)
	}
	plain := append([]byte{handoffFormat}, ed25519.Sign(id.signing, handoffSigned(slot, to.Sign, body))...)
	plain = append(plain, body...)
	sealed, err := box.SealAnonymous(nil, plain, &to.Box, rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("client: seal handoff message to %s: %w", to.Fingerprint(), err)
	}
	return sealed, nil
}

// errHandoff marks a message in the inbox that does not open or verify.
var errHandoff = errors.New("client: handoff message does not verify")

// openHandoff opens a message from slot of this device's inbox.
func (id *Identity) openHandoff(slot [16]byte, sealed []byte) (*handoffBody, error) {
	plain, ok := box.OpenAnonymous(nil, sealed, &id.public.Box, &id.boxKey)
	if !ok || len(plain) < 1+ed25519.SignatureSize || plain[0] != handoffFormat {
		return nil, fmt.Errorf("%w: it is not sealed to this device in a known format", errHandoff)
	}
	sig, raw := plain[1:1+ed25519.SignatureSize], plain[1+ed25519.SignatureSize:]
	var body handoffBody
	if err := msgpack.Unmarshal(raw, &body); err != nil {
		return nil, fmt.Errorf("%w: decode: %v", errHandoff, err)
	}
	if len(body.Sender) != ed25519.PublicKeySize || len(body.SenderBox) != 32 || len(body.Items) > maxHandoffItems {
		return nil, fmt.Errorf("%w: sender keys of %d and %d bytes, %d items", errHandoff, len(body.Sender), len(body.SenderBox), len(body.Items))
	}
	if !ed25519.Verify(body.Sender, handoffSigned(slot, id.public.Sign, raw), sig) {
		return nil, fmt.Errorf("%w: the signature does not verify with the sender's key", errHandoff)
	}
	return &body, nil
}

func (c *Client) readCounter(ctx context.Context, key []byte) (uint64, error) {
	v, err := c.store.Get(ctx, key)
	switch {
	case errors.Is(err, ErrNotFound):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("client: read handoff counter: %w", err)
	case len(v) != 8:
		return 0, fmt.Errorf("client: handoff counter of %d bytes, want 8", len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

func (c *Client) exists(ctx context.Context, key []byte) (bool, error) {
	_, err := c.store.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// offerRecord is an offer waiting for its reply.
type offerRecord struct {
	_msgpack struct{} `msgpack:",as_array"`
	// Role is the role to add the reply's key with, or 0 for a linked
	// device, added with add_device.
	Role uint8
	// Box is the X25519 key the offer was sealed to.
	Box []byte
}

// offerLocked queues an offer of d to the linked device dev, unless one
// waits for its reply already. It reports whether it queued one.
func (c *Client) offerLocked(ctx context.Context, d *document, dev PublicID) (bool, error) {
	return c.offerToLocked(ctx, d, dev, 0, false)
}

// offerToLocked queues an offer of d to the device dev, to join with
// role, or as a linked device for role 0. An offer that waits for its
// reply is made again only with again set, as for a person who shares
// once more, or to change its role.
func (c *Client) offerToLocked(ctx context.Context, d *document, dev PublicID, role membership.Role, again bool) (bool, error) {
	old, waiting, err := c.openOffer(ctx, dev.Sign, d.id)
	if err != nil || (!again && waiting && membership.Role(old.Role) == role && bytes.Equal(old.Box, dev.Box[:])) {
		return false, err
	}
	rec, err := msgpack.Marshal(&offerRecord{Role: uint8(role), Box: dev.Box[:]})
	if err != nil {
		return false, fmt.Errorf("client: encode offer: %w", err)
	}
	proof := ed25519.Sign(d.self.signing, offerProof(d.id, c.id.public.Sign, dev.Sign))
	var b Batch
	b.Put(peerKey(offerPrefix, dev.Sign, d.id[:]), rec)
	offer := handoffItem{Kind: itemOffer, Doc: d.id[:], Sign: bytes.Clone(d.self.public.Sign), Box: d.self.public.Box[:]}
	if err := queueItem(&b, dev, offer); err != nil {
		return false, err
	}
	if err := queueItem(&b, dev, handoffItem{Kind: itemProof, Doc: d.id[:], Sign: bytes.Clone(d.self.public.Sign), Box: proof}); err != nil {
		return false, err
	}
	if err := c.store.Write(ctx, &b); err != nil {
		return false, fmt.Errorf("client: save offer of document %s to %s: %w", d.id, dev.Fingerprint(), err)
	}
	c.log.Info("document offered", "doc", d.id, "to", dev.Fingerprint(), "role", role)
	c.signalWake()
	return true, nil
}

// queueItem adds to b the queue record of it, to be sent to the device
// to: one per recipient, kind and document, so a newer item of the same
// kind replaces an older one.
func queueItem(b *Batch, to PublicID, it handoffItem) error {
	return queueItemAt(b, queuePrefix, to, it)
}

// queueItemAt is queueItem for the queue under prefix: queuePrefix for
// items this device sends, personQueue(p) for those it sends as
// person p.
func queueItemAt(b *Batch, prefix string, to PublicID, it handoffItem) error {
	q, err := msgpack.Marshal(&queuedItem{PeerBox: to.Box[:], Item: it})
	if err != nil {
		return fmt.Errorf("client: encode handoff item: %w", err)
	}
	b.Put(peerKey(prefix, to.Sign, []byte{it.Kind}, it.Doc), q)
	return nil
}

// openOffer returns the offer of doc to the device with signing key dev
// that waits for its reply, if there is one.
func (c *Client) openOffer(ctx context.Context, dev []byte, doc envelope.DocID) (offerRecord, bool, error) {
	var rec offerRecord
	v, err := c.store.Get(ctx, peerKey(offerPrefix, dev, doc[:]))
	switch {
	case errors.Is(err, ErrNotFound):
		return rec, false, nil
	case err != nil:
		return rec, false, fmt.Errorf("client: read offer of document %s: %w", doc, err)
	}
	if len(v) == 1 {
		// The first version of offers stored one byte. Such an offer
		// names no box key, so no reply matches it, and the next pass
		// makes it again in this form.
		return rec, true, nil
	}
	if err := msgpack.Unmarshal(v, &rec); err != nil {
		return rec, false, fmt.Errorf("client: decode offer of document %s: %w", doc, err)
	}
	return rec, true, nil
}

// knownMemberLocked reports whether the device with signing key dev is
// a current member of d under its device key or under the key its reply
// to an offer of d named.
func (c *Client) knownMemberLocked(ctx context.Context, d *document, dev []byte) bool {
	if _, ok := d.log.state.Member([32]byte(dev)); ok {
		return true
	}
	k, err := c.store.Get(ctx, peerKey(peerKeyPrefix, dev, d.id[:]))
	if err != nil || len(k) != 32 {
		return false
	}
	_, ok := d.log.state.Member([32]byte(k))
	return ok
}

// OfferedBy returns the devices that offered documents to the recovery
// device this device recovered with (see HandOver): the person's devices
// at the time, among them the lost ones, which UnlinkDevice removes by
// their device keys.
func (c *Client) OfferedBy(ctx context.Context) ([]PublicID, error) {
	var out []PublicID
	err := c.store.Scan(ctx, []byte(offeredByPrefix), func(key, value []byte) error {
		sign := key[len(offeredByPrefix):]
		if len(sign) != ed25519.PublicKeySize || len(value) != 32 {
			return fmt.Errorf("client: record of a device that offered documents with keys of %d and %d bytes", len(sign), len(value))
		}
		out = append(out, PublicID{Sign: bytes.Clone(sign), Box: [32]byte(value)})
		return nil
	})
	return out, err
}

// PreviousDevices returns those of OfferedBy that are still a member of
// a document here, under their device key or a key they offered the
// recovery device: the ones a person may still need to remove.
func (c *Client) PreviousDevices(ctx context.Context) ([]PublicID, error) {
	offered, err := c.OfferedBy(ctx)
	if err != nil {
		return nil, err
	}
	peers, err := c.peerMemberKeys(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []PublicID
	for _, dev := range offered {
		sign := [32]byte(dev.Sign)
		for _, d := range c.docs {
			_, member := d.log.state.Member(sign)
			if k, ok := peers[sign][d.id]; ok && !member {
				_, member = d.log.state.Member(k)
			}
			if member {
				out = append(out, dev)
				break
			}
		}
	}
	return out, nil
}

// Offer is an offer of a document that waits for the reply of the device
// it was made to.
type Offer struct {
	To PublicID
	// Role is the role the device joins with, or 0 for a linked device.
	Role membership.Role
	// ToPerson is set for an offer to a person's user key, made by
	// ShareWithPerson, and Person is then that person's id.
	ToPerson bool
	Person   PersonID
}

// Offers returns the offers of doc that wait for a reply.
func (c *Client) Offers(ctx context.Context, doc envelope.DocID) ([]Offer, error) {
	var out []Offer
	err := c.store.Scan(ctx, []byte(offerPrefix), func(key, value []byte) error {
		rest := key[len(offerPrefix):]
		if len(rest) != 32+16 || envelope.DocID(rest[32:]) != doc {
			return nil
		}
		var rec offerRecord
		if len(value) == 1 {
			return nil // of the first version: made again on the next pass
		}
		if err := msgpack.Unmarshal(value, &rec); err != nil || len(rec.Box) != 32 {
			return fmt.Errorf("client: decode offer of document %s: invalid record", doc)
		}
		out = append(out, Offer{To: PublicID{Sign: bytes.Clone(rest[:32]), Box: [32]byte(rec.Box)}, Role: membership.Role(rec.Role)})
		return nil
	})
	if err != nil {
		return nil, err
	}
	shares, err := c.PersonShares(ctx, doc)
	if err != nil {
		return nil, err
	}
	for i := range out {
		for _, sh := range shares {
			if bytes.Equal(sh.sign, out[i].To.Sign) {
				out[i].ToPerson, out[i].Person = true, sh.Person
			}
		}
	}
	return out, nil
}

// peerMemberKeys returns, for each linked device, its member key in each
// document, as its offers and replies reported them.
func (c *Client) peerMemberKeys(ctx context.Context) (map[[32]byte]map[envelope.DocID][32]byte, error) {
	out := map[[32]byte]map[envelope.DocID][32]byte{}
	err := c.store.Scan(ctx, []byte(peerKeyPrefix), func(key, value []byte) error {
		rest := key[len(peerKeyPrefix):]
		if len(rest) != 32+16 || len(value) != 32 {
			return fmt.Errorf("client: member key record of %d bytes under a key of %d", len(value), len(rest))
		}
		peer := [32]byte(rest[:32])
		if out[peer] == nil {
			out[peer] = map[envelope.DocID][32]byte{}
		}
		out[peer][envelope.DocID(rest[32:])] = [32]byte(value)
		return nil
	})
	return out, err
}

// readInbox reads this device's inbox from the first slot not read yet:
// it replies to offers and turns replies into membership changes.
// Messages that do not verify are logged and skipped; the slot is used
// either way. Positions are kept per relay host, since another relay
// holds other slots.
func (s *session) readInbox(ctx context.Context) error {
	return s.readInboxOf(ctx, s.c.id, []byte(inboxNextKey+s.host), func(m *handoffBody) error {
		return s.c.takeHandoff(ctx, m)
	})
}

// readInboxOf reads the inbox of as, from the slot the store keeps
// under counter, and passes each message that opens to take.
func (s *session) readInboxOf(ctx context.Context, as *Identity, counter []byte, take func(*handoffBody) error) error {
	n, err := s.c.readCounter(ctx, counter)
	if err != nil {
		return err
	}
	for range maxInboxPerPass {
		slot, err := inboxSlot(as.public, n)
		if err != nil {
			return err
		}
		msg, err := s.takeSlot(ctx, slot)
		if err != nil {
			return fmt.Errorf("client: read inbox slot %d: %w", n, err)
		}
		if len(msg) == 0 {
			return nil
		}
		if body, err := as.openHandoff(slot, msg); err != nil {
			s.c.log.Warn("inbox message skipped", "slot", n, "err", err)
		} else if err := take(body); err != nil {
			return err
		}
		n++
		var b Batch
		b.Put(counter, binary.BigEndian.AppendUint64(nil, n))
		if err := s.c.store.Write(ctx, &b); err != nil {
			return fmt.Errorf("client: save inbox position: %w", err)
		}
	}
	return nil
}

// takeHandoff acts on the items of one message.
func (c *Client) takeHandoff(ctx context.Context, m *handoffBody) error {
	sender := PublicID{Sign: m.Sender, Box: [32]byte(m.SenderBox)}
	linked, err := c.LinkedDevices(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	isLinked := c.handOverFrom[[32]byte(sender.Sign)]
	c.mu.Unlock()
	for _, l := range linked {
		if bytes.Equal(l.Sign, sender.Sign) && l.Box == sender.Box {
			isLinked = true
		}
	}
	for _, it := range proofsApplied(m.Items) {
		if len(it.Doc) != 16 || len(it.Sign) != ed25519.PublicKeySize || len(it.Box) != 32 {
			c.log.Warn("handoff item skipped: malformed", "from", sender.Fingerprint(), "kind", it.Kind)
			continue
		}
		doc := envelope.DocID(it.Doc)
		switch it.Kind {
		case itemOffer:
			err = c.replyToOffer(ctx, sender, isLinked, doc, it, nil, "")
		case itemReply:
			err = c.takeReply(ctx, sender, isLinked, doc, it)
		case itemPerson:
			err = c.takePerson(ctx, sender, isLinked, PersonID(it.Sign), it.Box)
		default:
			c.log.Warn("handoff item of an unknown kind skipped", "from", sender.Fingerprint(), "kind", it.Kind)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// proofsApplied returns the items other than proofs, with each proof
// set on the offer of its document with the same key.
func proofsApplied(items []handoffItem) []handoffItem {
	proofs := map[string]handoffItem{}
	for _, it := range items {
		if it.Kind == itemProof && len(it.Doc) == 16 && len(it.Box) == ed25519.SignatureSize {
			proofs[string(it.Doc)] = it
		}
	}
	var out []handoffItem
	for _, it := range items {
		if it.Kind == itemProof {
			continue
		}
		if p, ok := proofs[string(it.Doc)]; ok && it.Kind == itemOffer && it.Proof == nil && bytes.Equal(p.Sign, it.Sign) {
			it.Proof = p.Box
		}
		out = append(out, it)
	}
	return out
}

// replyToOffer queues the reply to an offer of doc. To a linked device
// it replies with the key this device holds doc under, if it does. A
// document it does not hold it replies to with its document key, which
// it then claims until the document arrives.
//
// An offer of a document it holds, or was removed from, gets a fresh key
// that opens nothing, unless it comes from a linked device or the sender
// proves with its member key that it is an admin of the document. Its
// real key would tell any other sender, or a relay that offers documents
// from their logs to a known public id, that this device is a member,
// and a missing reply would tell the same. An admin that removed this
// device and offers the document again gets its device key, if that key
// was never a member.
//
// An offer to this device's person (as set to the person's user key) is
// replied to as the person, with this device's key.
func (c *Client) replyToOffer(ctx context.Context, sender PublicID, linked bool, doc envelope.DocID, it handoffItem, as *Identity, queue string) error {
	to := c.id
	if as != nil {
		to = as
	}
	// A sender proves it is an admin of doc, as this device's copy of
	// the log has it, by signing with its member key. Such a sender has
	// this device's key in its own copy of the log already.
	proven := len(it.Proof) == ed25519.SignatureSize &&
		ed25519.Verify(ed25519.PublicKey(it.Sign), offerProof(doc, sender.Sign, to.public.Sign), it.Proof)
	c.mu.Lock()
	d, known := c.docs[doc]
	var held *docKeys
	removed, admin, everMember, senderRemoved := false, false, false, false
	if known {
		held, removed = d.self, d.removed()
		senderRemoved = removedKey(d, it.Sign)
		m, ok := d.log.state.Member([32]byte(it.Sign))
		admin = proven && ok && m.Role == membership.RoleAdmin
		everMember = d.log.state.WasMember(c.id.deviceKeys().member())
	}
	c.mu.Unlock()

	var b Batch
	var reply *docKeys
	var err error
	switch {
	case known && (linked || (admin && (!removed || everMember))):
		// A removed device replies with the key it was removed under,
		// which is never added back.
		reply = held
	case known && removed && admin:
		// An admin that is no linked device shares the document again
		// with a device it removed. The device's document key was a
		// member and is never added back, so it comes back under its
		// device key, which never was.
		reply = c.id.deviceKeys()
	case known:
		if reply, err = randomDocKeys(); err != nil {
			return err
		}
	default:
		marked, err := c.invitedTo(ctx, doc)
		if err != nil {
			return err
		}
		if reply, err = c.id.documentKeys(doc); err != nil {
			return err
		}
		value, _ := c.store.Get(ctx, invitedKey(doc))
		switch {
		case marked && (!isOfferMark(value) || !(linked || c.id.recovery)):
		case linked || c.id.recovery:
			// A recovery client takes every offer of the person's devices.
			b.Put(invitedKey(doc), []byte{1})
		default:
			// At the bound, the oldest mark that an offer from a device
			// not linked made gives way: offers of made-up documents then
			// only push each other out, and a real share still gets in.
			n, oldest, err := c.offerMarks(ctx)
			if err != nil {
				return err
			}
			if n >= maxOfferMarks {
				b.Del(oldest)
				c.log.Warn("too many documents offered by devices that are not linked and not yet received: the oldest offer gives way", "doc", doc, "from", sender.Fingerprint(), "marks", n)
			}
			b.Put(invitedKey(doc), binary.BigEndian.AppendUint64([]byte{offerMark}, uint64(time.Now().UnixNano())))
		}
	}
	replyItem := handoffItem{Kind: itemReply, Doc: doc[:], Sign: bytes.Clone(reply.public.Sign), Box: reply.public.Box[:]}
	if as != nil {
		err = queueItemAt(&b, queue, sender, replyItem)
	} else {
		err = queueItem(&b, sender, replyItem)
	}
	if err != nil {
		return err
	}
	if (linked || c.id.recovery) && !senderRemoved {
		// A linked device's key is kept, for unlinking it later. A
		// recovery client keeps the key of every device that offered it
		// a document, to hand over with the documents (see HandOver).
		b.Put(peerKey(peerKeyPrefix, sender.Sign, doc[:]), bytes.Clone(it.Sign))
	}
	if c.id.recovery {
		b.Put(peerKey(offeredByPrefix, sender.Sign), sender.Box[:])
	}
	if err := c.store.Write(ctx, &b); err != nil {
		return fmt.Errorf("client: save reply to the offer of document %s: %w", doc, err)
	}
	c.log.Info("document offered by another device, replied to", "doc", doc, "from", sender.Fingerprint(), "linked", linked)
	return nil
}

// staleReplyLocked reports whether op adds a key that a reply asked for
// and that has been a member of d since: the log then shows it removed
// after the reply was taken, and the addition must not bring it back.
func (c *Client) staleReplyLocked(ctx context.Context, d *document, op pendingOp) (bool, error) {
	if (membership.Op(op.Op) != membership.OpAdd && membership.Op(op.Op) != membership.OpAddDevice) || len(op.Sign) != ed25519.PublicKeySize {
		return false, nil
	}
	if !d.log.state.WasMember([32]byte(op.Sign)) {
		return false, nil
	}
	v, err := c.store.Get(ctx, peerKey(fromReplyPrefix, d.id[:], op.Sign))
	switch {
	case errors.Is(err, ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("client: read the origin of a membership change: %w", err)
	}
	return len(v) == 8 && binary.BigEndian.Uint64(v) == op.N, nil
}

// removedKey reports whether key was a member of d and is no longer.
// Such a key is not kept for a device: an old removal of it would read
// as a new one (see followLinksLocked), and it is never added back.
func removedKey(d *document, key []byte) bool {
	k := [32]byte(key)
	_, member := d.log.state.Member(k)
	return d.log.state.WasMember(k) && !member
}

// randomDocKeys returns key pairs that no document derives.
func randomDocKeys() (*docKeys, error) {
	var secret [32]byte
	if _, err := io.ReadFull(rand.Reader, secret[:]); err != nil {
		return nil, fmt.Errorf("client: read random key: %w", err)
	}
	defer clear(secret[:])
	return deriveDocKeys(secret[:], envelope.DocID{})
}

// offerMark starts the value of an invitation mark that an offer from a
// device that is not linked made; the time it was made follows.
const offerMark = 'o'

// isOfferMark reports whether an invitation mark's value is one that an
// offer from a device not linked made, which may give way to others.
func isOfferMark(value []byte) bool { return len(value) == 9 && value[0] == offerMark }

// offerMarks counts the marks that offers from devices not linked made,
// and returns the store key of the oldest.
func (c *Client) offerMarks(ctx context.Context) (n int, oldest []byte, err error) {
	var oldestAt uint64
	err = c.store.Scan(ctx, []byte(invitedPrefix), func(key, value []byte) error {
		if !isOfferMark(value) {
			return nil
		}
		n++
		if at := binary.BigEndian.Uint64(value[1:]); oldest == nil || at < oldestAt {
			oldest, oldestAt = bytes.Clone(key), at
		}
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("client: count the documents offered: %w", err)
	}
	return n, oldest, nil
}

// takeReply adds the key a device replied to an offer with: as a
// device of this device's person for a linked device, else as a member
// with the offer's role. A reply counts only from the device the offer
// was sealed to.
func (c *Client) takeReply(ctx context.Context, sender PublicID, linked bool, doc envelope.DocID, it handoffItem) error {
	offer, open, err := c.openOffer(ctx, sender.Sign, doc)
	if err != nil {
		return err
	}
	if !open || !bytes.Equal(offer.Box, sender.Box[:]) {
		c.log.Warn("reply to no open offer, skipped", "from", sender.Fingerprint(), "doc", doc)
		return nil
	}
	if offer.Role == 0 && !linked {
		c.log.Warn("reply from a device that is no longer linked, skipped", "from", sender.Fingerprint(), "doc", doc)
		return nil
	}
	if offer.Role == 0 {
		gone, err := c.exists(ctx, peerKey(removedPrefix, sender.Sign, doc[:]))
		if err != nil {
			return fmt.Errorf("client: read removals of a linked device: %w", err)
		}
		if gone {
			c.log.Warn("reply from a linked device that was removed from the document, skipped", "from", sender.Fingerprint(), "doc", doc)
			return nil
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.docs[doc]
	var b Batch
	b.Del(peerKey(offerPrefix, sender.Sign, doc[:]))
	if ok && removedKey(d, it.Sign) {
		// The device replied with the key it was removed under: it is
		// not offered doc again.
		b.Put(peerKey(removedPrefix, sender.Sign, doc[:]), []byte{1})
	} else {
		b.Put(peerKey(peerKeyPrefix, sender.Sign, doc[:]), bytes.Clone(it.Sign))
	}
	save := func() error {
		if err := c.store.Write(ctx, &b); err != nil {
			return fmt.Errorf("client: save reply of document %s: %w", doc, err)
		}
		return nil
	}
	if !ok || d.removed() {
		return save()
	}
	// A key that was ever a member is not added back: a device removed
	// from a document stays out of it.
	key := [32]byte(it.Sign)
	if m, member := d.log.state.Member(key); member && offer.Role != 0 && m.Role != membership.Role(offer.Role) {
		// The device is a member already, under the key it replied with:
		// an admin's offer with another role changes its role.
		if self, ok := d.log.state.Member(d.self.member()); ok && self.Role == membership.RoleAdmin && !c.hasOpLocked(d, membership.OpChangeRole, it.Sign) {
			c.log.Info("offer replied to by a member, changing its role", "doc", doc, "from", sender.Fingerprint(), "role", offer.Role)
			op := pendingOp{Op: uint8(membership.OpChangeRole), Sign: bytes.Clone(it.Sign), Role: offer.Role}
			if err := c.queueOpWithLocked(ctx, d, op, &b); err != nil {
				return fmt.Errorf("client: save reply of document %s: %w", doc, err)
			}
			return nil
		}
	}
	if d.log.state.WasMember(key) || c.hasOpLocked(d, membership.OpAddDevice, it.Sign) || c.hasOpLocked(d, membership.OpAdd, it.Sign) {
		return save()
	}
	op := pendingOp{Op: uint8(membership.OpAddDevice), Sign: bytes.Clone(it.Sign), Box: bytes.Clone(it.Box)}
	if offer.Role != 0 {
		if m, ok := d.log.state.Member(d.self.member()); !ok || m.Role != membership.RoleAdmin {
			c.log.Warn("reply to an offer made as admin, skipped: this device is no longer an admin", "doc", doc, "from", sender.Fingerprint())
			return save()
		}
		op = pendingOp{Op: uint8(membership.OpAdd), Sign: bytes.Clone(it.Sign), Box: bytes.Clone(it.Box), Role: offer.Role}
	}
	c.log.Info("offer replied to, adding the key", "doc", doc, "from", sender.Fingerprint(), "role", offer.Role)
	// The offer goes in the same write as the addition, so a crash
	// between the two cannot lose the share.
	// The mark names the change's number, which queueOpWithLocked gives
	// it, so a later addition of the same key, by invitation, is not
	// taken for this one.
	b.Put(peerKey(fromReplyPrefix, doc[:], it.Sign), binary.BigEndian.AppendUint64(nil, d.log.nextOp))
	if err := c.queueOpWithLocked(ctx, d, op, &b); err != nil {
		return fmt.Errorf("client: save reply of document %s: %w", doc, err)
	}
	return nil
}

// sendHandoffs posts the queued items, one message per recipient.
func (s *session) sendHandoffs(ctx context.Context) error {
	if err := s.sendQueue(ctx, queuePrefix, s.c.id); err != nil {
		return err
	}
	// Each pass comes here, and the identities take a verification of
	// each sigchain, so they are made only for replies to send.
	queued := false
	err := s.c.store.Scan(ctx, []byte(personQueuePrefix), func(_, _ []byte) error {
		queued = true
		return errScanDone
	})
	if err != nil && !errors.Is(err, errScanDone) {
		return fmt.Errorf("client: read replies queued as a person: %w", err)
	}
	if !queued {
		return nil
	}
	persons, err := s.c.personIdentities(ctx)
	if err != nil {
		return err
	}
	for p, as := range persons {
		if err := s.sendQueue(ctx, personQueue(p), as); err != nil {
			return err
		}
	}
	return nil
}

// sendQueue posts the items queued under prefix, signed and sent as as.
func (s *session) sendQueue(ctx context.Context, prefix string, as *Identity) error {
	byPeer := map[[32]byte][]queued{}
	var order [][32]byte
	err := s.c.store.Scan(ctx, []byte(prefix), func(key, value []byte) error {
		rest := key[len(prefix):]
		if len(rest) != 32+1+16 {
			return fmt.Errorf("client: queued handoff item under a key of %d bytes", len(rest))
		}
		var q queuedItem
		if err := msgpack.Unmarshal(value, &q); err != nil || len(q.PeerBox) != 32 {
			return fmt.Errorf("client: decode queued handoff item: %v", err)
		}
		peer := [32]byte(rest[:32])
		if byPeer[peer] == nil {
			order = append(order, peer)
		}
		byPeer[peer] = append(byPeer[peer], queued{bytes.Clone(key), q})
		return nil
	})
	if err != nil {
		return err
	}
	for _, peer := range order {
		for _, batch := range messageBatches(byPeer[peer]) {
			to := PublicID{Sign: bytes.Clone(peer[:]), Box: [32]byte(batch[0].item.PeerBox)}
			items := make([]handoffItem, len(batch))
			var done Batch
			for i, q := range batch {
				items[i] = q.item.Item
				done.Del(q.key)
			}
			if err := s.post(ctx, as, to, items, &done); err != nil {
				return err
			}
		}
	}
	return nil
}

// errScanDone ends a Scan that found what it looked for.
var errScanDone = errors.New("client: scan done")

// queued is an item waiting in the queue, with its store key.
type queued struct {
	key  []byte
	item queuedItem
}

// messageBatches splits the items queued for one device into messages
// of at most maxHandoffItems. Sorted by document, an offer sits right
// before its proof, and a message that would end between the two ends
// before the offer, so both arrive together.
func messageBatches(all []queued) [][]queued {
	slices.SortStableFunc(all, func(a, b queued) int {
		if c := bytes.Compare(a.item.Item.Doc, b.item.Item.Doc); c != 0 {
			return c
		}
		return kindOrder(a.item.Item.Kind) - kindOrder(b.item.Item.Kind)
	})
	var out [][]queued
	for len(all) > 0 {
		n := min(len(all), maxHandoffItems)
		if n < len(all) && all[n].item.Item.Kind == itemProof && n > 1 {
			n--
		}
		out = append(out, all[:n])
		all = all[n:]
	}
	return out
}

// kindOrder orders the items of one document in a message: an offer
// right before its proof, and a reply after both.
func kindOrder(kind uint8) int {
	switch kind {
	case itemOffer:
		return 0
	case itemProof:
		return 1
	}
	return 2
}

// post writes items to the first unused slot of to's inbox and then
// applies done, which deletes them from the queue. After maxSlotTries
// used slots it saves how far it got and leaves the items queued for the
// next pass.
func (s *session) post(ctx context.Context, as *Identity, to PublicID, items []handoffItem, done *Batch) error {
	counter := peerKey(peerSlotPrefix, to.Sign, []byte(s.host))
	n, err := s.c.readCounter(ctx, counter)
	if err != nil {
		return err
	}
	for range maxSlotTries {
		slot, err := inboxSlot(to, n)
		if err != nil {
			return err
		}
		// Taking the slot opens it, if its owner has not yet, so the
		// relay takes a response to it.
		used, err := s.takeSlot(ctx, slot)
		if err != nil {
			return fmt.Errorf("client: open a slot of %s's inbox: %w", to.Fingerprint(), err)
		}
		if len(used) == 0 {
			msg, err := as.sealHandoff(to, slot, items)
			if err != nil {
				return err
			}
			reply, err := s.call(ctx, &wire.PostInvite{ID: slot[:], Response: msg})
			var werr *wire.Error
			switch {
			case errors.As(err, &werr) && werr.Code == wire.CodeInvitationUsed:
				// Another sender took the slot first.
			case err != nil:
				return fmt.Errorf("client: post to %s's inbox: %w", to.Fingerprint(), err)
			default:
				if _, ok := reply.(*wire.OK); !ok {
					return fmt.Errorf("client: relay responded to PostInvite with message type %d, want OK", reply.Type())
				}
				done.Put(counter, binary.BigEndian.AppendUint64(nil, n+1))
				if err := s.c.store.Write(ctx, done); err != nil {
					return fmt.Errorf("client: save sent handoff items: %w", err)
				}
				s.c.log.Info("handoff message posted", "to", to.Fingerprint(), "items", len(items), "slot", n)
				return nil
			}
		}
		n++
	}
	var b Batch
	b.Put(counter, binary.BigEndian.AppendUint64(nil, n))
	if err := s.c.store.Write(ctx, &b); err != nil {
		return fmt.Errorf("client: save inbox position of %s: %w", to.Fingerprint(), err)
	}
	s.c.log.Warn("inbox of another device has many used slots, the post goes on in the next pass", "to", to.Fingerprint(), "slot", n)
	// The next pass starts at once, not at the next timed relist.
	s.c.signalWake()
	return nil
}

// forgetPeer deletes what this device keeps for handoffs with dev: its
// open offers, queued items, member keys, inbox positions, and its record
// as a device that offered a recovery device documents.
func (c *Client) forgetPeer(ctx context.Context, dev []byte) error {
	var b Batch
	for _, prefix := range []string{offerPrefix, queuePrefix, peerKeyPrefix, peerSlotPrefix, offeredByPrefix} {
		err := c.store.Scan(ctx, peerKey(prefix, dev), func(key, _ []byte) error {
			b.Del(bytes.Clone(key))
			return nil
		})
		if err != nil {
			return fmt.Errorf("client: read handoff records of an unlinked device: %w", err)
		}
	}
	if err := c.store.Write(ctx, &b); err != nil {
		return fmt.Errorf("client: delete handoff records of an unlinked device: %w", err)
	}
	return nil
}

// LinkedDeviceOf returns the linked device that is a member of doc under
// key member: its device key, or the key it replied to an offer of doc
// with or offered doc under.
func (c *Client) LinkedDeviceOf(ctx context.Context, doc envelope.DocID, member []byte) (LinkedDevice, bool, error) {
	linked, err := c.LinkedDevices(ctx)
	if err != nil {
		return LinkedDevice{}, false, err
	}
	for _, l := range linked {
		if bytes.Equal(l.Sign, member) {
			return l, true, nil
		}
		k, err := c.store.Get(ctx, peerKey(peerKeyPrefix, l.Sign, doc[:]))
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return LinkedDevice{}, false, fmt.Errorf("client: read the key of a linked device: %w", err)
		case bytes.Equal(k, member):
			return l, true, nil
		}
	}
	return LinkedDevice{}, false, nil
}
