//go:build js && wasm

package main

// This file opens the client over a store that is encrypted under a
// passphrase when the person chose one, and locks it again after an idle
// period.
//
// securestore has an idle lock of its own (Options.IdleTimeout), which
// this app does not use, for two reasons. It zeroes only the store's data
// key, while the client keeps the decrypted documents, their keys and the
// device's identity in memory. And it counts every store access as use,
// including the relay's deliveries, so a therapist's edits would keep a
// client's unattended device open. The app locks on the person's idle time
// instead, and a lock closes the client and the store, so that nothing it
// decrypted stays reachable from the program.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"syscall/js"
	"time"

	"interlude/client"
	"interlude/client/keyring"
	"interlude/client/securestore"
	"interlude/wasm/idbstore"
	"interlude/wasm/jsws"
)

// defaultIdleTimeout is how long an encrypted store stays open without
// activity when start names no idleTimeout.
const defaultIdleTimeout = 15 * time.Minute

// startConfig contains start's options, kept so that unlock opens the
// same database and relay again. It contains no passphrase.
type startConfig struct {
	relay    string
	database string
	idle     time.Duration
}

// Errors of start, unlock and the calls made while locked. Their names let
// the page choose what to show without reading the message.
var (
	errLockedAtStart = named("LockedError", errors.New("interlude: this device's data is locked: enter the passphrase"))
	errLocked        = named("LockedError", errors.New("interlude: this device's data is locked: call unlock with the passphrase"))
	errNotEncrypted  = named("NotEncryptedError", errors.New("interlude: this device's data was stored without a passphrase: start without one, then call encryptDevice to add one"))
)

var errStopScan = errors.New("stop scan")

// parseStartOptions reads start's {relay, database, passphrase,
// idleTimeout} argument. idleTimeout is in milliseconds.
func parseStartOptions(args []js.Value) (startConfig, *keyring.Passphrase, error) {
	cfg := startConfig{database: defaultDatabase, idle: defaultIdleTimeout}
	if len(args) == 0 || args[0].Type() != js.TypeObject {
		return cfg, nil, nil
	}
	opts := args[0]
	if v := opts.Get("relay"); v.Type() == js.TypeString {
		cfg.relay = v.String()
	}
	if v := opts.Get("database"); v.Type() == js.TypeString && v.String() != "" {
		cfg.database = v.String()
	}

	switch v := opts.Get("idleTimeout"); v.Type() {
	case js.TypeUndefined, js.TypeNull:
	case js.TypeNumber:
		ms := v.Float()
		if math.IsNaN(ms) || math.IsInf(ms, 0) || ms < 1 {
			return cfg, nil, named("TypeError", fmt.Errorf("interlude: idleTimeout %v is invalid: give a number of milliseconds of at least 1, or leave it out for %v", ms, defaultIdleTimeout))
		}
		cfg.idle = time.Duration(ms * float64(time.Millisecond))
	default:
		return cfg, nil, named("TypeError", fmt.Errorf("interlude: idleTimeout is a %s: give a number of milliseconds", v.Type()))
	}

	passphrase, err := passphraseValue(opts.Get("passphrase"), true)
	return cfg, passphrase, err
}

// passphraseValue reads a passphrase given to start or unlock. With
// optional set, undefined and null mean "no passphrase".
//
// NOTE: the passphrase passes through a Go string, which cannot be zeroed,
// and keyring.Passphrase offers no way to zero its copy either. Both stay
// in memory until the garbage collector reuses it.
func passphraseValue(v js.Value, optional bool) (*keyring.Passphrase, error) {
	switch v.Type() {
	case js.TypeString:
		if v.String() == "" {
			return nil, named("TypeError", errors.New("interlude: the passphrase is empty: type it, or leave it out to start without one"))
		}
		p := keyring.NewPassphrase(v.String())
		return &p, nil
	case js.TypeUndefined, js.TypeNull:
		if optional {
			return nil, nil
		}
	}
	return nil, named("TypeError", fmt.Errorf("interlude: the passphrase is a %s: give a string", v.Type()))
}

