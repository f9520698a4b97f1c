package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"

	"interlude/sync/envelope"
	"interlude/sync/membership"
	"interlude/sync/wire"
)

// maxEntryRetries bounds how often one membership change is rebuilt after
// another admin's entry took its place in the log.
const maxEntryRetries = 5

// syncMembership registers the documents the relay does not know yet,
// fetches the membership log of each document not yet subscribed in this
// session, and sends the pending membership changes.
func (s *session) syncMembership(ctx context.Context) error {
	type job struct {
		id       envelope.DocID
		register bool
		fetch    bool
		ops      bool
	}
	var jobs []job
	s.mu.Lock()
	skip := maps.Clone(s.unavailable)
	subscribed := maps.Clone(s.subscribed)
	s.mu.Unlock()
	s.c.mu.Lock()
	for id, d := range s.c.docs {
		if skip[id] != nil {
			continue
		}
		j := job{id: id, register: !d.meta.Registered, fetch: !subscribed[id], ops: len(d.log.ops) > 0}
		if j.register || j.fetch || j.ops {
			jobs = append(jobs, j)
		}
	}
	s.c.mu.Unlock()
	ids := make([]envelope.DocID, len(jobs))
	for i, j := range jobs {
		ids[i] = j.id
	}
	if err := s.claimHeld(ctx, ids); err != nil {
		return err
	}

	// 1. Every log is brought up to date first, so that a device the
	//    person removed in one document is unlinked before any other
	//    document adds it (below).
	var ready []envelope.DocID
	for _, j := range jobs {
		if j.register {
			if err := s.register(ctx, j.id); err != nil {
				return err
			}
		}
		if !j.fetch && !j.ops {
			continue
		}
		ok, err := s.fetchLog(ctx, j.id)
		if err != nil || !ok {
			return err
		}
		s.c.mu.Lock()
		d := s.c.docs[j.id]
		removed := d.removed()
		back := removed && s.c.otherKeyMemberLocked(d)
		s.c.mu.Unlock()
		if back {
			if err := s.rejoin(ctx, j.id); err != nil {
				return err
			}
			continue
		}
		if removed {
			// The relay serves a former member the log up to its
			// removal: nothing more of the document syncs, and this
			// session does not ask again.
			s.c.log.Info("this device was removed from the document; its copy stays readable here", "doc", j.id)
			s.mu.Lock()
			s.subscribed[j.id] = true
			s.removed[j.id] = true
			s.mu.Unlock()
			continue
		}
		ready = append(ready, j.id)
	}

	// 2. Devices that a linked device removed anywhere are unlinked here,
	//    which drops additions of them not sent yet. Then the person's
	//    other devices are brought in where they are missing (see
	//    devices.go).
	if err := s.followLinks(ctx, ready); err != nil {
		return err
	}

	// 3. Then the changes go out.
	for _, id := range ready {
		s.c.mu.Lock()
		pending := len(s.c.docs[id].log.ops) > 0
		s.c.mu.Unlock()
		if pending {
			if err := s.sendChanges(ctx, id); err != nil {
				return err
			}
		}
	}
	return nil
}

// followLinks unlinks the devices removed elsewhere, then brings the
// linked devices into each of docs (see devices.go).
func (s *session) followLinks(ctx context.Context, docs []envelope.DocID) error {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	if err := s.c.unlinkRemovedLocked(ctx); err != nil {
		return err
	}
	linked, err := s.c.LinkedDevices(ctx)
	if err != nil {
		return err
	}
	peers, err := s.c.peerMemberKeys(ctx)
	if err != nil {
		return err
	}
	for _, id := range docs {
		if err := s.c.followLinksLocked(ctx, s.c.docs[id], linked, peers); err != nil {
			return err
		}
	}
	return nil
}

