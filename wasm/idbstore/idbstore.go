//go:build js && wasm

// Package idbstore is the client's Store in the browser: a key-value store
// over IndexedDB, with one database holding one object store whose keys
// are binary (Uint8Array) and whose values are ArrayBuffers.
//
// Every method blocks the calling goroutine on a channel until IndexedDB
// fires the transaction's complete or abort event. The event handlers only
// send on buffered channels, so the JavaScript event loop is never blocked.
// Do not call these methods from a function that JavaScript calls directly
// (a js.FuncOf handler): start a goroutine there instead, or the page hangs,
// because the event that would unblock the call can only fire once that
// handler has returned.
//
// Failures come back as *Error, which carries the DOMException name, so a
// full storage quota (QuotaExceededError) can be told apart from other
// failures and shown to the user instead of being swallowed.
package idbstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall/js"

	"interlude/client"
)

// objectStore is the one object store in the database.
const objectStore = "kv"

// schemaVersion is the IndexedDB version of the database layout. Raise it,
// and handle the old version in onupgradeneeded, when the layout changes.
const schemaVersion = 1

// ErrClosed is returned by every method after Close, or after the browser
// closed the database (another tab upgrading it, or the user clearing the
// site's data).
var ErrClosed = errors.New("idbstore: database is closed")

// ErrQuotaExceeded matches, with errors.Is, an *Error whose DOMException is
// QuotaExceededError: the browser gives this site no more storage.
var ErrQuotaExceeded = errors.New("idbstore: storage quota exceeded")

// Error is a failed IndexedDB operation.
type Error struct {
	Op      string // the Store operation: open, get, write or scan
	Name    string // DOMException name, such as QuotaExceededError or AbortError
	Message string // the browser's message
}

func (e *Error) Error() string {
	// Chromium leaves the message of a QuotaExceededError empty.
	msg := fmt.Sprintf("idbstore: %s: %s", e.Op, e.Name)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	switch e.Name {
	case "QuotaExceededError":
		msg += " (the browser's storage for this site is full: free some disk space or allow this site more storage, then try again)"
	case "VersionError":
		msg += " (the database was written by a newer version of this app: reload the page to get it)"
	case "InvalidStateError":
		msg += " (the database connection is closed: reload the page)"
	}
	return msg
}

// Is reports whether target is ErrQuotaExceeded and e is a quota failure.
func (e *Error) Is(target error) bool {
	return target == ErrQuotaExceeded && e.Name == "QuotaExceededError"
}

// Store is a client.Store over one IndexedDB database. It is safe for use
// by several goroutines.
type Store struct {
	name string

	mu       sync.Mutex
	db       js.Value  // IDBDatabase; guarded by mu
	closeErr error     // set once the database is closed; guarded by mu
	handlers []js.Func // onversionchange and onclose; guarded by mu
}

var _ client.Store = (*Store)(nil)

// Open opens, and on first use creates, the IndexedDB database name.
func Open(ctx context.Context, name string) (*Store, error) {
	if name == "" {
		return nil, errors.New("idbstore: empty database name: pass a name such as \"interlude\"")
	}
	factory := js.Global().Get("indexedDB")
	if !factory.Truthy() {
		return nil, &Error{Op: "open", Name: "NotSupportedError", Message: "IndexedDB is not available in this browser context (a private window or a file:// page may disable it)"}
	}

	var req js.Value
	if err := catch("open", func() { req = factory.Call("open", name, schemaVersion) }); err != nil {
		return nil, err
	}

	type result struct {
		db  js.Value
		err error
	}
	done := make(chan result, 1)
	send := func(r result) {
		select {
		case done <- r:
		default:
		}
	}
	upgrade := js.FuncOf(func(js.Value, []js.Value) any {
		// The versionchange transaction is active only while this
		// handler runs, so the object store is created synchronously.
		db := req.Get("result")
		if !containsString(db.Get("objectStoreNames"), objectStore) {
			if err := catch("open", func() { db.Call("createObjectStore", objectStore) }); err != nil {
				send(result{err: err})
			}
		}
		return nil
	})
	success := js.FuncOf(func(js.Value, []js.Value) any {
		send(result{db: req.Get("result")})
		return nil
	})
	failure := js.FuncOf(func(js.Value, []js.Value) any {
		send(result{err: domError("open", req.Get("error"))})
		return nil
	})
	req.Set("onupgradeneeded", upgrade)
	req.Set("onsuccess", success)
	req.Set("onerror", failure)
	// onblocked fires when another tab holds an older version open. The
	// request goes on once that tab closes it, so this only waits.

	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		r = result{err: ctx.Err()}
	}
	for _, h := range []string{"onupgradeneeded", "onsuccess", "onerror"} {
		req.Set(h, js.Null())
	}
	upgrade.Release()
	success.Release()
	failure.Release()
	if r.err != nil {
		// A database that opened after ctx ended is closed again, so it
		// does not block a later upgrade from another tab.
		if res := requestResult(req); res.Truthy() {
			res.Call("close")
		}
		return nil, fmt.Errorf("idbstore: open database %q: %w", name, r.err)
	}

	s := &Store{name: name, db: r.db}
	s.watch()
	return s, nil
}

