package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	gosync "sync"

	"github.com/vmihailenco/msgpack/v5"

	"interlude/crdt"
	"interlude/sync/envelope"
	"interlude/sync/membership"
)

// bodyText is the name of the root text container that holds a journal's
// words.
const bodyText = "body"

// compactAfter is how many update records a document keeps beside its
// saved state before they are folded into a new saved state. It bounds
// both the work of opening a document and the cost of each edit.
const compactAfter = 256

// Config configures a Client.
type Config struct {
	Store    Store
	Identity *Identity
	Dialer   Dialer
	// RelayURL is the relay's WebSocket endpoint, for example
	// ws://127.0.0.1:8080/v1/sync. The client works offline without it.
	RelayURL string
	Logger   *slog.Logger
}

// Status is the sync state of one document, as a user needs to see it.
type Status struct {
	// Pending counts the updates and membership changes saved on this
	// device that the relay has not yet acknowledged.
	Pending int
	// Connected reports whether the client has a session with the relay.
	Connected bool
	// Synced reports that nothing is pending and the client has received
	// everything the relay had for this document when it last caught up.
	Synced bool
	// Removed reports that a member removed this device from the
	// document. Its copy stays readable here, but nothing more syncs.
	Removed bool
}

// Errors returned by the client.
var (
	// ErrUnknownDocument is returned for a document id this device holds
	// no key for.
	ErrUnknownDocument = errors.New("client: unknown document")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("client: closed")
)

// Client is one device's view of its documents.
type Client struct {
	store  Store
	id     *Identity
	dialer Dialer
	relay  string
	log    *slog.Logger

	// wake is signalled when the outbox gains an entry, so a running
	// session pushes it without waiting.
	wake chan struct{}

	mu   gosync.Mutex // guards the fields below and every *document
	docs map[envelope.DocID]*document
	// sessions counts the relay sessions open now: Run's, and any that
	// SyncOnce or a call such as AcceptInvite opens beside it.
	sessions  int
	closed    bool
	listeners []func(envelope.DocID)
	// handOverFrom holds the device keys of recovery clients that hand
	// documents over to this one now (see HandOver), whose offers count
	// as a linked device's.
	handOverFrom map[[32]byte]bool

	// personMu serializes the changes to this device's person and its
	// sigchain (see person.go), which sessions make across relay calls.
	personMu gosync.Mutex
}

// document is the in-memory state of one document. Its fields are guarded
// by Client.mu.
type document struct {
	id   envelope.DocID
	meta docMeta
	crdt *crdt.Doc
	// records counts update records stored beside the saved state.
	records int
	// outbox holds the sealed envelopes not yet acknowledged, by sequence
	// number, in order.
	outbox []outboxEntry
	// log is the membership log with the changes not yet sent.
	log *memberLog
	// caughtUp counts the open sessions whose subscription to the
	// document has received the relay's whole backlog.
	caughtUp int
	// trust is the state of the authors' envelope chains, loaded on first
	// use (see verify.go).
	trust *docTrust
	// sent is the highest sequence number of this device's envelopes
	// that a push has sent at least once (see reseal.go).
	sent uint64
	// self is this device's keys in the document.
	self *docKeys
}

type outboxEntry struct {
	seq      uint64
	envelope []byte
}

// docMeta is the stored record of a document besides its content.
type docMeta struct {
	_msgpack struct{} `msgpack:",as_array"`
	// Key is the document key of the newest key epoch this device holds;
	// secret.
	Key     []byte
	Replica uint64
	// Cursor is the relay's position up to which updates are applied.
	Cursor uint64
	// LastSeq is the sequence number of this device's newest envelope.
	LastSeq uint64
	// Registered is set once the relay has accepted the first entry of
	// the membership log, or listed the document as shared with this
	// device.
	Registered bool
	// NextRecord numbers the update records stored beside the saved state.
	NextRecord uint64
	// EpochKeys holds at index e-1 the document key of key epoch e, or
	// nil where this device cannot open it; secret.
	EpochKeys [][]byte
	// DocKey is set when this device is a member under its keys for
	// this document (see dockeys.go), and unset when under its device
	// keys, as in documents stored before document keys.
	DocKey bool
}

