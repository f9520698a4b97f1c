package client_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"interlude/client"
	"interlude/client/badgerstore"
	"interlude/crdt"
)

func openStore(t testing.TB, dir string) *badgerstore.Store {
	t.Helper()
	s, err := badgerstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestIdentityFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "profile")
	id, err := client.CreateIdentityFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(dir, client.IdentityFile))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("identity file mode = %v, want 0600", info.Mode().Perm())
	}
	again, err := client.ReadIdentityFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again.PublicID() != id.PublicID() {
		t.Errorf("read identity %s, want %s", again.PublicID(), id.PublicID())
	}
	if _, err := client.CreateIdentityFile(dir); err == nil {
		t.Error("second CreateIdentityFile in one profile succeeded; it must never overwrite an identity")
	}
	if _, err := client.ReadIdentityFile(t.TempDir()); err == nil || !strings.Contains(err.Error(), "id new") {
		t.Errorf("reading a missing identity: err = %v, want a hint to run 'interlude id new'", err)
	}
}

func TestPublicIDRoundTrip(t *testing.T) {
	id, err := client.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	p, err := client.ParsePublicID(" " + id.PublicID() + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if p.String() != id.PublicID() {
		t.Errorf("ParsePublicID round trip = %s, want %s", p, id.PublicID())
	}
	for _, bad := range []string{"", "il1", "xx" + id.PublicID()[2:], id.PublicID()[:40]} {
		if _, err := client.ParsePublicID(bad); err == nil {
			t.Errorf("ParsePublicID(%q) succeeded", bad)
		}
	}
}

func TestIdentityNotInLogText(t *testing.T) {
	id, err := client.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	secret, err := id.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if got := id.LogValue().String(); strings.Contains(got, string(secret)) || got != id.Public().Fingerprint() {
		t.Errorf("LogValue = %q, want only the fingerprint", got)
	}
}

func TestOfflineEditsSurviveReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	id, err := client.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Open(ctx, client.Config{Store: openStore(t, dir), Identity: id})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := c.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// More edits than a document keeps as separate records, so the reopen
	// also reads a compacted state.
	want := ""
	for i := range 300 {
		word := string(rune('a' + i%26))
		want += word
		if err := c.Edit(ctx, doc, func(t *crdt.Text) error { return t.Insert(t.Len(), word) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.SetText(ctx, doc, "Dear diary, "+want); err != nil {
		t.Fatal(err)
	}
	if st := c.Status(doc); st.Pending != 302 || st.Connected || st.Synced {
		t.Errorf("offline status = %+v, want 301 updates and the registration pending", st)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	c, err = client.Open(ctx, client.Config{Store: openStore(t, dir), Identity: id})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := c.Text(doc)
	if err != nil {
		t.Fatal(err)
	}
	if got != "Dear diary, "+want {
		t.Errorf("text after reopen = %q", got)
	}
	if st := c.Status(doc); st.Pending != 302 {
		t.Errorf("pending after reopen = %d, want 302", st.Pending)
	}
}

func TestUnknownDocument(t *testing.T) {
	ctx := context.Background()
	id, err := client.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Open(ctx, client.Config{Store: openStore(t, t.TempDir()), Identity: id})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var doc [16]byte
	if _, err := c.Text(doc); !errors.Is(err, client.ErrUnknownDocument) {
		t.Errorf("Text: err = %v, want ErrUnknownDocument", err)
	}
	if err := c.SetText(ctx, doc, "x"); !errors.Is(err, client.ErrUnknownDocument) {
		t.Errorf("SetText: err = %v, want ErrUnknownDocument", err)
	}
	if err := c.Share(ctx, doc, id.Public()); !errors.Is(err, client.ErrUnknownDocument) {
		t.Errorf("Share: err = %v, want ErrUnknownDocument", err)
	}
}

func TestSyncOnceWithoutRelay(t *testing.T) {
	ctx := context.Background()
	id, err := client.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Open(ctx, client.Config{Store: openStore(t, t.TempDir()), Identity: id})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SyncOnce(ctx); err == nil || !strings.Contains(err.Error(), "RelayURL") {
		t.Errorf("SyncOnce with no relay: err = %v, want a hint to set the relay", err)
	}
}

// flakyStore fails every Write while failing is set.
type flakyStore struct {
	client.Store
	failing bool
}

func (s *flakyStore) Write(ctx context.Context, b *client.Batch) error {
	if s.failing {
		return errors.New("disk full")
	}
	return s.Store.Write(ctx, b)
}

// TestFailedWriteHasNoEffect makes one edit's write fail, then checks that
// the edit left no trace and that later edits are saved, also after a
// reopen.
func TestFailedWriteHasNoEffect(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	id, err := client.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	store := &flakyStore{Store: openStore(t, dir)}
	c, err := client.Open(ctx, client.Config{Store: store, Identity: id})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := c.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetText(ctx, doc, "kept"); err != nil {
		t.Fatal(err)
	}
	store.failing = true
	if err := c.SetText(ctx, doc, "kept, and a long paste"); err == nil {
		t.Fatal("SetText on a failing store succeeded")
	}
	if got, _ := c.Text(doc); got != "kept" {
		t.Errorf("text after a failed save = %q, want %q", got, "kept")
	}
	if st := c.Status(doc); st.Pending != 2 {
		t.Errorf("pending after a failed save = %d, want 1 update and the registration", st.Pending)
	}
	store.failing = false
	if err := c.SetText(ctx, doc, "kept, and short"); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	c, err = client.Open(ctx, client.Config{Store: openStore(t, dir), Identity: id})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := c.Text(doc); err != nil || got != "kept, and short" {
		t.Errorf("text after reopen = %q, %v; want %q", got, err, "kept, and short")
	}
}
