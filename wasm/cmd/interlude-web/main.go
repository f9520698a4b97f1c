//go:build js && wasm

// Command interlude-web is the Interlude client compiled to WebAssembly for
// the browser app in wasm/web. It keeps its documents and identity in
// IndexedDB (package wasm/idbstore), encrypted under a passphrase when the
// person chose one (package client/securestore), reaches the relay over
// the browser's WebSocket (package wasm/jsws), and exposes this JavaScript
// API on globalThis.interlude:
//
//	storeState({database}) -> Promise<"new"|"unencrypted"|"encrypted">
//	start({relay, database, passphrase, idleTimeout}) -> Promise<{publicID, fingerprint, encrypted}>
//	               passphrase is optional; idleTimeout is in milliseconds,
//	               15 minutes by default, and applies only with a passphrase
//	unlock(passphrase) -> Promise<{publicID, fingerprint, encrypted}>   after a lock
//	lock() -> Promise   resolves once the client is closed and its data key
//	               zeroed; InvalidStateError on a store without a passphrase
//	locked() -> bool
//	onLock(fn)   fn() runs after each lock, idle or asked for
//	activity()   records that the person used the page, which delays the idle lock
//	publicID() -> string, or "" before start and while locked
//	fingerprint() -> string, or "" before start and while locked
//	journal() -> Promise<docId>   the device's journal, created on first use
//	text(docId) -> string, or null for a document this device does not hold
//	setText(docId, text[, base]) -> Promise   resolves once saved on this device; base is the text the editor started from
//	share(docId, publicIDOrPersonID) -> Promise<{fingerprint, person}>
//	               offers the document to a device, or to every device of
//	               a person; person is set for a person id, and fingerprint
//	               for a device's public id
//	person() -> Promise<{personID, generation, devices: [{fingerprint,
//	               recovery, revoked}]}>   the id others share with all of
//	               this device's person's devices by, starting a person on
//	               a device that belongs to none
//	linkRequests() -> Promise<[{publicID, fingerprint, person, linked}]>
//	               devices that added this one to their person: linking one
//	               that is not linked accepts its request, and for one that
//	               is (linked set), this device belongs to another person
//	joinPerson(personID) -> Promise<{personID}>   moves this device to the
//	               person of a linked device's request
//	linkDevice(publicID, fingerprint) -> Promise<{documents, fingerprint}>
//	               adds another device of the person to every document on
//	               this device, on the next sync and in documents joined
//	               later; fingerprint is what that device shows, compared
//	               ignoring case, spaces and hyphens
//	unlinkDevice(publicIDOrFingerprint) -> Promise<{documents, fingerprint, check}>
//	               removes a device of the person from every document, with
//	               a new key epoch in each, on the next sync. check lists
//	               the documents with a device of the person that this
//	               device cannot match, which may be the removed one
//	linkedDevices() -> Promise<[{publicID, fingerprint, recovery}]>   the
//	               devices this device linked and the one that linked it;
//	               recovery is true for a recovery phrase made here
//	status(docId) -> {state: "saved"|"waiting"|"synced", pending, connected}
//	onChange(fn)   fn(docId) runs after a local or remote change or a
//	               change of sync status
//	reports(docId) -> Promise<[{kind, author, seq, time, detail}]>   problems
//	               found in what the relay delivered
//	documents() -> Promise<[{docId, role, memberId}]>   every document on
//	               this device with this device's role in it: "admin",
//	               "writer", "reader", or "" once it is no longer a member,
//	               and the public id it is a member under there
//	members(docId) -> Promise<[{publicID, fingerprint, role, you, yours}]>
//	               the document's members; you marks this device, yours
//	               the other devices of its person
//	removeMember(docId, publicID) -> Promise<{fingerprint}>   removes a
//	               member, for an admin, with a new key epoch, on the next
//	               sync
//	invite(docId) -> Promise<{link, synced}>   a one-time invitation link,
//	               for an admin of the document; synced is false when the
//	               sync that registers it with the relay failed, and then
//	               the link works only after this device's next sync
//	invitations(docId) -> Promise<[{id, accepted, code, invitee,
//	               inviteeFingerprint, failed}]>   the invitations this
//	               device made to the document
//	acceptInvite(link) -> Promise<{code}>   responds to an invitation link
//	               and returns the comparison code to compare with the
//	               inviter; the document arrives once the inviter's device
//	               has synced
//	makeRecoveryPhrase() -> Promise<{words, fingerprint, documents}>   makes
//	               a recovery phrase and links the device it derives to
//	               every document; the words are secret, so show them once
//	               and never store them
//	recover(words) -> Promise<{documents, synced}>   links this device to
//	               every document of the recovery phrase's person and
//	               syncs them; synced is false when that sync failed
//	recoverFromBackup(passphrase) -> Promise<{documents, synced}>   recover
//	               with the phrase the relay keeps under the passphrase
//	storeRecoveryBackup(words, passphrase) -> Promise   has the relay keep
//	               the phrase sealed under the passphrase
//	encryptDevice(passphrase) -> Promise<{records}>   encrypts a started
//	               device that has no passphrase and starts it again
//	               with the idle lock on (see convert.go); records is the
//	               number of records copied
//
// A rejected Promise carries an Error whose name is the kind of
// failure: QuotaExceededError (and the other DOMException names from
// IndexedDB), InvalidPublicIDError, FingerprintMismatchError,
// SameDeviceError, UnknownDeviceError, UnknownDocumentError,
// NotStartedError, LockedError, WrongPassphraseError, NotEncryptedError,
// NotAdminError, NotMemberError, InvalidInvitationError,
// InvitationNotFoundError, InvitationUsedError, InvalidRecoveryPhraseError,
// NoRecoveryDocumentsError, NoBackupError, BackupExistsError,
// WeakPassphraseError, InvalidStateError or TypeError. An
// InvalidRecoveryPhraseError also carries reason: "count" (with words and
// want), "word" or "checksum", so the page can show what to correct
// without the message quoting a secret word.
//
// Once globalThis.interlude is set, the program dispatches the event
// "interlude-ready" on globalThis.
//
// # Passphrase and idle lock
//
// start with a passphrase on a new database encrypts everything the client
// stores (see lock.go). Lock closes the client and the store rather than
// only zeroing the store's data key, because the client keeps the
// decrypted documents, their keys and the device's identity in memory.
// Unlock opens them again.
//
// # Why text and status read a copy
//
// A synchronous function runs on the JavaScript event loop, and while it
// runs no IndexedDB or WebSocket event can be delivered. The client holds
// its lock while it waits for IndexedDB to finish a write, so a
// synchronous call that took that lock would wait for an event that can
// only come after the call returns, and the program would deadlock. text
// and status therefore read a copy of each document's text and status
// that a goroutine refreshes after every change the client reports, before
// the onChange listeners run.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall/js"
	"time"

	"interlude/client"
	"interlude/sync/envelope"
	"interlude/sync/membership"
	"interlude/wasm/gcpolicy"
	"interlude/wasm/idbstore"
)