// watch closes the connection when another tab needs to upgrade the
// database, and records a close that the browser made on its own.
func (s *Store) watch() {
	versionChange := js.FuncOf(func(js.Value, []js.Value) any {
		s.markClosed(fmt.Errorf("%w: another tab opened a newer version of database %q: reload this page", ErrClosed, s.name))
		return nil
	})
	closed := js.FuncOf(func(js.Value, []js.Value) any {
		s.markClosed(fmt.Errorf("%w: the browser closed database %q (site data cleared?): reload this page", ErrClosed, s.name))
		return nil
	})
	s.db.Set("onversionchange", versionChange)
	s.db.Set("onclose", closed)
	s.handlers = []js.Func{versionChange, closed}
}

// markClosed closes the connection once and keeps err for later calls.
// The handlers are released on a new goroutine because markClosed may be
// running inside one of them.
func (s *Store) markClosed(err error) {
	s.mu.Lock()
	if s.closeErr != nil {
		s.mu.Unlock()
		return
	}
	s.closeErr = err
	db := s.db
	handlers := s.handlers
	s.handlers = nil
	s.mu.Unlock()

	db.Set("onversionchange", js.Null())
	db.Set("onclose", js.Null())
	_ = catch("close", func() { db.Call("close") })
	go func() {
		for _, h := range handlers {
			h.Release()
		}
	}()
}

// Close closes the database connection. Transactions already started
// still finish.
func (s *Store) Close() error {
	s.markClosed(ErrClosed)
	return nil
}

// Get returns the value of key, or client.ErrNotFound.
func (s *Store) Get(ctx context.Context, key []byte) ([]byte, error) {
	var req js.Value
	err := s.run(ctx, "get", "readonly", func(store js.Value) {
		req = store.Call("get", bytesToJS(key))
	})
	if err != nil {
		return nil, err
	}

	v := req.Get("result")
	if v.IsUndefined() {
		return nil, client.ErrNotFound
	}
	b, err := bytesFromJS(v)
	if err != nil {
		return nil, fmt.Errorf("idbstore: get: value of key %x: %w", key, err)
	}
	return b, nil
}

// Write applies the batch in one readwrite transaction with strict
// durability, and returns after the transaction's complete event, which
// with strict durability follows the flush to disk.
func (s *Store) Write(ctx context.Context, b *client.Batch) error {
	if b == nil || len(b.Ops) == 0 {
		return nil
	}
	return s.run(ctx, "write", "readwrite", func(store js.Value) {
		for _, op := range b.Ops {
			if op.Delete {
				store.Call("delete", bytesToJS(op.Key))
				continue
			}
			// The value is stored as an ArrayBuffer of exactly its
			// length, which bytesToJS's fresh Uint8Array owns.
			store.Call("put", bytesToJS(op.Value).Get("buffer"), bytesToJS(op.Key))
		}
	})
}