// docMetaV1 is docMeta as stored before document keys, without DocKey.
// msgpack decodes an array into a struct only with as many elements as it
// has fields, so the older record needs its own type.
type docMetaV1 struct {
	_msgpack   struct{} `msgpack:",as_array"`
	Key        []byte
	Replica    uint64
	Cursor     uint64
	LastSeq    uint64
	Registered bool
	NextRecord uint64
	EpochKeys  [][]byte
}

// decodeMeta decodes a stored docMeta, of this version or the one before
// document keys, whose device is a member under its device keys.
func decodeMeta(b []byte) (docMeta, error) {
	var m docMeta
	err := msgpack.Unmarshal(b, &m)
	if err == nil {
		return m, nil
	}
	var old docMetaV1
	if msgpack.Unmarshal(b, &old) != nil {
		return m, err
	}
	return docMeta{Key: old.Key, Replica: old.Replica, Cursor: old.Cursor, LastSeq: old.LastSeq, Registered: old.Registered, NextRecord: old.NextRecord, EpochKeys: old.EpochKeys}, nil
}

// Store keys. Every document's keys share the prefix "d/" + id, so one
// scan finds them all.
func docPrefix(id envelope.DocID) []byte { return append([]byte("d/"), id[:]...) }
func metaKey(id envelope.DocID) []byte   { return append(docPrefix(id), "/meta"...) }
func stateKey(id envelope.DocID) []byte  { return append(docPrefix(id), "/state"...) }
func recordPrefix(id envelope.DocID) []byte {
	return append(docPrefix(id), "/rec/"...)
}
func recordKey(id envelope.DocID, n uint64) []byte {
	return binary.BigEndian.AppendUint64(recordPrefix(id), n)
}
func outboxPrefix(id envelope.DocID) []byte { return append(docPrefix(id), "/out/"...) }
func outboxKey(id envelope.DocID, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(outboxPrefix(id), seq)
}