// defaultDatabase is the IndexedDB database the app uses unless start
// names another.
const defaultDatabase = "interlude"

// journalKey is where the app keeps the id of the device's journal in the
// client's store. The client's own keys start with "d/" or are
// "identity" (package client), so this key does not collide with them.
var journalKey = []byte("web/journal")

func main() {
	gcpolicy.Apply()
	a := &app{
		log:     slog.New(slog.NewTextHandler(os.Stderr, nil)),
		views:   make(map[envelope.DocID]docView),
		changed: make(map[envelope.DocID]struct{}),
		wake:    make(chan struct{}, 1),
	}
	go a.refreshLoop()
	js.Global().Set("interlude", a.exports())
	if dispatch := js.Global().Get("dispatchEvent"); dispatch.Type() == js.TypeFunction {
		js.Global().Call("dispatchEvent", js.Global().Get("Event").New("interlude-ready"))
	}
	// The exported functions run only while the Go program is alive.
	select {}
}

// app is the state behind globalThis.interlude.
type app struct {
	log *slog.Logger

	// mu is never held while waiting for the client, IndexedDB or the
	// network, because text and status take it on the event loop.
	mu        sync.Mutex
	client    *client.Client              // nil before start and while locked; guarded by mu
	store     client.Store                // the client's store; guarded by mu
	cfg       *startConfig                // set once start succeeds; guarded by mu
	encrypted bool                        // the store is encrypted under a passphrase; guarded by mu
	busy      bool                        // a start or unlock is running; guarded by mu
	stopRun   context.CancelFunc          // ends the client's Run; guarded by mu
	runDone   chan struct{}               // closed when Run has returned; guarded by mu
	listeners []js.Value                  // JavaScript onChange functions; guarded by mu
	views     map[envelope.DocID]docView  // copies read by text and status; guarded by mu
	changed   map[envelope.DocID]struct{} // documents whose view is stale; guarded by mu

	// Idle lock state, guarded by mu.
	lastActivity  time.Time   // wall clock, so time asleep counts as idle
	idleTimer     *time.Timer // nil unless the encrypted store is open
	idleEpoch     uint64      // counts armed timers, so a replaced timer's call does nothing
	lockListeners []js.Value  // JavaScript onLock functions

	// ops is held for reading by every API call that uses the client, and
	// for writing by lockNow, so a lock waits for saves already running
	// and no call uses a client that lockNow has closed.
	ops sync.RWMutex

	// wake signals the refresh loop that changed has entries.
	wake chan struct{}
	// refreshMu is held from reading a document from the client until its
	// view is stored, so a view read earlier never replaces a newer one.
	refreshMu sync.Mutex
	journalMu sync.Mutex // serializes journal, so two calls make one journal
}