// Scan calls fn for each key that starts with prefix, in key order.
// IndexedDB compares binary keys byte by byte as unsigned values, the
// order Badger uses.
//
// NOTE: Scan reads every matching entry in one transaction before it calls
// fn. So fn gets one consistent snapshot, but the whole prefix is in memory
// at once, which suits the client's per-document prefixes.
func (s *Store) Scan(ctx context.Context, prefix []byte, fn func(key, value []byte) error) error {
	var keysReq, valuesReq js.Value
	err := s.run(ctx, "scan", "readonly", func(store js.Value) {
		r := keyRange(prefix)
		keysReq = store.Call("getAllKeys", r)
		valuesReq = store.Call("getAll", r)
	})
	if err != nil {
		return err
	}

	keys := keysReq.Get("result")
	values := valuesReq.Get("result")
	n := keys.Length()
	if values.Length() != n {
		return fmt.Errorf("idbstore: scan prefix %x: %d keys but %d values in one transaction", prefix, n, values.Length())
	}
	for i := 0; i < n; i++ {
		k, err := bytesFromJS(keys.Index(i))
		if err != nil {
			return fmt.Errorf("idbstore: scan prefix %x: key %d: %w", prefix, i, err)
		}
		v, err := bytesFromJS(values.Index(i))
		if err != nil {
			return fmt.Errorf("idbstore: scan prefix %x: value of key %x: %w", prefix, k, err)
		}
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

// run starts a transaction on the object store, lets issue place its
// requests, and waits for the transaction to complete or abort. When ctx
// ends first, run aborts the transaction; a transaction that completed
// anyway counts as done, because its writes are on disk.
func (s *Store) run(ctx context.Context, op, mode string, issue func(store js.Value)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	db, closeErr := s.db, s.closeErr
	s.mu.Unlock()
	if closeErr != nil {
		return fmt.Errorf("idbstore: %s: %w", op, closeErr)
	}

	var tx js.Value
	err := catch(op, func() {
		if mode == "readwrite" {
			// Strict durability makes complete wait for the flush to
			// disk; browsers without the option ignore it.
			tx = db.Call("transaction", objectStore, mode, map[string]any{"durability": "strict"})
		} else {
			tx = db.Call("transaction", objectStore, mode)
		}
	})
	if err != nil {
		return err
	}

	done := make(chan error, 1)
	send := func(err error) {
		select {
		case done <- err:
		default:
		}
	}
	onComplete := js.FuncOf(func(js.Value, []js.Value) any {
		send(nil)
		return nil
	})
	onAbort := js.FuncOf(func(js.Value, []js.Value) any {
		send(domError(op, tx.Get("error")))
		return nil
	})
	tx.Set("oncomplete", onComplete)
	tx.Set("onabort", onAbort)
	defer func() {
		tx.Set("oncomplete", js.Null())
		tx.Set("onabort", js.Null())
		onComplete.Release()
		onAbort.Release()
	}()

	// A request that throws (a key IndexedDB rejects, say) leaves the
	// transaction open, so it is aborted and its abort event awaited.
	if err := catch(op, func() { issue(tx.Call("objectStore", objectStore)) }); err != nil {
		_ = catch(op, func() { tx.Call("abort") })
		<-done
		return err
	}

	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		// abort throws InvalidStateError once the transaction has
		// finished, and then the event already sent reports the outcome.
		_ = catch(op, func() { tx.Call("abort") })
		if err := <-done; err == nil {
			return nil
		}
		return fmt.Errorf("idbstore: %s: %w", op, ctx.Err())
	}
}

// keyRange returns the IDBKeyRange of keys starting with prefix, or
// undefined (all keys) for an empty prefix.
func keyRange(prefix []byte) js.Value {
	if len(prefix) == 0 {
		return js.Undefined()
	}
	keyRange := js.Global().Get("IDBKeyRange")
	upper := prefixEnd(prefix)
	if upper == nil {
		return keyRange.Call("lowerBound", bytesToJS(prefix))
	}
	return keyRange.Call("bound", bytesToJS(prefix), bytesToJS(upper), false, true)
}

// prefixEnd returns the smallest key greater than every key starting with
// prefix, or nil when there is none (prefix is all 0xff bytes).
func prefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// bytesToJS copies b into a new Uint8Array.
func bytesToJS(b []byte) js.Value {
	a := js.Global().Get("Uint8Array").New(len(b))
	js.CopyBytesToJS(a, b)
	return a
}

// bytesFromJS copies an ArrayBuffer or a typed array into a new slice.
func bytesFromJS(v js.Value) ([]byte, error) {
	u8 := js.Global().Get("Uint8Array")
	switch {
	case v.InstanceOf(js.Global().Get("ArrayBuffer")):
		v = u8.New(v)
	case js.Global().Get("ArrayBuffer").Call("isView", v).Bool():
		v = u8.New(v.Get("buffer"), v.Get("byteOffset"), v.Get("byteLength"))
	default:
		return nil, fmt.Errorf("invalid stored %s, want the binary data this app writes", v.Type())
	}
	b := make([]byte, v.Length())
	js.CopyBytesToGo(b, v)
	return b, nil
}

// catch runs f and turns a JavaScript exception thrown inside it into an
// *Error. syscall/js reports such an exception as a panic of js.Error.
func catch(op string, f func()) (err error) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		jsErr, ok := r.(js.Error)
		if !ok {
			panic(r)
		}
		err = domError(op, jsErr.Value)
	}()
	f()
	return nil
}

// domError converts a DOMException (or null, for an abort the code asked
// for) into an *Error.
func domError(op string, v js.Value) *Error {
	if v.IsNull() || v.IsUndefined() {
		return &Error{Op: op, Name: "AbortError", Message: "the transaction was aborted"}
	}
	name, msg := "Error", v.String()
	if n := v.Get("name"); n.Type() == js.TypeString {
		name = n.String()
	}
	if m := v.Get("message"); m.Type() == js.TypeString {
		msg = m.String()
	}
	return &Error{Op: op, Name: name, Message: msg}
}

// requestResult returns an IDBRequest's result, or undefined while the
// request is pending or after it failed. Reading result in those states
// throws, and syscall/js does not catch exceptions thrown by a getter.
func requestResult(req js.Value) js.Value {
	if req.Get("readyState").String() != "done" || !req.Get("error").IsNull() {
		return js.Undefined()
	}
	return req.Get("result")
}

// containsString reports whether a DOMStringList contains s.
func containsString(list js.Value, s string) bool {
	return list.Call("contains", s).Bool()
}