// Open loads every document from the store. It does not connect: call Run
// or SyncOnce.
func Open(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Store == nil || cfg.Identity == nil {
		return nil, errors.New("client: Config needs a Store and an Identity")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		store:  cfg.Store,
		id:     cfg.Identity,
		dialer: cfg.Dialer,
		relay:  cfg.RelayURL,
		log:    log.With("component", "client", "device", cfg.Identity),
		wake:   make(chan struct{}, 1),
		docs:   make(map[envelope.DocID]*document),
	}
	var ids []envelope.DocID
	err := cfg.Store.Scan(ctx, []byte("d/"), func(key, _ []byte) error {
		if len(key) == 2+16+len("/meta") && string(key[18:]) == "/meta" {
			var id envelope.DocID
			copy(id[:], key[2:18])
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("client: list documents: %w", err)
	}
	for _, id := range ids {
		d, err := c.loadDocument(ctx, id)
		if err != nil {
			return nil, err
		}
		c.docs[id] = d
	}
	return c, nil
}

// loadDocument reads one document: meta, saved state, update records,
// outbox, membership log and pending membership changes.
func (c *Client) loadDocument(ctx context.Context, id envelope.DocID) (*document, error) {
	d := &document{id: id}
	b, err := c.store.Get(ctx, metaKey(id))
	if err != nil {
		return nil, fmt.Errorf("client: read document %s: %w", id, err)
	}
	if d.meta, err = decodeMeta(b); err != nil {
		return nil, fmt.Errorf("client: decode document %s: %w", id, err)
	}
	if d.self, err = c.keysFor(id, d.meta.DocKey); err != nil {
		return nil, err
	}
	replica := crdt.ReplicaID(d.meta.Replica)
	state, err := c.store.Get(ctx, stateKey(id))
	switch {
	case err == nil:
		d.crdt, err = crdt.Load(state, replica)
		if err != nil {
			return nil, fmt.Errorf("client: load document %s: %w", id, err)
		}
	case errors.Is(err, ErrNotFound):
		d.crdt = crdt.NewDoc(replica)
	default:
		return nil, fmt.Errorf("client: read document %s: %w", id, err)
	}
	err = c.store.Scan(ctx, recordPrefix(id), func(_, update []byte) error {
		d.records++
		if err := d.crdt.Apply(update); err != nil {
			return fmt.Errorf("client: apply stored update of document %s: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = c.store.Scan(ctx, outboxPrefix(id), func(key, value []byte) error {
		seq := binary.BigEndian.Uint64(key[len(key)-8:])
		d.outbox = append(d.outbox, outboxEntry{seq: seq, envelope: value})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("client: read outbox of document %s: %w", id, err)
	}
	switch sent, err := c.store.Get(ctx, sentKey(id)); {
	case err == nil && len(sent) == 8:
		d.sent = binary.BigEndian.Uint64(sent)
	case err == nil:
		return nil, fmt.Errorf("client: sent mark of document %s is %d bytes, want 8", id, len(sent))
	case !errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("client: read sent mark of document %s: %w", id, err)
	}
	if d.log, err = c.loadLog(ctx, id); err != nil {
		return nil, err
	}
	return d, nil
}

// Identity returns the client's identity.
func (c *Client) Identity() *Identity { return c.id }

// CreateDocument makes a new document with a fresh random key and this
// device as its first admin. The relay learns of it on the next sync.
func (c *Client) CreateDocument(ctx context.Context) (envelope.DocID, error) {
	id, err := envelope.NewDocID()
	if err != nil {
		return id, err
	}
	key, err := membership.NewKey()
	if err != nil {
		return id, err
	}
	self, err := c.id.documentKeys(id)
	if err != nil {
		return id, err
	}
	first, err := membership.NewCreate(id, self.signing, self.public.Box, key)
	if err != nil {
		return id, err
	}
	log := &memberLog{state: &membership.State{}}
	d, err := c.newDocument(id, log, false, self, true)
	if err != nil {
		return id, err
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	var b Batch
	if err := c.appendEntryLocked(d, first, first.Encode(), nil, &b); err != nil {
		return id, err
	}
	return id, c.addDocumentLocked(ctx, d, &b)
}

// newDocument returns a document with a fresh replica id, in which this
// device acts under self, its document keys if perDocument is set, and
// the keys of log that this device can open.
func (c *Client) newDocument(id envelope.DocID, log *memberLog, registered bool, self *docKeys, perDocument bool) (*document, error) {
	var replica [8]byte
	if _, err := io.ReadFull(rand.Reader, replica[:]); err != nil {
		return nil, fmt.Errorf("client: read random replica id: %w", err)
	}
	d := &document{id: id, log: log, self: self}
	d.meta = docMeta{Replica: binary.BigEndian.Uint64(replica[:]), Registered: registered, DocKey: perDocument}
	d.crdt = crdt.NewDoc(crdt.ReplicaID(d.meta.Replica))
	c.learnKeysLocked(d)
	return d, nil
}

// addDocumentLocked stores a new document's meta with b and adds it to
// the client.
func (c *Client) addDocumentLocked(ctx context.Context, d *document, b *Batch) error {
	if c.closed {
		return ErrClosed
	}
	if _, ok := c.docs[d.id]; ok {
		return nil
	}
	if err := putMeta(b, d); err != nil {
		return err
	}
	if err := c.store.Write(ctx, b); err != nil {
		return fmt.Errorf("client: store document %s: %w", d.id, err)
	}
	c.docs[d.id] = d
	c.log.Info("document added", "doc", d.id, "registered", d.meta.Registered, "members", len(d.log.state.Members()))
	return nil
}

func putMeta(b *Batch, d *document) error {
	m, err := msgpack.Marshal(&d.meta)
	if err != nil {
		return fmt.Errorf("client: encode document %s: %w", d.id, err)
	}
	b.Put(metaKey(d.id), m)
	return nil
}

// Documents returns the ids of every document on this device, sorted.
func (c *Client) Documents() []envelope.DocID {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]envelope.DocID, 0, len(c.docs))
	for id := range c.docs {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b envelope.DocID) int { return bytesCompare(a[:], b[:]) })
	return ids
}

func bytesCompare(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return int(a[i]) - int(b[i])
		}
	}
	return len(a) - len(b)
}

// Text returns the text of a document's journal body.
func (c *Client) Text(doc envelope.DocID) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.docs[doc]
	if !ok {
		return "", fmt.Errorf("%w %s", ErrUnknownDocument, doc)
	}
	t, err := d.crdt.Text(bodyText)
	if err != nil {
		return "", err
	}
	return t.String(), nil
}