// docView is the copy of a document that text and status return.
type docView struct {
	text   string
	status client.Status
}

func (a *app) exports() js.Value {
	api := js.Global().Get("Object").New()
	set := func(name string, fn func(args []js.Value) any) {
		// These functions live as long as the program, so they are
		// never released.
		api.Set(name, js.FuncOf(func(_ js.Value, args []js.Value) any { return fn(args) }))
	}
	set("storeState", a.storeState)
	set("start", a.start)
	set("unlock", a.unlock)
	set("lock", a.lock)
	set("locked", a.locked)
	set("onLock", a.onLock)
	set("activity", a.activity)
	set("publicID", a.publicID)
	set("fingerprint", a.fingerprint)
	set("journal", a.journal)
	set("text", a.text)
	set("setText", a.setText)
	set("share", a.share)
	set("linkDevice", a.linkDevice)
	set("unlinkDevice", a.unlinkDevice)
	set("linkedDevices", a.linkedDevices)
	set("person", a.person)
	set("linkRequests", a.linkRequests)
	set("joinPerson", a.joinPerson)
	set("status", a.status)
	set("onChange", a.onChange)
	set("reports", a.reports)
	set("documents", a.documents)
	set("invite", a.invite)
	set("invitations", a.invitations)
	set("members", a.members)
	set("removeMember", a.removeMember)
	set("acceptInvite", a.acceptInvite)
	set("makeRecoveryPhrase", a.makeRecoveryPhrase)
	set("recover", a.recover)
	set("recoverFromBackup", a.recoverFromBackup)
	set("storeRecoveryBackup", a.storeRecoveryBackup)
	set("encryptDevice", a.encryptDevice)
	return api
}

