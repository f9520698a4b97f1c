package client_test

import (
	"testing"

	"interlude/client"
	"interlude/client/keyring"
)

// TestRecoveryIdentityMatchesPhrase checks that the identity a phrase
// derives has the public keys the keyring gives the recovery device, and
// that the same words give the same identity again.
func TestRecoveryIdentityMatchesPhrase(t *testing.T) {
	p, err := keyring.NewRecoveryPhrase()
	if err != nil {
		t.Fatal(err)
	}
	id, err := client.RecoveryIdentity(p)
	if err != nil {
		t.Fatal(err)
	}
	want := p.Public()
	got := id.Public()
	if string(got.Sign) != string(want.SigningKey()) {
		t.Errorf("signing key %x, want the keyring's %x", got.Sign[:4], want.SigningKey()[:4])
	}
	if got.Box != want.Box {
		t.Error("box key differs from the keyring's")
	}
	again, err := keyring.ParseRecoveryPhrase(p.Words())
	if err != nil {
		t.Fatal(err)
	}
	id2, err := client.RecoveryIdentity(again)
	if err != nil {
		t.Fatal(err)
	}
	if id2.PublicID() != id.PublicID() {
		t.Errorf("the typed phrase gives %s, want %s", id2, id)
	}
}
