//go:build js && wasm

package main

// This file makes a recovery phrase and recovers with one. The phrase
// derives one more device (client.RecoveryIdentity), which this device
// links like any other, so that device is a member of every document of
// the person, now and later. On a new device, recover runs a client as
// that recovery device on a store in memory, long enough to link the new
// device, as 'interlude device recover' does. The words are secret, so
// nothing here stores or logs them, and no error message quotes them.

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"syscall/js"

	"interlude/client"
	"interlude/client/keyring"
	"interlude/wasm/jsws"
)

// recoveryKeyPrefix starts the key of a record that marks a linked device
// as a recovery phrase made on this device, so the page can name it. The
// key ends in the device's public signing key, and nothing in the record
// is secret.
const recoveryKeyPrefix = "web/recovery/"

func recoveryKey(sign ed25519.PublicKey) []byte {
	return append([]byte(recoveryKeyPrefix), sign...)
}

// errNoRecoveryDocuments rejects a phrase that gave this device no
// document, which a mistyped phrase cannot cause: the checksum catches
// those.
var errNoRecoveryDocuments = named("NoRecoveryDocumentsError", errors.New("interlude: the recovery phrase opens no document on this relay: the device that made the phrase may never have synced with it"))

// makeRecoveryPhrase is the JavaScript makeRecoveryPhrase(). It links the
// device that a new phrase derives and resolves to {words, fingerprint,
// documents}: the phrase, the recovery device's fingerprint, and the
// number of documents it is added to on the next sync.
//
// NOTE: the words pass through Go and JavaScript strings, which cannot be
// zeroed, so they stay in memory until the garbage collector reuses it.
func (a *app) makeRecoveryPhrase([]js.Value) any {
	return a.withClient(true, nil, func(c *client.Client, store client.Store) (any, error) {
		phrase, err := keyring.NewRecoveryPhrase()
		if err != nil {
			return nil, err
		}
		recovery, err := client.RecoveryIdentity(phrase)
		if err != nil {
			return nil, err
		}
		dev := recovery.Public()

		// The mark is written before the link, so a failure between the
		// two leaves a mark on a device that was never linked, which
		// nothing lists, and never a linked recovery device without its
		// name.
		ctx := context.Background()
		var batch client.Batch
		batch.Put(recoveryKey(dev.Sign), []byte{1})
		if err := store.Write(ctx, &batch); err != nil {
			return nil, fmt.Errorf("interlude: record the recovery device: %w", err)
		}
		n, err := c.LinkRecoveryDevice(ctx, recovery)
		if err != nil {
			return nil, err
		}
		a.refreshAll(c)
		return map[string]any{"words": phrase.Words(), "fingerprint": dev.Fingerprint(), "documents": n}, nil
	})
}