// register sends the first entry of a document's log, which creates the
// document on the relay.
func (s *session) register(ctx context.Context, id envelope.DocID) error {
	s.c.mu.Lock()
	d := s.c.docs[id]
	first := d.log.entries[0]
	s.c.mu.Unlock()
	if err := s.appendEntry(ctx, id, first); err != nil {
		return fmt.Errorf("client: register document %s: %w", id, err)
	}
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	d.meta.Registered = true
	var b Batch
	if err := putMeta(&b, d); err != nil {
		return err
	}
	if err := s.c.store.Write(ctx, &b); err != nil {
		return fmt.Errorf("client: save registration of document %s: %w", id, err)
	}
	s.c.log.Info("document registered with relay", "doc", id)
	s.c.notifyLocked(id)
	return nil
}

// appendEntry sends e and stores the relay's countersignature. The entry
// is applied to the log first if a delivery has not done so already.
func (s *session) appendEntry(ctx context.Context, id envelope.DocID, e *membership.Entry) error {
	raw := e.Encode()
	r, err := s.call(ctx, &wire.AppendEntry{Doc: id[:], Entry: raw})
	if err != nil {
		return err
	}
	ack, ok := r.(*wire.EntryAck)
	if !ok {
		return fmt.Errorf("client: relay responded to AppendEntry with message type %d", r.Type())
	}
	hash := e.Hash()
	if ack.Index != e.Index || !membership.VerifyCountersign(s.relayKey, id, e.Index, hash, ack.Countersig) {
		return fmt.Errorf("client: relay acknowledged membership entry %d of document %s without a valid countersignature: it may be forging its replies", e.Index, id)
	}

	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	d := s.c.docs[id]
	var b Batch
	switch {
	case d.log.state.Len() == e.Index:
		if err := s.c.appendEntryLocked(d, e, raw, ack.Countersig, &b); err != nil {
			return fmt.Errorf("client: apply accepted membership entry %d of document %s: %w", e.Index, id, err)
		}
	case d.log.state.Len() > e.Index && d.log.entries[e.Index].Hash() == hash:
		if err := s.c.storeCountersigLocked(d, e.Index, raw, ack.Countersig, &b); err != nil {
			return err
		}
	default:
		return fmt.Errorf("client: relay accepted membership entry %d of document %s, which does not follow this device's log of %d entries", e.Index, id, d.log.state.Len())
	}
	if err := putMeta(&b, d); err != nil {
		return err
	}
	if err := s.c.store.Write(ctx, &b); err != nil {
		return fmt.Errorf("client: save membership entry of document %s: %w", id, err)
	}
	s.c.notifyLocked(id)
	return nil
}

// getLog fetches id's membership log from index from to its end, page by
// page.
func (s *session) getLog(ctx context.Context, id envelope.DocID, from uint64) ([]wire.LogEntry, error) {
	var all []wire.LogEntry
	for {
		r, err := s.call(ctx, &wire.GetLog{Doc: id[:], From: from})
		if err != nil {
			return nil, err
		}
		lg, ok := r.(*wire.Log)
		if !ok {
			return nil, fmt.Errorf("client: relay responded to GetLog with message type %d", r.Type())
		}
		all = append(all, lg.Entries...)
		if !lg.More || len(lg.Entries) == 0 {
			return all, nil
		}
		from += uint64(len(lg.Entries))
	}
}

// fetchLog applies the entries of id's log after those this device
// holds. It returns false when the relay does not serve the document to
// this device, which it then records as unavailable.
func (s *session) fetchLog(ctx context.Context, id envelope.DocID) (bool, error) {
	// The fetch starts at the newest entry this device holds, so a relay
	// that now serves another log at that index shows it: the two
	// countersigned entries are a proof of its fork.
	s.c.mu.Lock()
	from := s.c.docs[id].log.state.Len()
	s.c.mu.Unlock()
	if from > 0 {
		from--
	}
	entries, err := s.getLog(ctx, id, from)
	var relayErr *wire.Error
	if errors.As(err, &relayErr) && relayErr.Code == wire.CodeNotMember {
		s.markUnavailable(id)
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("client: fetch membership log of document %s: %w", id, err)
	}

	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	d := s.c.docs[id]
	if _, err := s.c.trustLocked(ctx, d); err != nil {
		return false, err
	}
	var b Batch
	rc := newReceiver(ctx, s.c, &b)
	for _, le := range entries {
		if err := rc.receiveEntry(d, le.Entry, le.Countersig, s.relayKey); err != nil {
			return false, err
		}
	}
	if err := putMeta(&b, d); err != nil {
		return false, err
	}
	if err := s.c.store.Write(ctx, &b); err != nil {
		d.trust = nil
		return false, fmt.Errorf("client: save membership log of document %s: %w", id, err)
	}
	return true, nil
}

