package client_test

import (
	"bytes"
	"errors"
	"testing"

	"interlude/client"
	"interlude/client/keyring"
)

// TestRecoveryBackupOnRelay stores a recovery phrase on the relay under a
// passphrase from one device and fetches it from a new one. A wrong
// passphrase finds nothing, the slot cannot be overwritten, and the relay
// stores neither the words nor the passphrase.
func TestRecoveryBackupOnRelay(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	old := newClient(t, h.relay.url(), h.clientLogs)
	fresh := newClient(t, h.relay.url(), h.clientLogs)
	phrase, err := keyring.NewRecoveryPhrase()
	if err != nil {
		t.Fatal(err)
	}
	const secret = "the hills above the lake in May"
	pass := keyring.NewPassphrase(secret)

	if err := old.StoreRecoveryBackup(ctx, phrase, pass); err != nil {
		t.Fatalf("StoreRecoveryBackup: %v", err)
	}
	got, err := fresh.FetchRecoveryBackup(ctx, pass)
	if err != nil {
		t.Fatalf("FetchRecoveryBackup: %v", err)
	}
	if got.Words() != phrase.Words() {
		t.Error("the fetched phrase differs from the stored one")
	}
	if _, err := fresh.FetchRecoveryBackup(ctx, keyring.NewPassphrase("the hills above the lake in June")); !errors.Is(err, client.ErrNoBackup) {
		t.Errorf("fetch with another passphrase: err = %v, want ErrNoBackup", err)
	}
	other, err := keyring.NewRecoveryPhrase()
	if err != nil {
		t.Fatal(err)
	}
	if err := old.StoreRecoveryBackup(ctx, other, pass); !errors.Is(err, client.ErrBackupExists) {
		t.Errorf("second store under the passphrase: err = %v, want ErrBackupExists", err)
	}
	if got, err := fresh.FetchRecoveryBackup(ctx, pass); err != nil || got.Words() != phrase.Words() {
		t.Errorf("after the refused second store the backup is %v, %v; want the first phrase", got, err)
	}

	h.relay.stop()
	records := relayRecords(t, h.relay.dir)
	for name, secret := range map[string]string{"words": phrase.Words(), "passphrase": secret} {
		if bytes.Contains(records, []byte(secret)) {
			t.Errorf("a relay record holds the %s", name)
		}
		if bytes.Contains(h.relayLogs.Bytes(), []byte(secret)) || bytes.Contains(h.clientLogs.Bytes(), []byte(secret)) {
			t.Errorf("a log holds the %s", name)
		}
	}
}
