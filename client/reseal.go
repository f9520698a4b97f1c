package client

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	"interlude/sync/envelope"
)

// Edits made before this device learned of a removal.
//
// An edit is sealed when it is saved, under the newest key epoch the
// device holds then. A device that saves edits offline, or before its
// next sync, may seal them under an epoch that a removal has already
// ended elsewhere, and the removed member holds that epoch's key. Before
// each push, such envelopes are sealed again under the newest epoch, as
// long as no push has sent them yet. One that was sent may be stored on
// the relay even if its acknowledgement was lost, so it is never changed.
// The mark of what was sent is written before the push.

// sentKey holds a document's sent mark: 8 bytes, big-endian.
func sentKey(id envelope.DocID) []byte { return append(docPrefix(id), "/sent"...) }

// prepareSendLocked seals again the unsent envelopes of d that an older
// epoch seals, and marks every envelope in d's outbox as sent. The caller
// sends the outbox once it returns.
func (c *Client) prepareSendLocked(ctx context.Context, d *document) error {
	if err := c.resealLocked(ctx, d); err != nil {
		return err
	}
	last := d.outbox[len(d.outbox)-1].seq
	if last <= d.sent {
		return nil
	}
	var b Batch
	b.Put(sentKey(d.id), binary.BigEndian.AppendUint64(nil, last))
	if err := c.store.Write(ctx, &b); err != nil {
		return fmt.Errorf("client: save sent mark of document %s: %w", d.id, err)
	}
	d.sent = last
	return nil
}

// resealLocked seals again, under the newest key epoch of d's log, the
// unsent envelopes from the first one that an older epoch seals. The ones
// after it are sealed again too, because each names the hash of the one
// before. On error d is unchanged.
func (c *Client) resealLocked(ctx context.Context, d *document) error {
	newest := d.log.state.Epoch()
	first := -1
	for i, e := range d.outbox {
		if e.seq <= d.sent {
			continue
		}
		env, err := envelope.Unmarshal(e.envelope)
		if err != nil {
			return fmt.Errorf("client: outbox envelope %d of document %s: %w", e.seq, d.id, err)
		}
		if env.Epoch < newest {
			first = i
			break
		}
	}
	if first < 0 {
		return nil
	}
	key := d.epochKey(newest)
	if key == nil {
		// The log names an epoch this device cannot open: it was removed,
		// and the envelopes stay as they are.
		return nil
	}
	trust, err := c.trustLocked(ctx, d)
	if err != nil {
		return err
	}

	self := d.self.member()
	var prev envelope.Hash
	if seq := d.outbox[first].seq; seq > 1 {
		h, err := c.store.Get(ctx, chainIndexKey(d.id, self, seq-1))
		if err != nil {
			return fmt.Errorf("client: read hash of this device's envelope %d of document %s: %w", seq-1, d.id, err)
		}
		if len(h) != envelope.HashSize {
			return fmt.Errorf("client: stored hash of this device's envelope %d of document %s is %d bytes, want %d", seq-1, d.id, len(h), envelope.HashSize)
		}
		prev = envelope.Hash(h)
	}
	outbox := slices.Clone(d.outbox)
	var b Batch
	for i := first; i < len(outbox); i++ {
		e := &outbox[i]
		old, err := envelope.Unmarshal(e.envelope)
		if err != nil {
			return fmt.Errorf("client: outbox envelope %d of document %s: %w", e.seq, d.id, err)
		}
		oldKey := d.epochKey(old.Epoch)
		if oldKey == nil {
			return fmt.Errorf("client: this device holds no key of epoch %d, which seals its own envelope %d of document %s", old.Epoch, e.seq, d.id)
		}
		update, err := old.Open(oldKey)
		if err != nil {
			return fmt.Errorf("client: open own envelope %d of document %s: %w", e.seq, d.id, err)
		}
		h, err := c.sealHeaderLocked(trust, d, e.seq, prev)
		if err != nil {
			return err
		}
		env, err := envelope.Seal(h, key, d.self.signing, update)
		if err != nil {
			return err
		}
		if e.envelope, err = env.Marshal(); err != nil {
			return err
		}
		prev = env.Hash()
		b.Put(outboxKey(d.id, e.seq), e.envelope)
		b.Put(chainIndexKey(d.id, self, e.seq), prev[:])
	}
	b.Put(ownHashKey(d.id), prev[:])
	if err := c.store.Write(ctx, &b); err != nil {
		return fmt.Errorf("client: save envelopes sealed again of document %s: %w", d.id, err)
	}
	d.outbox = outbox
	trust.ownHash = prev
	c.log.Info("unsent edits sealed again under the newest key epoch", "doc", d.id, "from_seq", outbox[first].seq, "envelopes", len(outbox)-first, "epoch", newest)
	return nil
}
