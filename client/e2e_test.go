package client_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"interlude/client"
	"interlude/client/wstransport"
	"interlude/crdt"
	"interlude/relay"
	"interlude/sync/envelope"
	"interlude/sync/membership"
)

// lockedBuffer collects log output from several goroutines.
type lockedBuffer struct {
	mu  gosync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// testRelay is a relay on a fixed loopback address that can be stopped and
// started again on the same data folder.
type testRelay struct {
	t    testing.TB
	dir  string
	addr string
	logs *lockedBuffer
	srv  *relay.Server
}

func startRelay(t testing.TB, logs *lockedBuffer) *testRelay {
	r := &testRelay{t: t, dir: filepath.Join(t.TempDir(), "relay"), addr: "127.0.0.1:0", logs: logs}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *testRelay) start() {
	r.t.Helper()
	logger := slog.New(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := relay.Open(relay.Config{DataDir: r.dir, Logger: logger})
	if err != nil {
		r.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		srv.Shutdown(context.Background())
		r.t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.srv = srv
	go srv.Serve(ln)
}

func (r *testRelay) stop() {
	if r.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil {
		r.t.Errorf("relay shutdown: %v", err)
	}
	r.srv = nil
}

func (r *testRelay) url() string { return "ws://" + r.addr + "/v1/sync" }

func newClient(t *testing.T, relayURL string, logs *lockedBuffer) *client.Client {
	t.Helper()
	id, err := client.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := client.Open(context.Background(), client.Config{
		Store:    openStore(t, t.TempDir()),
		Identity: id,
		Dialer:   wstransport.Dialer{},
		RelayURL: relayURL,
		Logger:   logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The secrets in the store are read while it is open, for the
		// harness's scan, which runs after this.
		harnessClients.keepSecrets(t, client.SecretsForTest(c))
		c.Close()
	})
	harnessClients.add(t, c)
	return c
}

// waitFor polls cond until it holds or the deadline passes. The deadline
// only guards against a hang; it asserts nothing about speed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func text(t *testing.T, c *client.Client, doc envelope.DocID) string {
	t.Helper()
	s, err := c.Text(doc)
	if err != nil {
		return ""
	}
	return s
}

// TestJournalConvergesAcrossRelayRestart covers the whole path: a client
// writes a journal and shares it, the therapist's device receives it, the
// relay goes away while both edit, comes back, and both converge. The
// relay's files and every log line must not contain the journal's words.
func TestJournalConvergesAcrossRelayRestart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	relayLogs, clientLogs := &lockedBuffer{}, &lockedBuffer{}
	r := startRelay(t, relayLogs)
	patient := newClient(t, r.url(), clientLogs)
	therapist := newClient(t, r.url(), clientLogs)

	// 1. The client writes and shares; the therapist accepts.
	const first = "Tuesday: marker-7f3a slept five hours, walked at lunch."
	doc, err := patient.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := patient.SetText(ctx, doc, first); err != nil {
		t.Fatal(err)
	}
	// The share is an offer: the therapist replies with its key for the
	// journal, the patient adds it, and the therapist fetches the journal.
	if err := patient.Share(ctx, doc, therapist.Identity().Public()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Client{patient, therapist, patient, therapist} {
		if err := c.SyncOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := text(t, therapist, doc); got != first {
		t.Fatalf("therapist text = %q, want %q", got, first)
	}

	// 2. Both run their sync loops; the relay stops; both edit apart.
	go patient.Run(ctx)
	go therapist.Run(ctx)
	waitFor(t, "both clients are connected", func() bool {
		return patient.Status(doc).Connected && therapist.Status(doc).Connected
	})
	r.stop()
	waitFor(t, "both clients notice the relay is gone", func() bool {
		return !patient.Status(doc).Connected && !therapist.Status(doc).Connected
	})
	const patientAdds = " Evening: marker-91bc felt calmer."
	const therapistAdds = "[Seen before session] "
	if err := patient.Edit(ctx, doc, func(t *crdt.Text) error { return t.Insert(t.Len(), patientAdds) }); err != nil {
		t.Fatal(err)
	}
	if err := therapist.Edit(ctx, doc, func(t *crdt.Text) error { return t.Insert(0, therapistAdds) }); err != nil {
		t.Fatal(err)
	}
	if st := patient.Status(doc); st.Pending == 0 || st.Synced {
		t.Errorf("patient status while the relay is down = %+v, want pending and not synced", st)
	}

	// 3. The relay comes back on the same folder; both converge.
	r.start()
	want := therapistAdds + first + patientAdds
	waitFor(t, "both clients hold both edits", func() bool {
		return text(t, patient, doc) == want && text(t, therapist, doc) == want
	})
	waitFor(t, "both clients report synced", func() bool {
		return patient.Status(doc).Synced && therapist.Status(doc).Synced
	})
	cancel()
	r.stop()

	// 4. Nothing the relay wrote contains the journal's words.
	for _, secret := range []string{"marker-7f3a", "marker-91bc", "Seen before session"} {
		assertNotInFiles(t, r.dir, secret)
		if bytes.Contains(relayLogs.Bytes(), []byte(secret)) {
			t.Errorf("relay logs contain %q", secret)
		}
		if bytes.Contains(clientLogs.Bytes(), []byte(secret)) {
			t.Errorf("client logs contain %q", secret)
		}
	}
}

// assertNotInFiles fails if any file under dir contains secret.
func assertNotInFiles(t *testing.T, dir, secret string) {
	t.Helper()
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s contains %q", path, secret)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatalf("no files under %s: the scan checked nothing", dir)
	}
	if strings.TrimSpace(secret) == "" {
		t.Fatal("empty secret")
	}
}

// TestManyDeliveriesSurviveReopen sends more updates than a document keeps
// as separate records, so the receiver compacts while storing deliveries,
// and checks that a reopened receiver still holds every word.
func TestManyDeliveriesSurviveReopen(t *testing.T) {
	ctx := context.Background()
	logs := &lockedBuffer{}
	r := startRelay(t, logs)
	writer := newClient(t, r.url(), logs)

	readerDir := t.TempDir()
	readerID, err := client.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	openReader := func() *client.Client {
		c, err := client.Open(ctx, client.Config{Store: openStore(t, readerDir), Identity: readerID, Dialer: wstransport.Dialer{}, RelayURL: r.url()})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	doc, err := writer.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The reader has not run yet, so it is added by its device key.
	if err := writer.AddMemberByKey(ctx, doc, readerID.Public(), membership.RoleWriter); err != nil {
		t.Fatal(err)
	}
	want := ""
	for i := range 700 {
		word := fmt.Sprintf("w%d ", i)
		want += word
		if err := writer.Edit(ctx, doc, func(t *crdt.Text) error { return t.Insert(t.Len(), word) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := writer.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}

	reader := openReader()
	if err := reader.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := text(t, reader, doc); got != want {
		t.Fatalf("reader text has %d bytes, want %d", len(got), len(want))
	}
	if err := reader.Close(); err != nil {
		t.Fatal(err)
	}
	reader = openReader()
	defer reader.Close()
	if got := text(t, reader, doc); got != want {
		t.Fatalf("reopened reader text has %d bytes, want %d", len(got), len(want))
	}
}

// TestRelayWithoutDocumentSkipsIt points a client at a second relay that
// has never seen its first document: the sync reports that document and
// still registers and pushes the others.
func TestRelayWithoutDocumentSkipsIt(t *testing.T) {
	ctx := context.Background()
	logs := &lockedBuffer{}
	first, second := startRelay(t, logs), startRelay(t, logs)
	store := t.TempDir()
	id, err := client.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	open := func(relayURL string) *client.Client {
		c, err := client.Open(ctx, client.Config{Store: openStore(t, store), Identity: id, Dialer: wstransport.Dialer{}, RelayURL: relayURL})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	c := open(first.url())
	old, err := c.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	c = open(second.url())
	defer c.Close()
	fresh, err := c.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetText(ctx, fresh, "new relay, new page"); err != nil {
		t.Fatal(err)
	}
	err = c.SyncOnce(ctx)
	if err == nil || !strings.Contains(err.Error(), "has no record of document "+old.String()) {
		t.Fatalf("SyncOnce against a relay without the document: err = %v, want it to name %s", err, old)
	}
	if st := c.Status(fresh); st.Pending != 0 {
		t.Errorf("the other document still has %d pending after sync, want 0", st.Pending)
	}
}