// storeState resolves to "new" when the database holds no identity and no
// encrypted store, "encrypted" when it holds an encrypted store, and
// "unencrypted" otherwise. It only reads the database, after finishing or
// undoing a conversion to an encrypted database that was cut short.
func (a *app) storeState(args []js.Value) any {
	database := defaultDatabase
	if len(args) > 0 && args[0].Type() == js.TypeObject {
		if v := args[0].Get("database"); v.Type() == js.TypeString && v.String() != "" {
			database = v.String()
		}
	}
	return promise(func() (any, error) {
		ctx := context.Background()
		current, err := resolveDatabase(ctx, database)
		if err != nil {
			return nil, err
		}
		raw, err := idbstore.Open(ctx, current)
		if err != nil {
			return nil, err
		}
		defer raw.Close()

		encrypted, err := hasSecureHeader(ctx, raw)
		switch {
		case err != nil:
			return nil, err
		case encrypted:
			return "encrypted", nil
		}
		// The client writes the identity before anything else, so a
		// database without one holds no journal.
		_, err = raw.Get(ctx, []byte("identity"))
		switch {
		case errors.Is(err, client.ErrNotFound):
			return "new", nil
		case err != nil:
			return nil, fmt.Errorf("interlude: read the identity: %w", err)
		}
		return "unencrypted", nil
	})
}

// hasSecureHeader reports whether raw holds securestore's header, which
// means its values are encrypted.
func hasSecureHeader(ctx context.Context, raw client.Store) (bool, error) {
	found := false
	err := raw.Scan(ctx, []byte(securestore.ReservedPrefix), func(_, _ []byte) error {
		found = true
		return errStopScan
	})
	if err != nil && !errors.Is(err, errStopScan) {
		return false, fmt.Errorf("interlude: check whether this device's data is encrypted: %w", err)
	}
	return found, nil
}

// openStore returns the store the client uses over raw: raw itself when it
// is not encrypted and no passphrase is given, or raw encrypted under the
// passphrase. With unlocking set, raw must already be encrypted. On error
// the caller still owns raw.
func openStore(ctx context.Context, raw client.Store, passphrase *keyring.Passphrase, unlocking bool) (store client.Store, encrypted bool, err error) {
	encrypted, err = hasSecureHeader(ctx, raw)
	switch {
	case err != nil:
		return nil, false, err
	case unlocking && !encrypted:
		// Without this check, unlock would create a new encrypted store
		// and identity under whatever was typed.
		return nil, false, errors.New("interlude: this device's encrypted data is gone, perhaps because the site's data was cleared: reload the page")
	case passphrase == nil && encrypted:
		return nil, false, errLockedAtStart
	case passphrase == nil:
		return raw, false, nil
	}

	// securestore.Open creates the data key on an empty store, and
	// writes nothing when it returns an error.
	s, err := securestore.Open(ctx, raw, securestore.PassphraseUnlocker{Passphrase: *passphrase}, securestore.Options{})
	switch {
	case errors.Is(err, securestore.ErrWrongKey):
		return nil, false, named("WrongPassphraseError", fmt.Errorf("interlude: wrong passphrase for this device's data: %w", err))
	case errors.Is(err, securestore.ErrNotEncrypted):
		return nil, false, errNotEncrypted
	case err != nil:
		return nil, false, err
	}
	return s, true, nil
}

// open opens the store, the identity and the client for cfg, installs
// them and starts Run. unlocking is set when unlock calls it.
func (a *app) open(cfg startConfig, passphrase *keyring.Passphrase, unlocking bool) (*client.Client, error) {
	current, err := resolveDatabase(context.Background(), cfg.database)
	if err != nil {
		return nil, err
	}
	return a.openDatabase(cfg, current, passphrase, unlocking)
}

