//go:build js && wasm

package main

// This file encrypts a device that was set up without a passphrase.
//
// securestore only encrypts an empty store, and IndexedDB cannot rename a
// database, so the conversion copies every record of the plain database
// into a second, empty one (named with encryptedSuffix) wrapped by
// securestore. A one-record pointer database (named with pointerSuffix)
// then records that the copy is complete and current, and only after that
// is the plain database deleted. The pointer lives in IndexedDB rather
// than localStorage because a browser may clear the two separately, and a
// pointer lost while the encrypted copy stays would hide the person's data.
//
// resolveDatabase runs before every open, so the next start settles a
// conversion cut short. With the pointer written, it deletes the plain
// database. Without the pointer, it deletes the incomplete copy, and the
// plain database stays in use.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall/js"

	"interlude/client"
	"interlude/client/keyring"
	"interlude/client/securestore"
	"interlude/wasm/idbstore"
)

const (
	// encryptedSuffix names the database that the conversion writes.
	encryptedSuffix = "-encrypted"
	// pointerSuffix names the database whose currentKey record, once
	// written, names the encrypted copy as the current database.
	pointerSuffix = "-current"
	// copyBatchSize is how many records one IndexedDB transaction of
	// the copy writes.
	copyBatchSize = 256
)

var currentKey = []byte("current")

// resolveDatabase returns the IndexedDB database that holds the data of
// the app database named database, after finishing or undoing a
// conversion that was cut short.
func resolveDatabase(ctx context.Context, database string) (string, error) {
	encryptedName := database + encryptedSuffix
	pointer, err := idbstore.Open(ctx, database+pointerSuffix)
	if err != nil {
		return "", err
	}
	current, err := pointer.Get(ctx, currentKey)
	pointer.Close()
	switch {
	case errors.Is(err, client.ErrNotFound):
		// No conversion finished: a copy left by one cut short is
		// incomplete.
		if err := deleteDatabase(ctx, encryptedName); err != nil {
			return "", fmt.Errorf("interlude: delete the incomplete encrypted copy %q: %w", encryptedName, err)
		}
		return database, nil
	case err != nil:
		return "", fmt.Errorf("interlude: read which database is current: %w", err)
	case string(current) != encryptedName:
		return "", fmt.Errorf("interlude: database %q names %q as current, want %q: the site's data is damaged", database+pointerSuffix, current, encryptedName)
	}
	// The copy is complete, so the plain database may go. Deleting a
	// database that is already gone succeeds.
	if err := deleteDatabase(ctx, database); err != nil {
		return "", fmt.Errorf("interlude: delete the unencrypted database %q: %w", database, err)
	}
	return encryptedName, nil
}

// blockedDeletes holds the names of databases whose deletion another tab
// blocks. A new deletion of the same name would queue behind the blocked
// one and wait as long, with nothing to report, so it fails at once.
var blockedDeletes = struct {
	sync.Mutex
	names map[string]bool
}{names: map[string]bool{}}

// errBlockedDelete is the error of a deletion that another tab blocks.
func errBlockedDelete(name string) error {
	return fmt.Errorf("database %q is open in another tab: close the other tabs of this site and reload", name)
}

