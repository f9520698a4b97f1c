package client_test

import (
	"bytes"
	"log/slog"
	"testing"

	"interlude/client"
	"interlude/client/keyring"
	"interlude/client/wstransport"
	"interlude/sync/envelope"
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

// openRecoveryClient opens the client a recovery phrase runs, on a
// store in memory, as 'interlude device recover' does. The test closes it.
func openRecoveryClient(t *testing.T, h *harness, id *client.Identity) *client.Client {
	t.Helper()
	c, err := client.Open(h.ctx, client.Config{
		Store:    client.NewMemoryStore(),
		Identity: id,
		Dialer:   wstransport.Dialer{},
		RelayURL: h.relay.url(),
		Logger:   slog.New(slog.NewJSONHandler(h.clientLogs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestRecoveryHandsOverUnlinkable makes a recovery phrase on a laptop
// that holds one journal and creates a second one afterwards. A new
// device then recovers both with the phrase alone. Neither the recovery
// device's nor the new device's device key reaches the relay's records:
// both are members under keys of their own for each journal. Then the
// new device removes the lost laptop and the recovery phrase from both
// journals by their device keys, which starts a new key epoch.
func TestRecoveryHandsOverUnlinkable(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	laptop := newClient(t, h.relay.url(), h.clientLogs)
	fresh := newClient(t, h.relay.url(), h.clientLogs)
	first, err := laptop.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := laptop.SetText(ctx, first, "mood log"); err != nil {
		t.Fatal(err)
	}
	phrase, err := keyring.NewRecoveryPhrase()
	if err != nil {
		t.Fatal(err)
	}
	recoveryID, err := client.RecoveryIdentity(phrase)
	if err != nil {
		t.Fatal(err)
	}
	ordinary, err := client.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := laptop.LinkRecoveryDevice(ctx, ordinary); err == nil {
		t.Error("LinkRecoveryDevice takes an identity that no recovery phrase derived")
	}
	if n, err := laptop.LinkRecoveryDevice(ctx, recoveryID); err != nil || n != 1 {
		t.Fatalf("LinkRecoveryDevice = %d, %v; want 1 journal", n, err)
	}
	second, err := laptop.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := laptop.SetText(ctx, second, "thought record"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, laptop)

	// The laptop is lost. The new device recovers with the phrase.
	recovery := openRecoveryClient(t, h, recoveryID)
	n, err := recovery.HandOver(ctx, fresh)
	if err != nil || n != 2 {
		t.Fatalf("HandOver = %d, %v; want both journals offered", n, err)
	}
	mustText(t, fresh, first, "mood log")
	mustText(t, fresh, second, "thought record")
	for _, c := range []*client.Client{recovery, fresh} {
		for _, doc := range []envelope.DocID{first, second} {
			id, err := c.MemberID(doc)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(id.Sign, c.Identity().Public().Sign) {
				t.Errorf("%s is a member of %s under its device key", c.Identity(), doc)
			}
		}
	}
	recoveryKeys := client.EpochKeysForTest(recovery, first)
	if err := recovery.Close(); err != nil {
		t.Fatal(err)
	}

	// The new device learned from the recovery client which devices
	// offered the journals, and their keys: it removes the lost laptop
	// exactly.
	offered, err := fresh.OfferedBy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(offered) != 1 || offered[0].String() != laptop.Identity().PublicID() {
		t.Errorf("devices that offered the journals = %v, want the laptop", offered)
	}
	// As 'interlude device recover' does, the new device links the
	// phrase, so it knows the phrase's keys.
	if _, err := fresh.LinkRecoveryDevice(ctx, recoveryID); err != nil {
		t.Fatal(err)
	}
	if previous, err := fresh.PreviousDevices(ctx); err != nil || len(previous) != 1 {
		t.Errorf("previous devices before the removal = %v, %v; want the laptop", previous, err)
	}
	if n, err := fresh.UnlinkDevice(ctx, laptop.Identity().Public().Sign); err != nil || n != 2 {
		t.Errorf("UnlinkDevice of the lost laptop = %d, %v; want both journals changed, no error", n, err)
	}
	syncAll(t, ctx, fresh)
	if previous, err := fresh.PreviousDevices(ctx); err != nil || len(previous) != 0 {
		t.Errorf("previous devices after the removal = %v, %v; want none", previous, err)
	}
	// The new device makes its own phrase later, and removes the one the
	// laptop made.
	if n, err = fresh.UnlinkDevice(ctx, recoveryID.Public().Sign); err != nil || n != 2 {
		t.Fatalf("UnlinkDevice of the recovery phrase = %d, %v; want both journals changed, no error", n, err)
	}
	syncAll(t, ctx, fresh)
	if err := fresh.SetText(ctx, first, "mood log, after the recovery"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, fresh)
	if len(recoveryKeys) == 0 {
		t.Fatal("the recovery device held no key of the journal; the check below would prove nothing")
	}
	now := client.EpochKeysForTest(fresh, first)
	if len(now) <= len(recoveryKeys) {
		t.Fatalf("the journal has %d key epochs after the unlink, the recovery device held %d: want a new one", len(now), len(recoveryKeys))
	}
	for _, old := range recoveryKeys {
		if bytes.Equal(now[len(now)-1], old) {
			t.Error("the journal's newest key is one the recovery device held")
		}
	}

	h.relay.stop()
	records := relayRecords(t, h.relay.dir)
	devices := map[string][]byte{
		"laptop":          laptop.Identity().Public().Sign,
		"recovery device": recoveryID.Public().Sign,
		"new device":      fresh.Identity().Public().Sign,
	}
	for name, key := range devices {
		if bytes.Contains(records, key) {
			t.Errorf("a relay record holds the device key of the %s", name)
		}
	}
}