// openDatabase is open on the IndexedDB database current, which the
// caller knows holds the device's data.
func (a *app) openDatabase(cfg startConfig, current string, passphrase *keyring.Passphrase, unlocking bool) (*client.Client, error) {
	ctx := context.Background()
	raw, err := idbstore.Open(ctx, current)
	if err != nil {
		return nil, err
	}

	store, encrypted, err := openStore(ctx, raw, passphrase, unlocking)
	if err != nil {
		raw.Close()
		return nil, err
	}
	identity, err := client.LoadOrCreateIdentity(ctx, store)
	if err != nil {
		store.Close()
		return nil, err
	}
	ccfg := client.Config{Store: store, Identity: identity, Logger: a.log}
	if cfg.relay != "" {
		ccfg.Dialer = jsws.Dialer{}
		ccfg.RelayURL = cfg.relay
	}
	c, err := client.Open(ctx, ccfg)
	if err != nil {
		store.Close()
		return nil, err
	}
	c.OnChange(a.markChanged)
	a.install(cfg, c, store, encrypted)
	return c, nil
}

// install makes c the app's client, starts its Run when a relay is set,
// and arms the idle lock for an encrypted store.
func (a *app) install(cfg startConfig, c *client.Client, store client.Store, encrypted bool) {
	runCtx, stopRun := context.WithCancel(context.Background())
	runDone := make(chan struct{})

	a.mu.Lock()
	a.client, a.store, a.encrypted = c, store, encrypted
	a.cfg = &cfg
	a.stopRun, a.runDone = stopRun, runDone
	a.lastActivity = time.Now().Round(0)
	if encrypted {
		a.armIdleLocked(cfg.idle)
	}
	a.mu.Unlock()

	if cfg.relay == "" {
		close(runDone)
		return
	}
	go func() {
		defer close(runDone)
		// Run returns only when lockNow ends its context.
		c.Run(runCtx)
	}()
}

// acquire returns the running client and its store, and holds off a lock
// until release is called.
func (a *app) acquire() (c *client.Client, store client.Store, release func(), err error) {
	a.ops.RLock()
	a.mu.Lock()
	c, store, started := a.client, a.store, a.cfg != nil
	a.mu.Unlock()
	switch {
	case c != nil:
		return c, store, a.ops.RUnlock, nil
	case started:
		err = errLocked
	default:
		err = errNotStarted
	}
	a.ops.RUnlock()
	return nil, nil, nil, err
}

// withClient is the shape of most API calls: it returns a Promise that,
// once the client is started and unlocked, holds off a lock while fn
// runs with the client and its store. touch counts the call as use for
// the idle lock. A non-nil argErr, the caller's check of its arguments,
// rejects the Promise instead of fn, after the client checks, so a call
// on a locked page reports the lock first.
func (a *app) withClient(touch bool, argErr error, fn func(c *client.Client, store client.Store) (any, error)) any {
	return promise(func() (any, error) {
		if touch {
			a.touch()
		}
		c, store, release, err := a.acquire()
		if err != nil {
			return nil, err
		}
		defer release()
		if argErr != nil {
			return nil, argErr
		}
		return fn(c, store)
	})
}

// lockNow closes the client and its encrypted store, which zeroes the
// data key, and then calls the onLock listeners. It waits for the API
// calls already using the client. With idleOnly set it locks only if the
// person has still been idle for the whole timeout once those calls end.
func (a *app) lockNow(idleOnly bool) error {
	a.ops.Lock()
	defer a.ops.Unlock()

	a.mu.Lock()
	c, stopRun, runDone := a.client, a.stopRun, a.runDone
	if c == nil {
		a.mu.Unlock()
		return nil
	}
	if !a.encrypted {
		a.mu.Unlock()
		return named("InvalidStateError", errors.New("interlude: this device's data has no passphrase, so it cannot be locked"))
	}
	if left := a.idleLeftLocked(); idleOnly && left > 0 {
		a.armIdleLocked(left)
		a.mu.Unlock()
		return nil
	}
	a.client, a.store, a.stopRun, a.runDone = nil, nil, nil, nil
	clear(a.views)
	clear(a.changed)
	a.stopIdleLocked()
	listeners := append([]js.Value(nil), a.lockListeners...)
	a.mu.Unlock()

	stopRun()
	<-runDone
	err := c.Close()
	for _, fn := range listeners {
		js.Global().Call("setTimeout", fn, 0)
	}
	if err != nil {
		return fmt.Errorf("interlude: close the locked store: %w", err)
	}
	return nil
}