// SetText replaces the journal body with text, as the smallest edit from
// the current text. The edit is saved on this device when SetText returns.
func (c *Client) SetText(ctx context.Context, doc envelope.DocID, text string) error {
	return c.Edit(ctx, doc, func(t *crdt.Text) error { return t.Replace(text) })
}

// Edit runs fn on the journal body and makes one update of every change
// it made. The update is applied, sealed and stored in the outbox in one
// atomic write before Edit returns. If fn fails, its edits are kept only
// if the write of those made before the failure succeeds. fn runs under
// the client's lock and must not keep t: the CRDT document is not safe
// for concurrent use, and the lock is what serializes it.
func (c *Client) Edit(ctx context.Context, doc envelope.DocID, fn func(t *crdt.Text) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	d, ok := c.docs[doc]
	if !ok {
		return fmt.Errorf("%w %s", ErrUnknownDocument, doc)
	}
	t, err := d.crdt.Text(bodyText)
	if err != nil {
		return err
	}
	editErr := fn(t)
	update := d.crdt.Commit()
	if update == nil {
		return editErr
	}
	if err := c.storeLocalUpdateLocked(ctx, d, update); err != nil {
		return err
	}
	c.notifyLocked(doc)
	c.signalWake()
	return editErr
}

// storeLocalUpdateLocked seals a local update into the outbox and stores
// it with the update record in one write. If the write fails, the document
// goes back to what the store holds, so an edit is either saved on this
// device or has no effect at all. A failed edit never left the device, so
// its operation ids may be used again.
func (c *Client) storeLocalUpdateLocked(ctx context.Context, d *document, update []byte) error {
	err := c.writeLocalUpdatesLocked(ctx, d, [][]byte{update})
	if err == nil {
		return nil
	}
	err = fmt.Errorf("client: save edit of document %s: %w", d.id, err)
	stored, reloadErr := c.loadDocument(ctx, d.id)
	if reloadErr != nil {
		c.log.Error("reload after a failed save failed too", "doc", d.id, "err", reloadErr)
		return errors.Join(err, reloadErr)
	}
	stored.caughtUp = d.caughtUp
	*d = *stored
	c.log.Warn("edit not saved, document reloaded from the store", "doc", d.id, "err", err)
	return err
}

