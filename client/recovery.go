package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/hkdf"

	"interlude/client/keyring"
	"interlude/sync/envelope"
	"interlude/sync/membership"
)

// A recovery phrase as one more device.
//
// A person who writes down a recovery phrase gets one more device whose
// keys the phrase derives and that no disk holds. The device that made
// the phrase links that recovery device (LinkRecoveryDevice), so it is a
// member of every document of the person, now and later. A person who
// loses every device types the phrase on a new one. A client then runs
// as the recovery device for a moment, on a store in memory, and hands
// every document over to the new device (HandOver). Losing every device
// and the phrase loses the documents, because no one else holds a key.
//
// A recovery device never runs until it is needed, so it cannot reply to
// offers (see handoff.go). Its keys for each document derive instead from
// a root, which HKDF derives from its private keys. The linking device
// keeps that root, adds the recovery device to each document under the
// keys the root gives, and posts an offer of the document to its inbox,
// from which the recovery client learns the document ids. So the relay
// finds a different key for the recovery device in each document, as for
// any other device. Anyone with the linking device's store can derive
// those keys, as they could take the device's own. So after losing the
// device that made a phrase, remove that phrase as well and make a new
// one. Other devices cannot derive its keys, so their UnlinkDevice names
// the documents where it is a member (UnlinkUnsureError).

// recoveryRootInfo is the HKDF info of the root of a recovery device's
// document keys.
const recoveryRootInfo = "interlude/client/v1 recovery document key root"

// recoveryRoot derives the root of a recovery device's document keys
// from its private keys, given as secret.
func recoveryRoot(secret []byte) ([]byte, error) {
	root := make([]byte, 32)
	if _, err := io.ReadFull(hkdf.New(sha256.New, secret, nil, []byte(recoveryRootInfo)), root); err != nil {
		return nil, fmt.Errorf("client: derive the root of recovery document keys: %w", err)
	}
	return root, nil
}

// RecoveryIdentity returns the identity of the recovery device that the
// phrase derives.
func RecoveryIdentity(p *keyring.RecoveryPhrase) (*Identity, error) {
	seed, boxKey, err := p.DeviceSeeds()
	if err != nil {
		return nil, fmt.Errorf("client: derive recovery device keys: %w", err)
	}
	defer clear(seed)
	defer clear(boxKey[:])
	id, err := newIdentity(seed, boxKey)
	if err != nil {
		return nil, err
	}
	id.recovery = true
	return id, nil
}

// recoveryRootOf returns the root of the document keys of id, a
// recovery device.
func (id *Identity) recoveryRootOf() ([]byte, error) {
	secret := append(id.signing.Seed(), id.boxKey[:]...)
	defer clear(secret)
	return recoveryRoot(secret)
}

// LinkRecoveryDevice links the recovery device r, which a recovery
// phrase derived, like LinkDevice, but adds it to each document at once
// under the keys its root derives, and offers it each document so it
// finds them when it runs. It returns the number of documents changed.
func (c *Client) LinkRecoveryDevice(ctx context.Context, r *Identity) (int, error) {
	if !r.recovery {
		return 0, errors.New("client: LinkRecoveryDevice takes the identity that RecoveryIdentity returns: link other devices with LinkDevice")
	}
	root, err := r.recoveryRootOf()
	if err != nil {
		return 0, err
	}
	return c.link(ctx, r.public, linkedRecord{Root: root})
}

// HandOver links the device of client to, open in this process, from c,
// then syncs both until to holds every document c is a member of. A
// recovery client uses it to bring a new device into the person's
// documents before it closes. It returns the number of documents offered.
func (c *Client) HandOver(ctx context.Context, to *Client) (int, error) {
	if err := c.settle(ctx); err != nil {
		return 0, err
	}
	// to takes this client's offers as a linked device's, so none is
	// left out by the bound on offers from other devices.
	sender := [32]byte(c.id.public.Sign)
	to.mu.Lock()
	if to.handOverFrom == nil {
		to.handOverFrom = map[[32]byte]bool{}
	}
	to.handOverFrom[sender] = true
	to.mu.Unlock()
	defer func() {
		to.mu.Lock()
		delete(to.handOverFrom, sender)
		to.mu.Unlock()
	}()
	n, err := c.LinkDevice(ctx, to.id.public)
	if err != nil {
		return 0, err
	}
	// An offer, a reply, the addition and the fetch take two rounds; a
	// third covers a document that arrived at c meanwhile.
	for range 3 {
		if err := c.SyncOnce(ctx); err != nil {
			return n, err
		}
		if err := to.SyncOnce(ctx); err != nil {
			return n, err
		}
		if c.handedOver(to) {
			return n, c.handOverKeys(ctx, to)
		}
	}
	return n, fmt.Errorf("client: %d of %d documents reached the new device: run the recovery again", len(to.Documents()), len(c.Documents()))
}

// handOverKeys copies to to the devices that offered this recovery
// client documents, and their keys in each, so that to can remove a lost
// one exactly with UnlinkDevice.
func (c *Client) handOverKeys(ctx context.Context, to *Client) error {
	if !c.id.recovery {
		return nil
	}
	var b Batch
	for _, prefix := range []string{offeredByPrefix, peerKeyPrefix} {
		err := c.store.Scan(ctx, []byte(prefix), func(key, value []byte) error {
			b.Put(bytes.Clone(key), bytes.Clone(value))
			return nil
		})
		if err != nil {
			return fmt.Errorf("client: read the keys to hand over: %w", err)
		}
	}
	if len(b.Ops) == 0 {
		return nil
	}
	if err := to.store.Write(ctx, &b); err != nil {
		return fmt.Errorf("client: save the devices that offered the recovery device documents: %w", err)
	}
	return nil
}

// settle syncs until a sync brings no new document. A recovery client
// learns document ids from its inbox in one sync and fetches them in the
// next, and a long inbox takes several.
func (c *Client) settle(ctx context.Context) error {
	before := -1
	for range 32 {
		if err := c.SyncOnce(ctx); err != nil {
			return err
		}
		n := len(c.Documents())
		if n == before {
			return nil
		}
		before = n
	}
	return nil
}

// handedOver reports whether to holds every document c is a member of.
func (c *Client) handedOver(to *Client) bool {
	held := map[envelope.DocID]bool{}
	for _, id := range to.Documents() {
		held[id] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, d := range c.docs {
		if _, ok := d.log.state.Member(d.self.member()); ok && !held[id] {
			return false
		}
	}
	return true
}

// addRecoveryLocked adds the recovery device dev to d under the keys its
// root derives, unless they ever were members, and offers it d, so that
// the recovery client learns d's id from its inbox.
func (c *Client) addRecoveryLocked(ctx context.Context, d *document, dev LinkedDevice) (bool, error) {
	k, err := deriveDocKeys(dev.root, d.id)
	if err != nil {
		return false, err
	}
	if d.log.state.WasMember(k.member()) || c.hasOpLocked(d, membership.OpAddDevice, k.public.Sign) {
		return false, nil
	}
	op := pendingOp{Op: uint8(membership.OpAddDevice), Sign: bytes.Clone(k.public.Sign), Box: bytes.Clone(k.public.Box[:])}
	if err := c.queueOpLocked(ctx, d, op); err != nil {
		return false, err
	}
	if _, err := c.offerLocked(ctx, d, dev.PublicID); err != nil {
		return false, err
	}
	return true, nil
}
