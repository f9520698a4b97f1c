package keyring

import (
	"errors"
	"testing"
)

// TestRecoveryBackupRoundTrip seals a phrase for one relay, opens it with
// the passphrase, and checks what must fail: another passphrase, another
// relay, a short passphrase, and weakened parameters.
func TestRecoveryBackupRoundTrip(t *testing.T) {
	p, err := NewRecoveryPhrase()
	if err != nil {
		t.Fatal(err)
	}
	pass := NewPassphrase("a long sentence only I know")
	blob, err := SealRecoveryBackup(p, pass, "relay.example:443")
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenRecoveryBackup(blob, pass, "relay.example:443")
	if err != nil {
		t.Fatalf("OpenRecoveryBackup: %v", err)
	}
	if got.Words() != p.Words() {
		t.Error("the opened phrase differs from the sealed one")
	}
	if _, err := OpenRecoveryBackup(blob, NewPassphrase("another long sentence"), "relay.example:443"); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("open with another passphrase: err = %v, want ErrWrongPassphrase", err)
	}
	if _, err := OpenRecoveryBackup(blob, pass, "other.example:443"); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("open for another relay: err = %v, want ErrWrongPassphrase", err)
	}
	if _, err := SealRecoveryBackup(p, NewPassphrase("short one"), "relay.example:443"); !errors.Is(err, ErrBackupPassphraseShort) {
		t.Errorf("seal under a 9-character passphrase: err = %v, want ErrBackupPassphraseShort", err)
	}

	// The relay lowers the stored time cost: the blob must be rejected
	// before any derivation.
	weak := append([]byte(nil), blob...)
	params, _, err := ReadArgon2Params(weak)
	if err != nil {
		t.Fatal(err)
	}
	params.Time = 1
	copy(weak, params.header())
	if _, err := OpenRecoveryBackup(weak, pass, "relay.example:443"); !errors.Is(err, ErrArgon2Params) {
		t.Errorf("open with a weakened time cost: err = %v, want ErrArgon2Params", err)
	}
}

// TestBackupIDScoped checks that the id is stable for one passphrase and
// relay and differs for another of either.
func TestBackupIDScoped(t *testing.T) {
	pass := NewPassphrase("a long sentence only I know")
	a, err := BackupID(pass, "relay.example:443")
	if err != nil {
		t.Fatal(err)
	}
	again, err := BackupID(pass, "relay.example:443")
	if err != nil {
		t.Fatal(err)
	}
	if a != again {
		t.Error("the id of one passphrase and relay changed")
	}
	other, err := BackupID(pass, "other.example:443")
	if err != nil {
		t.Fatal(err)
	}
	if other == a {
		t.Error("two relays give one passphrase the same id")
	}
	otherPass, err := BackupID(NewPassphrase("another long sentence"), "relay.example:443")
	if err != nil {
		t.Fatal(err)
	}
	if otherPass == a {
		t.Error("two passphrases give the same id")
	}
}