// writeLocalUpdatesLocked seals updates in order and writes them, their
// records and the new meta in one batch. Each envelope names the hash of
// this device's previous one and the newest envelope received from each
// other author. On failure d is as it was.
func (c *Client) writeLocalUpdatesLocked(ctx context.Context, d *document, updates [][]byte) error {
	if d.removed() {
		return fmt.Errorf("client: this device was removed from document %s: its copy stays readable, but a member must add it again before it can write", d.id)
	}
	if m, ok := d.log.state.Member(d.self.member()); !ok || !m.Role.CanWrite() {
		return fmt.Errorf("client: this device is not a writer of document %s: ask an admin for the writer role", d.id)
	}
	trust, err := c.trustLocked(ctx, d)
	if err != nil {
		return err
	}
	var b Batch
	meta := d.meta
	prev := trust.ownHash
	self := d.self.member()
	var sealedEntries []outboxEntry
	for _, update := range updates {
		meta.LastSeq++
		h, err := c.sealHeaderLocked(trust, d, meta.LastSeq, prev)
		if err != nil {
			return err
		}
		key := d.epochKey(h.Epoch)
		if key == nil {
			return fmt.Errorf("client: this device holds no key of epoch %d of document %s: sync to fetch the membership log", h.Epoch, d.id)
		}
		env, err := envelope.Seal(h, key, d.self.signing, update)
		if err != nil {
			return err
		}
		sealed, err := env.Marshal()
		if err != nil {
			return err
		}
		prev = env.Hash()
		b.Put(outboxKey(d.id, meta.LastSeq), sealed)
		b.Put(chainIndexKey(d.id, self, meta.LastSeq), prev[:])
		sealedEntries = append(sealedEntries, outboxEntry{seq: meta.LastSeq, envelope: sealed})
	}
	b.Put(ownHashKey(d.id), prev[:])

	records := d.records + len(updates)
	if records > compactAfter {
		if err := c.compactLocked(ctx, d, &b, &meta); err != nil {
			return err
		}
		records = 0
	} else {
		for _, update := range updates {
			b.Put(recordKey(d.id, meta.NextRecord), update)
			meta.NextRecord++
		}
	}
	old := d.meta
	d.meta = meta
	if err := putMeta(&b, d); err != nil {
		d.meta = old
		return err
	}
	if err := c.store.Write(ctx, &b); err != nil {
		d.meta = old
		return err
	}
	d.records = records
	d.outbox = append(d.outbox, sealedEntries...)
	trust.ownHash = prev
	return nil
}

// compactLocked adds to b a new saved state of d and the deletion of its
// update records.
func (c *Client) compactLocked(ctx context.Context, d *document, b *Batch, meta *docMeta) error {
	state, err := d.crdt.Save()
	if err != nil {
		return fmt.Errorf("client: save state of document %s: %w", d.id, err)
	}
	b.Put(stateKey(d.id), state)
	// Records put earlier in this same batch are in the state too.
	prefix := recordPrefix(d.id)
	b.Ops = slices.DeleteFunc(b.Ops, func(op BatchOp) bool {
		return !op.Delete && bytes.HasPrefix(op.Key, prefix)
	})
	err = c.store.Scan(ctx, prefix, func(key, _ []byte) error {
		b.Del(slices.Clone(key))
		return nil
	})
	if err != nil {
		return fmt.Errorf("client: list update records of document %s: %w", d.id, err)
	}
	meta.NextRecord = 0
	return nil
}

// Status returns the sync status of doc.
func (c *Client) Status(doc envelope.DocID) Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.docs[doc]
	if !ok {
		return Status{Connected: c.sessions > 0}
	}
	return c.statusLocked(d)
}

func (c *Client) statusLocked(d *document) Status {
	s := Status{Pending: len(d.outbox) + len(d.log.ops), Connected: c.sessions > 0}
	if !d.meta.Registered {
		s.Pending++
	}
	s.Synced = s.Pending == 0 && s.Connected && d.caughtUp > 0
	s.Removed = d.removed()
	return s
}

// removed reports whether d's membership log shows this device removed:
// it was a member and is not one now.
func (d *document) removed() bool {
	self := d.self.member()
	_, member := d.log.state.Member(self)
	return !member && d.log.state.WasMember(self)
}

// OnChange registers fn to be called after a document changes locally or
// remotely, or its status changes. fn runs with no client lock held, but
// must not block for long.
func (c *Client) OnChange(fn func(doc envelope.DocID)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listeners = append(c.listeners, fn)
}

// notifyLocked calls the listeners in a new goroutine, so they may call
// back into the client.
func (c *Client) notifyLocked(doc envelope.DocID) {
	if len(c.listeners) == 0 {
		return
	}
	listeners := slices.Clone(c.listeners)
	go func() {
		for _, fn := range listeners {
			fn(doc)
		}
	}()
}

// Close closes the store. A running Run returns.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	return c.store.Close()
}

// relayHost returns the host part of the relay URL, which the relay must
// name in its Hello.
func relayHost(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return "", fmt.Errorf("client: invalid relay URL %q: want ws://HOST:PORT/v1/sync or wss://...", raw)
	}
	return u.Host, nil
}