// deleteDatabase deletes the IndexedDB database name and waits until it
// is gone.
func deleteDatabase(ctx context.Context, name string) error {
	blockedDeletes.Lock()
	blocked := blockedDeletes.names[name]
	blockedDeletes.Unlock()
	if blocked {
		return errBlockedDelete(name)
	}
	done := make(chan error, 1)
	send := func(err error) {
		select {
		case done <- err:
		default:
		}
	}
	// The request outlives this call when another tab blocks it or ctx
	// ends first, and the browser calls onsuccess or onerror once it
	// completes, so the callbacks are released only then.
	var req js.Value
	var onSuccess, onError, onBlocked js.Func
	var releaseOnce sync.Once
	release := func() {
		go releaseOnce.Do(func() {
			blockedDeletes.Lock()
			delete(blockedDeletes.names, name)
			blockedDeletes.Unlock()
			onSuccess.Release()
			onError.Release()
			onBlocked.Release()
		})
	}
	onSuccess = js.FuncOf(func(js.Value, []js.Value) any {
		send(nil)
		release()
		return nil
	})
	onError = js.FuncOf(func(js.Value, []js.Value) any {
		e := req.Get("error")
		if e.Truthy() {
			send(&idbstore.Error{Op: "delete", Name: e.Get("name").String(), Message: e.Get("message").String()})
		} else {
			send(&idbstore.Error{Op: "delete", Name: "UnknownError"})
		}
		release()
		return nil
	})
	onBlocked = js.FuncOf(func(js.Value, []js.Value) any {
		// The deletion still happens once the other connection closes,
		// but nothing here can close it.
		blockedDeletes.Lock()
		blockedDeletes.names[name] = true
		blockedDeletes.Unlock()
		send(errBlockedDelete(name))
		return nil
	})

	req = js.Global().Get("indexedDB").Call("deleteDatabase", name)
	req.Set("onsuccess", onSuccess)
	req.Set("onerror", onError)
	req.Set("onblocked", onBlocked)
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// copyIntoEncrypted copies every record of plain into the new, empty
// database encryptedName, encrypted under passphrase, and returns how many
// it copied. On error the caller deletes encryptedName.
func copyIntoEncrypted(ctx context.Context, plain client.Store, encryptedName string, passphrase keyring.Passphrase) (int, error) {
	raw, err := idbstore.Open(ctx, encryptedName)
	if err != nil {
		return 0, err
	}
	enc, err := securestore.Open(ctx, raw, securestore.PassphraseUnlocker{Passphrase: passphrase}, securestore.Options{})
	if err != nil {
		raw.Close()
		return 0, fmt.Errorf("interlude: set up the encrypted copy: %w", err)
	}
	defer enc.Close()

	var batch client.Batch
	n := 0
	flush := func() error {
		if len(batch.Ops) == 0 {
			return nil
		}
		err := enc.Write(ctx, &batch)
		batch = client.Batch{}
		return err
	}
	// idbstore's Scan reads all records before it calls fn, so the
	// writes below run outside the scan's transaction.
	err = plain.Scan(ctx, nil, func(key, value []byte) error {
		batch.Put(append([]byte(nil), key...), append([]byte(nil), value...))
		n++
		if len(batch.Ops) == copyBatchSize {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return 0, fmt.Errorf("interlude: copy this device's data into its encrypted copy: %w", err)
	}
	return n, nil
}

// encryptDevice is the JavaScript encryptDevice(passphrase): it encrypts
// a started device that has no passphrase and starts it again encrypted,
// with the idle lock on. It resolves to {records}, the number of records
// copied. API calls made meanwhile wait for it. When the copy fails, the
// device keeps its unencrypted data and starts again without a passphrase.
func (a *app) encryptDevice(args []js.Value) any {
	var passphrase *keyring.Passphrase
	argErr := named("TypeError", errors.New("interlude: encryptDevice needs the new passphrase as its argument"))
	if len(args) > 0 {
		passphrase, argErr = passphraseValue(args[0], false)
	}
	return promise(func() (any, error) {
		if argErr != nil {
			return nil, argErr
		}
		// Holding ops for writing waits for the calls using the client
		// and holds off new ones until the encrypted client is open.
		a.ops.Lock()
		defer a.ops.Unlock()

		a.mu.Lock()
		var state error
		switch {
		case a.cfg == nil:
			state = errNotStarted
		case a.encrypted:
			state = named("InvalidStateError", errors.New("interlude: this device's data is already encrypted under a passphrase"))
		case a.busy || a.client == nil:
			state = named("InvalidStateError", errors.New("interlude: the client is starting: wait for start's Promise"))
		}
		if state != nil {
			a.mu.Unlock()
			return nil, state
		}
		c, stopRun, runDone := a.client, a.stopRun, a.runDone
		cfg := *a.cfg
		a.busy = true
		// The views stay: the data they copy does not change while the
		// client is closed.
		a.client, a.store, a.stopRun, a.runDone = nil, nil, nil, nil
		a.mu.Unlock()
		defer func() {
			a.mu.Lock()
			a.busy = false
			a.mu.Unlock()
		}()

		stopRun()
		<-runDone
		if err := c.Close(); err != nil {
			return nil, fmt.Errorf("interlude: close the unencrypted store: %w", err)
		}

		n, convErr := a.convert(cfg.database, *passphrase)
		if convErr != nil {
			// The plain database is whole and still current, so the
			// device goes on without a passphrase. It opens it without
			// resolving again: a deletion of the copy that another tab
			// blocks would wait behind the first until that tab closes.
			if _, err := a.openDatabase(cfg, cfg.database, nil, false); err != nil {
				return nil, errors.Join(convErr, fmt.Errorf("interlude: reopen the unencrypted data: %w", err))
			}
			return nil, convErr
		}
		if _, err := a.open(cfg, passphrase, false); err != nil {
			return nil, fmt.Errorf("interlude: open the encrypted data: %w", err)
		}
		return map[string]any{"records": n}, nil
	})
}

// convert copies the plain database of the app database named database
// into its encrypted copy, makes the copy current and deletes the plain
// database. It returns the number of records copied.
func (a *app) convert(database string, passphrase keyring.Passphrase) (int, error) {
	ctx := context.Background()
	encryptedName := database + encryptedSuffix
	current, err := resolveDatabase(ctx, database)
	if err != nil {
		return 0, err
	}
	if current != database {
		return 0, named("InvalidStateError", fmt.Errorf("interlude: database %q is already converted", database))
	}

	plain, err := idbstore.Open(ctx, database)
	if err != nil {
		return 0, err
	}
	n, err := copyIntoEncrypted(ctx, plain, encryptedName, passphrase)
	plain.Close()
	if err != nil {
		if delErr := deleteDatabase(ctx, encryptedName); delErr != nil {
			a.log.Error("deleting the incomplete encrypted copy failed", "database", encryptedName, "err", delErr)
		}
		return 0, err
	}

	// From this write on, the encrypted copy is the device's data.
	pointer, err := idbstore.Open(ctx, database+pointerSuffix)
	if err != nil {
		return 0, err
	}
	var batch client.Batch
	batch.Put(currentKey, []byte(encryptedName))
	err = pointer.Write(ctx, &batch)
	pointer.Close()
	if err != nil {
		return 0, fmt.Errorf("interlude: record the encrypted copy as current: %w", err)
	}
	// A plain database that cannot be deleted now is deleted by the
	// resolveDatabase of the next start.
	if _, err := resolveDatabase(ctx, database); err != nil {
		a.log.Error("deleting the unencrypted database failed", "database", database, "err", err)
	}
	a.log.Info("device encrypted", "database", database, "records", n)
	return n, nil
}