// idleLeftLocked returns how long until the idle lock is due.
func (a *app) idleLeftLocked() time.Duration {
	return a.cfg.idle - time.Now().Round(0).Sub(a.lastActivity)
}

func (a *app) armIdleLocked(d time.Duration) {
	a.stopIdleLocked()
	epoch := a.idleEpoch
	a.idleTimer = time.AfterFunc(d, func() { a.onIdleTimer(epoch) })
}

func (a *app) stopIdleLocked() {
	if a.idleTimer != nil {
		a.idleTimer.Stop()
		a.idleTimer = nil
	}
	a.idleEpoch++
}

// onIdleTimer locks when the person has been idle for the whole timeout,
// and otherwise arms the timer again for the time that is left.
func (a *app) onIdleTimer(epoch uint64) {
	a.mu.Lock()
	if epoch != a.idleEpoch || a.client == nil {
		a.mu.Unlock()
		return
	}
	if left := a.idleLeftLocked(); left > 0 {
		a.armIdleLocked(left)
		a.mu.Unlock()
		return
	}
	a.mu.Unlock()
	if err := a.lockNow(true); err != nil {
		a.log.Error("idle lock failed", "database", a.database(), "err", err)
	}
}

func (a *app) database() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cfg == nil {
		return ""
	}
	return a.cfg.database
}

// touch records the person's activity. Activity that comes after the idle
// lock was due, such as the first key pressed after the computer slept
// with its timers paused, locks instead of extending the idle period.
func (a *app) touch() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.client == nil || !a.encrypted {
		return
	}
	if a.idleLeftLocked() <= 0 {
		go func() {
			if err := a.lockNow(true); err != nil {
				a.log.Error("idle lock failed", "database", a.database(), "err", err)
			}
		}()
		return
	}
	a.lastActivity = time.Now().Round(0)
}

// activity is the JavaScript activity(): the page calls it on the person's
// keys, clicks and scrolling.
func (a *app) activity([]js.Value) any {
	a.touch()
	return nil
}

// lock is the JavaScript lock(). It resolves at once when the app is not
// running.
func (a *app) lock([]js.Value) any {
	return promise(func() (any, error) {
		return nil, a.lockNow(false)
	})
}

// locked reports whether start succeeded and the app is locked now.
func (a *app) locked([]js.Value) any {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg != nil && a.client == nil
}

func (a *app) onLock(args []js.Value) any {
	if len(args) == 0 || args[0].Type() != js.TypeFunction {
		return nil
	}
	a.mu.Lock()
	a.lockListeners = append(a.lockListeners, args[0])
	a.mu.Unlock()
	return nil
}

// unlock is the JavaScript unlock(passphrase): it opens the store and the
// client again after a lock, with start's database, relay and idle
// timeout. A wrong passphrase rejects with WrongPassphraseError and leaves
// the app locked.
func (a *app) unlock(args []js.Value) any {
	var passphrase *keyring.Passphrase
	argErr := named("TypeError", errors.New("interlude: unlock needs the passphrase as its argument"))
	if len(args) > 0 {
		passphrase, argErr = passphraseValue(args[0], false)
	}
	return promise(func() (any, error) {
		if argErr != nil {
			return nil, argErr
		}
		a.mu.Lock()
		var state error
		switch {
		case a.cfg == nil:
			state = errNotStarted
		case a.client != nil:
			state = named("InvalidStateError", errors.New("interlude: not locked: unlock is needed only after a lock"))
		case a.busy:
			state = named("InvalidStateError", errors.New("interlude: unlock is already running: wait for its Promise"))
		}
		if state != nil {
			a.mu.Unlock()
			return nil, state
		}
		a.busy = true
		cfg := *a.cfg
		a.mu.Unlock()

		c, err := a.open(cfg, passphrase, true)
		a.mu.Lock()
		a.busy = false
		a.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return a.startResult(c), nil
	})
}