// isRecoveryDevice reports whether dev is a recovery phrase made on this
// device.
func isRecoveryDevice(ctx context.Context, store client.Store, dev client.PublicID) (bool, error) {
	_, err := store.Get(ctx, recoveryKey(dev.Sign))
	switch {
	case errors.Is(err, client.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("interlude: read whether device %s is a recovery phrase: %w", dev.Fingerprint(), err)
	}
	return true, nil
}

// recover is the JavaScript recover(words). It links this device to every
// document of the phrase's person, syncs them to this device, and resolves
// to {documents, synced}: the number of documents linked, and whether
// this device has fetched them yet. When synced is false they arrive on a
// later sync.
func (a *app) recover(args []js.Value) any {
	words, wordsErr := stringArg(args, 0, "words")
	return a.withClient(true, wordsErr, func(c *client.Client, _ client.Store) (any, error) {
		phrase, err := parseRecoveryPhrase(words)
		if err != nil {
			return nil, err
		}
		return a.recoverWith(c, phrase)
	})
}

// recoverFromBackup is the JavaScript recoverFromBackup(passphrase). It
// fetches the recovery phrase that the relay keeps sealed under the
// passphrase and resolves as recover does. A passphrase that names no
// backup rejects with NoBackupError.
func (a *app) recoverFromBackup(args []js.Value) any {
	var pass *keyring.Passphrase
	argErr := named("TypeError", errors.New("interlude: recoverFromBackup needs the backup passphrase as its argument"))
	if len(args) > 0 {
		pass, argErr = passphraseValue(args[0], false)
	}
	return a.withClient(true, argErr, func(c *client.Client, _ client.Store) (any, error) {
		var phrase *keyring.RecoveryPhrase
		err := a.withRelay(func(ctx context.Context) error {
			var err error
			phrase, err = c.FetchRecoveryBackup(ctx, *pass)
			return err
		})
		switch {
		case errors.Is(err, client.ErrNoBackup):
			return nil, named("NoBackupError", err)
		case errors.Is(err, keyring.ErrWrongPassphrase):
			return nil, named("NoBackupError", err)
		case err != nil:
			return nil, err
		}
		return a.recoverWith(c, phrase)
	})
}

// storeRecoveryBackup is the JavaScript storeRecoveryBackup(words,
// passphrase). It has the relay keep the recovery phrase words sealed
// under the passphrase, which must have at least 12 characters
// (WeakPassphraseError), and is not used for another backup on this relay
// (BackupExistsError).
func (a *app) storeRecoveryBackup(args []js.Value) any {
	words, wordsErr := stringArg(args, 0, "words")
	var pass *keyring.Passphrase
	passErr := named("TypeError", errors.New("interlude: storeRecoveryBackup needs the backup passphrase as its second argument"))
	if len(args) > 1 {
		pass, passErr = passphraseValue(args[1], false)
	}
	return a.withClient(true, errors.Join(wordsErr, passErr), func(c *client.Client, _ client.Store) (any, error) {
		phrase, err := parseRecoveryPhrase(words)
		if err != nil {
			return nil, err
		}
		err = a.withRelay(func(ctx context.Context) error { return c.StoreRecoveryBackup(ctx, phrase, *pass) })
		switch {
		case errors.Is(err, keyring.ErrBackupPassphraseShort):
			return nil, named("WeakPassphraseError", err)
		case errors.Is(err, client.ErrBackupExists):
			return nil, named("BackupExistsError", err)
		case err != nil:
			return nil, err
		}
		return map[string]any{}, nil
	})
}

// recoverWith links this device with the recovery device that phrase
// derives, syncs, and links the recovery device from this device in turn.
// It resolves to {documents, synced}, as recover does.
func (a *app) recoverWith(c *client.Client, phrase *keyring.RecoveryPhrase) (any, error) {
	recoveryID, err := client.RecoveryIdentity(phrase)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	relay := a.cfg.relay
	a.mu.Unlock()
	if relay == "" {
		return nil, errNoRelay
	}

	n, err := a.linkFromRecovery(recoveryID, relay, c)
	if err != nil {
		return nil, err
	}
	synced := true
	if err := a.resync(c); err != nil {
		a.log.Warn("sync after recovery failed, so the documents arrive on the next sync", "documents", n, "err", err)
		synced = false
	}
	// This device links the recovery device in turn, so that the
	// phrase also covers documents shared with this device later.
	linkCtx, cancel := context.WithTimeout(context.Background(), relayTimeout)
	_, err = c.LinkRecoveryDevice(linkCtx, recoveryID)
	cancel()
	if err != nil {
		return nil, err
	}
	a.refreshAll(c)
	return map[string]any{"documents": n, "synced": synced}, nil
}

// linkFromRecovery runs a client as the recovery device on a store in
// memory and hands every document it is a member of over to c's device
// (client.HandOver). It returns the number of documents offered.
func (a *app) linkFromRecovery(recoveryID *client.Identity, relay string, c *client.Client) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), relayTimeout)
	defer cancel()
	recovery, err := client.Open(ctx, client.Config{
		Store:    client.NewMemoryStore(),
		Identity: recoveryID,
		Dialer:   jsws.Dialer{},
		RelayURL: relay,
		Logger:   a.log.With("device", "recovery"),
	})
	if err != nil {
		return 0, err
	}
	defer recovery.Close()

	n, err := recovery.HandOver(ctx, c)
	if err != nil {
		return 0, fmt.Errorf("interlude: hand the documents over as the recovery device: %w", err)
	}
	if n == 0 {
		return 0, errNoRecoveryDocuments
	}
	return n, nil
}

// parseRecoveryPhrase parses words, and names what is wrong in a way the
// page can show without quoting a word.
func parseRecoveryPhrase(words string) (*keyring.RecoveryPhrase, error) {
	if n := len(strings.Fields(words)); n != keyring.RecoveryPhraseWords {
		err := fmt.Errorf("interlude: the recovery phrase has %d words, want %d: type every word of the written copy", n, keyring.RecoveryPhraseWords)
		return nil, namedWith("InvalidRecoveryPhraseError", err, map[string]any{"reason": "count", "words": n, "want": keyring.RecoveryPhraseWords})
	}
	phrase, err := keyring.ParseRecoveryPhrase(words)
	switch {
	case errors.Is(err, keyring.ErrRecoveryChecksum):
		return nil, namedWith("InvalidRecoveryPhraseError", err, map[string]any{"reason": "checksum"})
	case err != nil:
		return nil, namedWith("InvalidRecoveryPhraseError", err, map[string]any{"reason": "word"})
	}
	return phrase, nil
}