func (s *session) markUnavailable(id envelope.DocID) {
	err := fmt.Errorf("client: relay %s has no record of document %s for this device: a member removed this device from it, or the relay's data was reset or is another relay's. The copy here stays readable ('interlude doc cat'), but nothing more arrives for it from this relay", s.c.relay, id)
	s.c.log.Error("document not available on relay, skipped", "doc", id, "err", err)
	s.mu.Lock()
	s.unavailable[id] = err
	s.subscribed[id] = true
	s.mu.Unlock()
}

// sendChanges turns each pending membership change of id into an entry on
// top of the log and sends it. When another admin's entry took the index
// first, it fetches the log and builds the entry again.
func (s *session) sendChanges(ctx context.Context, id envelope.DocID) error {
	retries := 0
	for {
		s.c.mu.Lock()
		d := s.c.docs[id]
		e, err := s.c.buildEntryLocked(ctx, d)
		var n uint64
		if e != nil {
			n = d.log.ops[0].N
		}
		s.c.mu.Unlock()
		if err != nil || e == nil {
			return err
		}

		err = s.appendEntry(ctx, id, e)
		var relayErr *wire.Error
		switch {
		case err == nil:
			retries = 0
			s.c.log.Info("membership change accepted by relay", "doc", id, "op", e.Op.String(), "index", e.Index, "epoch", e.Epoch)
		case errors.As(err, &relayErr) && relayErr.Code == wire.CodeStaleLog && retries < maxEntryRetries:
			retries++
			if _, err := s.fetchLog(ctx, id); err != nil {
				return err
			}
			continue
		case errors.As(err, &relayErr) && (relayErr.Code == wire.CodeBadEntry || relayErr.Code == wire.CodeForbidden):
			s.c.log.Warn("membership change rejected by the relay and dropped", "doc", id, "op", e.Op.String(), "err", err)
		default:
			return fmt.Errorf("client: send membership change of document %s: %w", id, err)
		}
		s.c.mu.Lock()
		err = s.c.dropOpLocked(ctx, d, n)
		s.c.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// otherKeyMemberLocked reports whether d's log makes this device a member
// under the key it does not use in d: its document key where it uses its
// device key, or the reverse. That happens when a member adds the device
// back, after removing it, by an invitation or by its public id.
func (c *Client) otherKeyMemberLocked(d *document) bool {
	other := c.id.deviceKeys()
	if !d.meta.DocKey {
		k, err := c.id.documentKeys(d.id)
		if err != nil {
			return false
		}
		other = k
	}
	_, member := d.log.state.Member(other.member())
	return member
}

// rejoin replaces the copy of document id, from which this device was
// removed, by the document as the relay now serves it under the device's
// other key. The history comes back from the relay under a new replica
// id. Edits saved after the removal, which the relay refused, were lost
// already. If the document cannot be taken, the old copy stays.
func (s *session) rejoin(ctx context.Context, id envelope.DocID) error {
	var old [][]byte
	err := s.c.store.Scan(ctx, docPrefix(id), func(key, _ []byte) error {
		old = append(old, bytes.Clone(key))
		return nil
	})
	if err != nil {
		return fmt.Errorf("client: read the old copy of document %s: %w", id, err)
	}
	s.c.mu.Lock()
	prev := s.c.docs[id]
	delete(s.c.docs, id)
	s.c.mu.Unlock()

	err = s.acceptDocument(ctx, id, old)
	s.c.mu.Lock()
	_, added := s.c.docs[id]
	if !added {
		s.c.docs[id] = prev
	}
	s.c.mu.Unlock()
	if err != nil {
		return err
	}
	if added {
		s.c.log.Info("added back to the document under this device's other key", "doc", id)
		s.mu.Lock()
		delete(s.subscribed, id)
		delete(s.removed, id)
		s.mu.Unlock()
	}
	return nil
}