// start opens the store and the client and starts syncing with the relay
// in the background. Once it has succeeded, later calls fail; after a
// lock, unlock opens the client again.
func (a *app) start(args []js.Value) any {
	cfg, passphrase, argErr := parseStartOptions(args)
	return promise(func() (any, error) {
		if argErr != nil {
			return nil, argErr
		}
		a.mu.Lock()
		switch {
		case a.cfg != nil:
			a.mu.Unlock()
			return nil, named("InvalidStateError", errors.New("interlude: start was already called: after a lock, call unlock"))
		case a.busy:
			a.mu.Unlock()
			return nil, named("InvalidStateError", errors.New("interlude: start is already running: wait for its Promise"))
		}
		a.busy = true
		a.mu.Unlock()

		c, err := a.open(cfg, passphrase, false)
		a.mu.Lock()
		a.busy = false
		a.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return a.startResult(c), nil
	})
}

// startResult builds the object that start and unlock resolve to.
func (a *app) startResult(c *client.Client) map[string]any {
	a.mu.Lock()
	encrypted := a.encrypted
	a.mu.Unlock()
	id := c.Identity()
	return map[string]any{"publicID": id.PublicID(), "fingerprint": id.Public().Fingerprint(), "encrypted": encrypted}
}

// markChanged records that doc changed and wakes the refresh loop. The
// client calls it on a goroutine of its own.
func (a *app) markChanged(doc envelope.DocID) {
	a.mu.Lock()
	a.changed[doc] = struct{}{}
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// refreshLoop refreshes the view of each changed document, then calls the
// JavaScript listeners. Each listener is called from a fresh JavaScript
// task, so an exception it throws stays in the console. While the app is
// locked, changes are dropped: unlock reads every document again.
func (a *app) refreshLoop() {
	for range a.wake {
		a.mu.Lock()
		c := a.client
		docs := make([]envelope.DocID, 0, len(a.changed))
		for doc := range a.changed {
			docs = append(docs, doc)
		}
		clear(a.changed)
		listeners := append([]js.Value(nil), a.listeners...)
		a.mu.Unlock()
		if c == nil {
			continue
		}

		for _, doc := range docs {
			a.refresh(c, doc)
		}
		for _, doc := range docs {
			for _, fn := range listeners {
				js.Global().Call("setTimeout", fn, 0, doc.String())
			}
		}
	}
}

// refresh reads doc's text and status from the client into its view. It
// may wait for the client's lock, so it runs only on goroutines. A view
// read from a client that a lock has since closed is dropped, so no text
// outlives the lock in the views.
func (a *app) refresh(c *client.Client, doc envelope.DocID) {
	a.refreshMu.Lock()
	defer a.refreshMu.Unlock()
	text, err := c.Text(doc)
	if err != nil {
		// The document is not on this device; text keeps returning null.
		return
	}
	status := c.Status(doc)
	a.mu.Lock()
	if a.client == c {
		a.views[doc] = docView{text: text, status: status}
	}
	a.mu.Unlock()
}

// view returns the copy of doc, if there is one.
func (a *app) view(doc envelope.DocID) (docView, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	v, ok := a.views[doc]
	return v, ok
}

// current returns the client, or nil before start and while locked.
func (a *app) current() *client.Client {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.client
}

func (a *app) publicID([]js.Value) any {
	c := a.current()
	if c == nil {
		return ""
	}
	return c.Identity().PublicID()
}

func (a *app) fingerprint([]js.Value) any {
	c := a.current()
	if c == nil {
		return ""
	}
	return c.Identity().Public().Fingerprint()
}

// journal returns the id of the device's journal, creating the document
// and recording its id on first use.
func (a *app) journal([]js.Value) any {
	return promise(func() (any, error) {
		// acquire comes before journalMu, so a journal call waiting for
		// journalMu never holds off a lock that waits for the other call.
		c, store, release, err := a.acquire()
		if err != nil {
			return nil, err
		}
		defer release()
		a.journalMu.Lock()
		defer a.journalMu.Unlock()

		ctx := context.Background()
		b, err := store.Get(ctx, journalKey)
		switch {
		case err == nil:
			var id envelope.DocID
			if len(b) != len(id) {
				return nil, fmt.Errorf("interlude: stored journal id has %d bytes, want %d: the site's data is damaged", len(b), len(id))
			}
			copy(id[:], b)
			a.refresh(c, id)
			return id.String(), nil
		case !errors.Is(err, client.ErrNotFound):
			return nil, fmt.Errorf("interlude: read the journal's id: %w", err)
		}

		// NOTE: a page closed between CreateDocument and the write below
		// leaves an empty document behind; the next visit creates another.
		id, err := c.CreateDocument(ctx)
		if err != nil {
			return nil, err
		}
		var batch client.Batch
		batch.Put(journalKey, id[:])
		if err := store.Write(ctx, &batch); err != nil {
			return nil, fmt.Errorf("interlude: record the journal's id: %w", err)
		}
		a.refresh(c, id)
		return id.String(), nil
	})
}

// text returns the document's text, or null when the client is not
// started or does not hold the document. A synchronous function cannot
// throw into JavaScript, so null stands for every failure.
func (a *app) text(args []js.Value) any {
	doc, err := docArg(args, 0)
	if err != nil {
		return nil
	}
	v, ok := a.view(doc)
	if !ok {
		return nil
	}
	return v.text
}

func (a *app) setText(args []js.Value) any {
	doc, docErr := docArg(args, 0)
	text, textErr := stringArg(args, 1, "text")
	// The optional third argument is the text the editor started from.
	var base *string
	if len(args) > 2 && args[2].Type() == js.TypeString {
		b := args[2].String()
		base = &b
	}
	return a.withClient(true, errors.Join(docErr, textErr), func(c *client.Client, _ client.Store) (any, error) {
		var err error
		if base != nil {
			err = c.SetTextFrom(context.Background(), doc, *base, text)
		} else {
			err = c.SetText(context.Background(), doc, text)
		}
		if err != nil {
			return nil, err
		}
		// The view includes this edit once the Promise resolves.
		a.refresh(c, doc)
		return nil, nil
	})
}

func (a *app) share(args []js.Value) any {
	doc, docErr := docArg(args, 0)
	to, toErr := stringArg(args, 1, "publicID")
	return a.withClient(true, errors.Join(docErr, toErr), func(c *client.Client, _ client.Store) (any, error) {
		if strings.HasPrefix(strings.TrimSpace(to), "ilp1") {
			return a.shareWithPerson(c, doc, to)
		}
		member, err := client.ParsePublicID(to)
		if err != nil {
			return nil, named("InvalidPublicIDError", err)
		}
		err = c.Share(context.Background(), doc, member)
		switch {
		case errors.Is(err, client.ErrAlreadyMember):
			return nil, named("AlreadyMemberError", err)
		case err != nil:
			return nil, err
		}
		a.refresh(c, doc)
		return map[string]any{"fingerprint": member.Fingerprint()}, nil
	})
}

// reports resolves to the problems this device found in what the relay
// delivered for a document: forged, dropped, reordered or withheld
// updates. Each is {kind, author, seq, time, detail}; none holds content.
func (a *app) reports(args []js.Value) any {
	doc, docErr := docArg(args, 0)
	return a.withClient(false, docErr, func(c *client.Client, _ client.Store) (any, error) {
		found, err := c.Reports(doc)
		if err != nil {
			return nil, err
		}
		list := make([]any, 0, len(found))
		for _, r := range found {
			list = append(list, map[string]any{
				"kind":   string(r.Kind),
				"author": r.Author,
				"seq":    float64(r.Seq),
				"time":   r.Time.UTC().Format(time.RFC3339),
				"detail": r.Detail,
			})
		}
		return list, nil
	})
}

// status returns the document's sync status for the page. The state is
// "waiting" while edits or shares saved on this device have not reached
// the relay, and "synced" once nothing is pending and the relay's copy has
// been received. Otherwise it is "saved": everything is on this device,
// but the relay has not confirmed it is up to date, as while offline.
func (a *app) status(args []js.Value) any {
	doc, err := docArg(args, 0)
	v, ok := a.view(doc)
	if err != nil || !ok {
		return map[string]any{"state": "saved", "pending": 0, "connected": false}
	}
	s := v.status
	state := "saved"
	switch {
	case s.Pending > 0:
		state = "waiting"
	case s.Synced:
		state = "synced"
	}
	return map[string]any{"state": state, "pending": s.Pending, "connected": s.Connected}
}

func (a *app) onChange(args []js.Value) any {
	if len(args) == 0 || args[0].Type() != js.TypeFunction {
		return nil
	}
	a.mu.Lock()
	a.listeners = append(a.listeners, args[0])
	a.mu.Unlock()
	return nil
}

// errNotStarted is returned by the API before start has succeeded.
var errNotStarted = named("NotStartedError", errors.New("interlude: call start first"))

// namedError gives an error the name the JavaScript Error will carry, and
// optionally more properties for the page to read.
type namedError struct {
	name    string
	err     error
	details map[string]any // set on the JavaScript Error; never secret
}

func named(name string, err error) error { return &namedError{name: name, err: err} }

func namedWith(name string, err error, details map[string]any) error {
	return &namedError{name: name, err: err, details: details}
}

func (e *namedError) Error() string { return e.err.Error() }
func (e *namedError) Unwrap() error { return e.err }

func docArg(args []js.Value, i int) (envelope.DocID, error) {
	s, err := stringArg(args, i, "docId")
	if err != nil {
		return envelope.DocID{}, err
	}
	id, err := envelope.ParseDocID(s)
	if err != nil {
		return id, named("TypeError", err)
	}
	return id, nil
}

func stringArg(args []js.Value, i int, name string) (string, error) {
	if i >= len(args) || args[i].Type() != js.TypeString {
		return "", named("TypeError", fmt.Errorf("interlude: argument %d (%s) must be a string", i+1, name))
	}
	return args[i].String(), nil
}

// promise returns a JavaScript Promise settled by work, which runs on a
// new goroutine: work may block on IndexedDB or the network, which it
// cannot do on the JavaScript event loop that called the API.
func promise(work func() (any, error)) js.Value {
	executor := js.FuncOf(func(_ js.Value, args []js.Value) any {
		resolve, reject := args[0], args[1]
		go func() {
			defer func() {
				if r := recover(); r != nil {
					reject.Invoke(jsError(fmt.Errorf("interlude: internal error: %v", r)))
				}
			}()
			v, err := work()
			if err != nil {
				reject.Invoke(jsError(err))
				return
			}
			resolve.Invoke(v)
		}()
		return nil
	})
	// The Promise constructor calls the executor before it returns.
	p := js.Global().Get("Promise").New(executor)
	executor.Release()
	return p
}

// jsError converts err into a JavaScript Error whose name tells the kind
// of failure.
func jsError(err error) js.Value {
	e := js.Global().Get("Error").New(err.Error())
	var ne *namedError
	var idbErr *idbstore.Error
	switch {
	case errors.As(err, &ne):
		e.Set("name", ne.name)
		for k, v := range ne.details {
			e.Set(k, v)
		}
	case errors.As(err, &idbErr):
		e.Set("name", idbErr.Name)
	case errors.Is(err, client.ErrUnknownDocument):
		e.Set("name", "UnknownDocumentError")
	}
	return e
}

// shareWithPerson is share for a person id.
func (a *app) shareWithPerson(c *client.Client, doc envelope.DocID, text string) (any, error) {
	person, err := client.ParsePersonID(text)
	if err != nil {
		return nil, named("InvalidPublicIDError", err)
	}
	if err := c.ShareWithPerson(context.Background(), doc, person, membership.RoleWriter); err != nil {
		return nil, err
	}
	a.refresh(c, doc)
	return map[string]any{"fingerprint": "", "person": person.String()}, nil
}
