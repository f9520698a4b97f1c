package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	gosync "sync"
	"time"

	"interlude/sync/envelope"
	"interlude/sync/membership"
	"interlude/sync/wire"
)

// maxInFlight bounds the pushes sent before their acknowledgements, so a
// long outbox streams without waiting for each round trip.
const maxInFlight = 64

// relistInterval is how often a running session requests from the relay
// documents newly shared with this device, in case a Shared notice was
// missed. A variable so that a test can take the timer out of play.
var relistInterval = 15 * time.Second

// Backoff bounds between reconnection attempts.
const (
	minBackoff = 500 * time.Millisecond
	maxBackoff = 30 * time.Second
)

// Run keeps a session with the relay until ctx ends, reconnecting with
// jittered exponential backoff whenever the relay goes away. It returns
// ctx's error.
func (c *Client) Run(ctx context.Context) error {
	backoff := minBackoff
	for attempt := 1; ; attempt++ {
		started := time.Now()
		err := c.session(ctx, false)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Since(started) > maxBackoff {
			backoff = minBackoff
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		c.log.Warn("relay session ended, reconnecting", "relay", c.relay, "err", err, "attempt", attempt, "wait", wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// SyncOnce connects to the relay, accepts documents shared with this
// device, pushes the outbox, pulls until every document has caught up,
// and disconnects.
func (c *Client) SyncOnce(ctx context.Context) error {
	return c.session(ctx, true)
}

// session is one connection to the relay. With once set, it returns nil
// as soon as everything is pushed and pulled.
func (c *Client) session(ctx context.Context, once bool) error {
	return c.withSession(ctx, func(s *session) error {
		c.sessionStarted(1)
		defer c.sessionStarted(-1)
		c.log.Info("relay session started", "relay", c.relay)
		return s.run(s.ctx, once)
	})
}

// withSession connects and authenticates to the relay, reads its
// messages in the background and runs fn until fn, the reader or ctx
// ends.
func (c *Client) withSession(ctx context.Context, fn func(s *session) error) error {
	if c.dialer == nil || c.relay == "" {
		return errors.New("client: no relay configured: set Config.Dialer and Config.RelayURL")
	}
	host, err := relayHost(c.relay)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conn, err := c.dialer.Dial(ctx, c.relay)
	if err != nil {
		return fmt.Errorf("client: connect to relay %s: %w", c.relay, err)
	}
	s := &session{
		c:           c,
		ctx:         ctx,
		conn:        conn,
		replies:     make(map[uint64]chan wire.Message),
		subscribed:  make(map[envelope.DocID]bool),
		unavailable: make(map[envelope.DocID]error),
		caught:      make(map[envelope.DocID]bool),
		claimed:     make(map[envelope.DocID]bool),
		removed:     make(map[envelope.DocID]bool),
		done:        make(chan struct{}),
	}
	defer s.close()

	// 1. Authenticate before anything else, because the relay
	//    serves nothing to an unknown device.
	if err := s.authenticate(ctx, host); err != nil {
		return err
	}

	// 2. Read in the background: replies go to the waiting request,
	//    deliveries are applied as they come.
	readErr := make(chan error, 1)
	go func() { readErr <- s.readLoop(ctx) }()

	work := make(chan error, 1)
	go func() { work <- fn(s) }()
	var result error
	workDone, readDone := false, false
	select {
	case result = <-work:
		workDone = true
	case result = <-readErr:
		readDone = true
	case <-ctx.Done():
		result = ctx.Err()
	}
	// Both goroutines end before the session does, so none of its work
	// touches the store after Run returns and Close closes it. Both
	// watch the session's end; the bound only keeps a bug from hanging
	// the caller, and is logged.
	cancel()
	s.close()
	bound := time.NewTimer(sessionEndBound)
	defer bound.Stop()
	for !workDone || !readDone {
		select {
		case <-work:
			workDone = true
		case <-readErr:
			readDone = true
		case <-bound.C:
			c.log.Error("relay session work did not end after the session closed", "work_done", workDone, "read_done", readDone)
			return result
		}
	}
	return result
}

// sessionEndBound bounds the wait for a closed session's goroutines.
const sessionEndBound = 10 * time.Second

type session struct {
	c    *Client
	ctx  context.Context // ends with the session
	conn Conn

	writeMu gosync.Mutex // serializes WriteFrame

	mu      gosync.Mutex // guards the fields below
	nextRef uint64
	replies map[uint64]chan wire.Message
	// subscribed lists the documents subscribed in this session.
	subscribed map[envelope.DocID]bool
	// unavailable holds the documents the relay refused to serve in this
	// session, with the reason.
	unavailable map[envelope.DocID]error
	// removed holds the documents whose log showed this device removed in
	// this session, which the session fetches again after a Shared
	// notice, in case a member added the device back.
	removed map[envelope.DocID]bool
	// caught holds the documents whose backlog this session received;
	// guarded by Client.mu.
	caught map[envelope.DocID]bool
	// relayKey is the relay's countersigning key from Hello.
	relayKey ed25519.PublicKey
	// host and challenge are the relay's host name and the connection's
	// challenge from Hello, which every claim signs.
	host      string
	challenge []byte
	// claimed lists the documents whose keys this session claimed. Only
	// the goroutine running the session's work uses it.
	claimed   map[envelope.DocID]bool
	done      chan struct{}
	closeOnce gosync.Once
}

// close ends the session. The documents it caught up on lose this
// session's count; another open session's stay as they are.
func (s *session) close() {
	first := false
	s.closeOnce.Do(func() {
		first = true
		close(s.done)
		s.conn.Close()
	})
	if !first {
		return
	}
	s.c.mu.Lock()
	for id := range s.caught {
		if d, ok := s.c.docs[id]; ok && d.caughtUp > 0 {
			d.caughtUp--
		}
	}
	s.caught = nil
	s.c.mu.Unlock()
}

// sessionStarted adds delta to the count of open sessions and notifies
// the listeners, whose status shows whether any session is open.
func (c *Client) sessionStarted(delta int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sessions += delta
	c.notifyAllLocked()
}

// notifyAllLocked notifies the listeners of a change of every document,
// for a change of this device's state beside the documents: an app then
// reads that state again.
func (c *Client) notifyAllLocked() {
	for id := range c.docs {
		c.notifyLocked(id)
	}
}

// authenticate checks the relay's Hello and signs its challenge.
func (s *session) authenticate(ctx context.Context, host string) error {
	// 1. The Hello must come from the relay this client dialed, in this
	//    protocol version.
	msg, err := s.read(ctx)
	if err != nil {
		return err
	}
	hello, ok := msg.(*wire.Hello)
	if !ok {
		return fmt.Errorf("client: relay sent message type %d before Hello", msg.Type())
	}
	if hello.Version != wire.Version {
		return fmt.Errorf("client: relay speaks protocol version %d, this client %d: upgrade the older side", hello.Version, wire.Version)
	}
	if hello.Relay != host {
		return fmt.Errorf("client: relay names itself %q, but this client connected to %q: check the relay URL", hello.Relay, host)
	}
	if len(hello.RelayKey) != ed25519.PublicKeySize {
		return fmt.Errorf("client: relay sent a countersigning key of %d bytes, want %d", len(hello.RelayKey), ed25519.PublicKeySize)
	}
	s.relayKey = hello.RelayKey
	s.host, s.challenge = host, hello.Challenge

	// 2. Sign the challenge bound to the host, then wait for Welcome.
	sig := ed25519.Sign(s.c.id.signing, wire.AuthMessage(host, hello.Challenge))
	if err := s.write(ctx, &wire.Auth{Version: wire.Version, Device: s.c.id.public.Sign, Signature: sig}); err != nil {
		return err
	}
	msg, err = s.read(ctx)
	if err != nil {
		return err
	}
	switch m := msg.(type) {
	case *wire.Welcome:
		return nil
	case *wire.Error:
		return fmt.Errorf("client: authentication failed: %w", m)
	default:
		return fmt.Errorf("client: relay sent message type %d in place of Welcome", msg.Type())
	}
}

func (s *session) read(ctx context.Context) (wire.Message, error) {
	frame, err := s.conn.ReadFrame(ctx)
	if err != nil {
		return nil, fmt.Errorf("client: read from relay: %w", err)
	}
	return wire.Decode(frame)
}

func (s *session) write(ctx context.Context, m wire.Message) error {
	frame, err := wire.Encode(m)
	if err != nil {
		return err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.conn.WriteFrame(ctx, frame); err != nil {
		return fmt.Errorf("client: write to relay: %w", err)
	}
	return nil
}

// request sends m with a fresh Ref and returns a channel that receives
// the reply.
func (s *session) request(ctx context.Context, m wire.Message) (<-chan wire.Message, error) {
	reply := make(chan wire.Message, 1)
	s.mu.Lock()
	s.nextRef++
	ref := s.nextRef
	if !setRef(m, ref) {
		s.mu.Unlock()
		return nil, fmt.Errorf("client: message type %d is not a request", m.Type())
	}
	s.replies[ref] = reply
	s.mu.Unlock()
	if err := s.write(ctx, m); err != nil {
		return nil, err
	}
	return reply, nil
}

// call sends a request and waits for its reply. An Error reply is returned
// as a *wire.Error.
func (s *session) call(ctx context.Context, m wire.Message) (wire.Message, error) {
	reply, err := s.request(ctx, m)
	if err != nil {
		return nil, err
	}
	select {
	case r := <-reply:
		if e, ok := r.(*wire.Error); ok {
			return nil, e
		}
		return r, nil
	case <-s.done:
		return nil, errors.New("client: relay session closed")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// maxDeliveryGroup bounds how many deliveries are applied and stored in
// one write.
const maxDeliveryGroup = 256

// readLoop reads frames in one goroutine and handles them in this one, so
// deliveries that arrive together are stored in one write: one disk sync
// for a burst of updates instead of one each.
func (s *session) readLoop(ctx context.Context) error {
	inbox := make(chan wire.Message, maxDeliveryGroup)
	readErr := make(chan error, 1)
	go func() {
		defer close(inbox)
		for {
			msg, err := s.read(ctx)
			if err != nil {
				readErr <- err
				return
			}
			select {
			case inbox <- msg:
			case <-s.done:
				// readLoop returns this once it has handled what came
				// before, and withSession waits for it.
				readErr <- errors.New("client: relay session closed")
				return
			}
		}
	}()

	var group []*wire.Deliver
	for msg := range inbox {
		for msg != nil {
			d, ok := msg.(*wire.Deliver)
			if !ok {
				if err := s.handle(msg); err != nil {
					return err
				}
				break
			}
			group, msg = drainDeliveries(inbox, append(group[:0], d))
			if err := s.c.applyDeliveries(ctx, group, s.relayKey); err != nil {
				return err
			}
		}
	}
	return <-readErr
}

// drainDeliveries appends to group the deliveries already waiting in inbox.
// A waiting message of another type ends the group and is returned as
// next, so messages are still handled in the order they came.
func drainDeliveries(inbox <-chan wire.Message, group []*wire.Deliver) (_ []*wire.Deliver, next wire.Message) {
	for len(group) < maxDeliveryGroup {
		select {
		case msg, ok := <-inbox:
			if !ok {
				return group, nil
			}
			d, isDelivery := msg.(*wire.Deliver)
			if !isDelivery {
				return group, msg
			}
			group = append(group, d)
		default:
			return group, nil
		}
	}
	return group, nil
}

// handle dispatches one message that is not a delivery.
func (s *session) handle(msg wire.Message) error {
	switch m := msg.(type) {
	case *wire.CaughtUp:
		s.c.caughtUp(s, m)
	case *wire.Shared:
		// A member added this device to a document, or an invitee
		// responded to an invitation made here: the run loop lists the
		// documents and takes the responses again on waking, instead of
		// at the next relist.
		s.c.log.Info("relay reports a shared document or an invitation response")
		s.mu.Lock()
		for id := range s.removed {
			delete(s.subscribed, id)
			delete(s.removed, id)
		}
		s.mu.Unlock()
		s.c.signalWake()
	case *wire.Error:
		if m.Ref == 0 {
			return fmt.Errorf("client: relay closed the session: %w", m)
		}
		s.reply(m.Ref, m)
	case *wire.OK:
		s.reply(m.Ref, m)
	case *wire.Ack:
		s.reply(m.Ref, m)
	case *wire.Docs:
		s.reply(m.Ref, m)
	case *wire.EntryAck:
		s.reply(m.Ref, m)
	case *wire.Log:
		s.reply(m.Ref, m)
	case *wire.Invite:
		s.reply(m.Ref, m)
	case *wire.Chain:
		s.reply(m.Ref, m)
	default:
		return fmt.Errorf("client: unexpected message type %d from relay", msg.Type())
	}
	return nil
}

func (s *session) reply(ref uint64, m wire.Message) {
	s.mu.Lock()
	ch, ok := s.replies[ref]
	delete(s.replies, ref)
	s.mu.Unlock()
	if ok {
		ch <- m
	} else {
		s.c.log.Warn("reply to unknown request", "ref", ref, "type", m.Type())
	}
}

// run does the session's work in order: accept shared documents, take
// invitation responses, register new documents and send membership
// changes, subscribe, then push the outbox whenever it grows.
func (s *session) run(ctx context.Context, once bool) error {
	relist := time.NewTicker(relistInterval)
	defer relist.Stop()
	for {
		// 1. The relay serves a document under a document key only
		//    once the session claims that key.
		if err := s.claimKeys(ctx); err != nil {
			return err
		}
		// 2. Documents shared with this device come first, so their
		//    subscriptions start in this same pass.
		if err := s.acceptShared(ctx); err != nil {
			return err
		}
		// 3. A redeemed invitation becomes a membership change.
		if err := s.takeInvites(ctx); err != nil {
			return err
		}
		// 4. The person's sigchain and inbox, and shares with persons
		//    (see person.go). It comes before the device's inbox, so an
		//    offer to a person whose user key rotated is withdrawn before
		//    a reply to it from a revoked device is read.
		if err := s.syncPerson(ctx); err != nil {
			return err
		}
		// 5. Offers and replies from other devices (see handoff.go):
		//    replies become membership changes sent in step 6.
		if err := s.readInbox(ctx); err != nil {
			return err
		}
		// 6. The relay must know a document before it takes members or
		//    updates for it.
		if err := s.syncMembership(ctx); err != nil {
			return err
		}
		// 7. Subscribe before pushing, so deliveries are not missed.
		if err := s.subscribeAll(ctx); err != nil {
			return err
		}
		if err := s.pushOutbox(ctx); err != nil {
			return err
		}
		// 8. Offers made in steps 4 and 6, and replies to those read in
		//    steps 4 and 5, go out after this device's own writes.
		if err := s.sendHandoffs(ctx); err != nil {
			return err
		}
		if once {
			s.mu.Lock()
			skip := maps.Clone(s.unavailable)
			s.mu.Unlock()
			if s.c.allSynced(skip) {
				return errors.Join(slices.Collect(maps.Values(skip))...)
			}
			// Wait for CaughtUp of every subscription.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-s.done:
				return errors.New("client: relay session closed")
			case <-time.After(20 * time.Millisecond):
			}
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.c.wake:
		case <-relist.C:
		}
	}
}

// acceptShared accepts every document the relay lists for this device
// that this device does not have yet. It requests the list a page at a
// time, each page after the last document of the one before.
func (s *session) acceptShared(ctx context.Context) error {
	var after []byte
	for {
		docs, err := s.listDocs(ctx, after)
		if err != nil {
			return err
		}
		listed := 0
		for _, g := range docs.Grants {
			if len(g.Doc) != len(envelope.DocID{}) {
				continue
			}
			// The relay lists documents in id order. A grant that does not
			// sort after the one before it would let a faulty relay keep
			// this loop asking for pages forever.
			if after != nil && bytes.Compare(g.Doc, after) <= 0 {
				return fmt.Errorf("client: relay listed document %x after %x, out of document id order: the relay is faulty, report it to its operator", g.Doc, after)
			}
			after = g.Doc
			listed++

			id := envelope.DocID(g.Doc)
			s.c.mu.Lock()
			_, known := s.c.docs[id]
			s.c.mu.Unlock()
			if known {
				continue
			}
			if err := s.acceptDocument(ctx, id, nil); err != nil {
				return err
			}
		}
		if !docs.More {
			return nil
		}
		if listed == 0 {
			return errors.New("client: relay sent a page of the document list with no documents but more to come: the relay is faulty, report it to its operator")
		}
	}
}

// listDocs requests the page of this device's documents after the
// document id after, or the first page when after is nil.
func (s *session) listDocs(ctx context.Context, after []byte) (*wire.Docs, error) {
	r, err := s.call(ctx, &wire.ListDocs{After: after})
	if err != nil {
		return nil, fmt.Errorf("client: list documents: %w", err)
	}
	docs, ok := r.(*wire.Docs)
	if !ok {
		return nil, fmt.Errorf("client: relay responded to ListDocs with message type %d", r.Type())
	}
	return docs, nil
}

// acceptDocument fetches the whole membership log of a document shared
// with this device and adds the document if the log checks out and seals
// a key to this device: to its document keys if it accepted an invitation
// to the document, else to its device keys. The store keys in clear, those
// of an earlier copy of the document, are deleted in the same write.
func (s *session) acceptDocument(ctx context.Context, id envelope.DocID, clear [][]byte) error {
	entries, err := s.getLog(ctx, id, 0)
	if err != nil {
		return fmt.Errorf("client: fetch membership log of document %s: %w", id, err)
	}
	invited, err := s.c.invitedTo(ctx, id)
	if err != nil {
		return err
	}
	// The log names the key it was shared with: this device's key for
	// the document after an invitation, its device key after a share
	// by public id. An invitation mark alone does not decide it, since
	// another admin may share by public id while the invitation waits.
	docKeys, err := s.c.id.documentKeys(id)
	if err != nil {
		return err
	}
	// Only a key that is a member at the log's end counts, because one
	// that was added and removed again no longer opens the document. The
	// full checks of the log come below. A replay that stops early here
	// picks the device keys, and those checks then skip the document.
	replay := &membership.State{}
	for _, le := range entries {
		e, err := membership.Decode(le.Entry)
		if err != nil || replay.Apply(e) != nil {
			break
		}
	}
	_, perDocument := replay.Member(docKeys.member())
	self := s.c.id.deviceKeys()
	if perDocument {
		self = docKeys
	}

	log := &memberLog{state: &membership.State{}}
	d, err := s.c.newDocument(id, log, true, self, perDocument)
	if err != nil {
		return err
	}

	var b Batch
	for _, k := range clear {
		b.Del(k)
	}
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	for _, le := range entries {
		e, err := membership.Decode(le.Entry)
		if err == nil && !membership.VerifyCountersign(s.relayKey, id, e.Index, e.Hash(), le.Countersig) {
			err = fmt.Errorf("entry %d carries no valid countersignature", e.Index)
		}
		if err == nil {
			err = s.c.appendEntryLocked(d, e, le.Entry, le.Countersig, &b)
		}
		if err != nil {
			s.c.log.Warn("shared document's membership log does not check out, skipped", "doc", id, "err", err)
			return nil
		}
	}
	if _, ok := log.state.Member(d.self.member()); !ok || d.epochKey(log.state.Epoch()) == nil {
		s.c.log.Warn("shared document's membership log seals no key to this device, skipped", "doc", id, "entries", log.state.Len())
		return nil
	}
	if invited {
		// The document arrived, however it was shared.
		b.Del(invitedKey(id))
	}
	return s.c.addDocumentLocked(ctx, d, &b)
}

// setRef sets the Ref of a request message.
func setRef(m wire.Message, ref uint64) bool {
	switch m := m.(type) {
	case *wire.AppendEntry:
		m.Ref = ref
	case *wire.GetLog:
		m.Ref = ref
	case *wire.PostInvite:
		m.Ref = ref
	case *wire.TakeInvite:
		m.Ref = ref
	case *wire.ListDocs:
		m.Ref = ref
	case *wire.Subscribe:
		m.Ref = ref
	case *wire.Push:
		m.Ref = ref
	case *wire.Claim:
		m.Ref = ref
	case *wire.PutChain:
		m.Ref = ref
	case *wire.GetChain:
		m.Ref = ref
	default:
		// A reply to Ref 0 would never reach the request.
		return false
	}
	return true
}

func (s *session) subscribeAll(ctx context.Context) error {
	type sub struct {
		id      envelope.DocID
		cursor  uint64
		entries uint64
	}
	var subs []sub
	s.mu.Lock()
	skip := maps.Clone(s.unavailable)
	s.mu.Unlock()
	s.c.mu.Lock()
	for id, d := range s.c.docs {
		if d.meta.Registered && !s.subscribed[id] && skip[id] == nil && !d.removed() {
			subs = append(subs, sub{id, d.meta.Cursor, d.log.state.Len()})
		}
	}
	s.c.mu.Unlock()
	ids := make([]envelope.DocID, len(subs))
	for i, sb := range subs {
		ids[i] = sb.id
	}
	if err := s.claimHeld(ctx, ids); err != nil {
		return err
	}
	for _, sb := range subs {
		_, err := s.call(ctx, &wire.Subscribe{Doc: sb.id[:], After: sb.cursor, EntriesFrom: sb.entries})
		var relayErr *wire.Error
		if errors.As(err, &relayErr) && relayErr.Code == wire.CodeNotMember {
			// One document the relay will not serve must not stop the
			// others from syncing.
			err = fmt.Errorf("client: relay %s has no record of document %s for this device: a member removed this device from it, or the relay's data was reset or is another relay's. The copy here stays readable ('interlude doc cat'), but nothing more arrives for it from this relay", s.c.relay, sb.id)
			s.c.log.Error("document not available on relay, skipped", "doc", sb.id, "err", err)
			s.mu.Lock()
			s.unavailable[sb.id] = err
			s.subscribed[sb.id] = true
			s.mu.Unlock()
			continue
		}
		if err != nil {
			return fmt.Errorf("client: subscribe to document %s: %w", sb.id, err)
		}
		s.mu.Lock()
		s.subscribed[sb.id] = true
		s.mu.Unlock()
	}
	return nil
}

// pushOutbox sends every outbox entry of every registered document, up to
// maxInFlight at a time, and removes each from the outbox when its Ack
// arrives.
func (s *session) pushOutbox(ctx context.Context) error {
	type pending struct {
		id    envelope.DocID
		seq   uint64
		reply <-chan wire.Message
	}
	for {
		var batch []outboxEntry
		var doc envelope.DocID
		s.mu.Lock()
		skip := maps.Clone(s.unavailable)
		s.mu.Unlock()
		s.c.mu.Lock()
		var err error
		for id, d := range s.c.docs {
			if d.meta.Registered && len(d.outbox) > 0 && skip[id] == nil && !d.removed() {
				err = s.c.prepareSendLocked(ctx, d)
				doc, batch = id, slices.Clone(d.outbox)
				break
			}
		}
		s.c.mu.Unlock()
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		if err := s.claimHeld(ctx, []envelope.DocID{doc}); err != nil {
			return err
		}

		var inFlight []pending
		wait := func() error {
			p := inFlight[0]
			inFlight = inFlight[1:]
			select {
			case r := <-p.reply:
				switch m := r.(type) {
				case *wire.Ack:
					return s.c.acknowledge(ctx, p.id, p.seq, m.Cursor)
				case *wire.Error:
					return fmt.Errorf("client: push of document %s seq %d: %w", p.id, p.seq, m)
				default:
					return fmt.Errorf("client: relay responded to Push with message type %d", r.Type())
				}
			case <-s.done:
				return errors.New("client: relay session closed")
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		for _, e := range batch {
			if len(inFlight) == maxInFlight {
				if err := wait(); err != nil {
					return err
				}
			}
			reply, err := s.request(ctx, &wire.Push{Doc: doc[:], Envelope: e.envelope})
			if err != nil {
				return err
			}
			inFlight = append(inFlight, pending{doc, e.seq, reply})
		}
		for len(inFlight) > 0 {
			if err := wait(); err != nil {
				return err
			}
		}
	}
}

// acknowledge removes an acknowledged envelope from the outbox.
func (c *Client) acknowledge(ctx context.Context, id envelope.DocID, seq, cursor uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.docs[id]
	var b Batch
	b.Del(outboxKey(id, seq))
	if err := c.store.Write(ctx, &b); err != nil {
		return fmt.Errorf("client: remove acknowledged update of document %s: %w", id, err)
	}
	d.outbox = slices.DeleteFunc(d.outbox, func(e outboxEntry) bool { return e.seq == seq })
	c.log.Debug("update acknowledged", "doc", id, "seq", seq, "cursor", cursor)
	c.notifyLocked(id)
	return nil
}

// applyDeliveries checks each delivered envelope against its author's
// hash chain (see verify.go), applies the updates that pass, and stores
// them, what was kept aside, the chain heads, the reports and the new
// cursors in one write.
func (c *Client) applyDeliveries(ctx context.Context, group []*wire.Deliver, relayKey ed25519.PublicKey) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b Batch
	r := newReceiver(ctx, c, &b)
	touched := make(map[envelope.DocID]*document)
	before := make(map[envelope.DocID]docMeta)
	records := make(map[envelope.DocID]int)
	for _, m := range group {
		if len(m.Doc) != 16 {
			return fmt.Errorf("client: relay delivered for a document id of %d bytes", len(m.Doc))
		}
		var id envelope.DocID
		copy(id[:], m.Doc)
		d, ok := c.docs[id]
		if !ok {
			c.log.Warn("delivery for a document not on this device, ignored", "doc", id, "cursor", m.Cursor)
			continue
		}
		if _, ok := touched[id]; !ok {
			if _, err := c.trustLocked(ctx, d); err != nil {
				return err
			}
			touched[id], before[id], records[id] = d, d.meta, d.records
		}
		if m.Entry != nil {
			// An entry's cursor is that of an envelope already
			// delivered, so it does not move the document's cursor.
			if err := r.receiveEntry(d, m.Entry, m.Countersig, relayKey); err != nil {
				return c.undoDeliveriesLocked(touched, before, records, err)
			}
			continue
		}
		if err := r.receive(d, m.Cursor, m.Envelope); err != nil {
			return c.undoDeliveriesLocked(touched, before, records, err)
		}
	}
	for _, d := range touched {
		if d.caughtUp == 0 {
			continue
		}
		if err := r.checkWithheld(d); err != nil {
			return c.undoDeliveriesLocked(touched, before, records, err)
		}
	}
	if err := r.finish(); err != nil {
		return c.undoDeliveriesLocked(touched, before, records, err)
	}
	for _, d := range touched {
		if err := putMeta(&b, d); err != nil {
			return c.undoDeliveriesLocked(touched, before, records, err)
		}
	}
	if err := c.store.Write(ctx, &b); err != nil {
		return c.undoDeliveriesLocked(touched, before, records, fmt.Errorf("client: save delivered updates: %w", err))
	}
	for id := range touched {
		c.notifyLocked(id)
	}
	return nil
}

// undoDeliveriesLocked undoes a group of deliveries that was not saved.
// The updates stay applied in memory, but the cursors and chain heads go
// back to what the store holds, so the next session fetches the envelopes
// again and stores them then. Applying an update twice changes nothing.
func (c *Client) undoDeliveriesLocked(touched map[envelope.DocID]*document, before map[envelope.DocID]docMeta, records map[envelope.DocID]int, err error) error {
	for id, d := range touched {
		d.meta, d.records = before[id], records[id]
		d.trust = nil
		// Membership entries of the group go back to what the store
		// holds too; they arrive again with the next subscription.
		if log, loadErr := c.loadLog(context.Background(), id); loadErr == nil {
			d.log = log
		} else {
			c.log.Error("reload membership log after a failed save failed too", "doc", id, "err", loadErr)
		}
	}
	return err
}

// caughtUp records that session s has received the whole backlog of a
// document.
func (c *Client) caughtUp(s *session, m *wire.CaughtUp) {
	if len(m.Doc) != 16 {
		return
	}
	var id envelope.DocID
	copy(id[:], m.Doc)
	c.mu.Lock()
	defer c.mu.Unlock()
	if d, ok := c.docs[id]; ok {
		// A closed session no longer counts (caught is nil then).
		if s.caught != nil && !s.caught[id] {
			s.caught[id] = true
			d.caughtUp++
		}
		c.caughtUpLocked(d, m.Cursor)
		c.notifyLocked(id)
	}
}

// allSynced reports whether every document not in skip is registered, has
// nothing in its outbox or membership changes, and has caught up.
func (c *Client) allSynced(skip map[envelope.DocID]error) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, d := range c.docs {
		if skip[id] != nil || d.removed() {
			continue
		}
		if !d.meta.Registered || len(d.outbox) > 0 || len(d.log.ops) > 0 || d.caughtUp == 0 {
			return false
		}
	}
	return true
}
