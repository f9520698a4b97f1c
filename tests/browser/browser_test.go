//go:build !js

// Package browser tests the web app in Debian's headless Chromium: the
// WebAssembly client with its IndexedDB store and browser WebSocket,
// against a real relay and a native client, all on 127.0.0.1.
package browser

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/vmihailenco/msgpack/v5"

	"interlude/client"
	"interlude/client/badgerstore"
	"interlude/client/wstransport"
	"interlude/relay"
	"interlude/sync/envelope"
	"interlude/wasm/web"
)

// chromiumPath is where Debian's chromium package installs the browser.
const chromiumPath = "/usr/bin/chromium"

// waitLimit bounds each wait for the page or the relay, so a broken build
// fails the test instead of hanging it. It is a guard, not a measure of
// speed: a passing run takes a small part of it.
const waitLimit = 90 * time.Second

// requireChromium skips the test when Chromium is missing, except in CI,
// where a missing browser is a broken setup.
func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found: install Debian's chromium (apt-get install chromium) in CI", chromiumPath)
	}
	t.Skip("install Debian's chromium (apt-get install chromium) to run the browser test")
}

// buildApp builds the web app into a temporary folder.
func buildApp(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := web.Build(ctx, dir); err != nil {
		t.Fatalf("build the web app: %v", err)
	}
	return dir
}

// serveDir serves dir over HTTP on 127.0.0.1 until the test ends.
func serveDir(t *testing.T, dir string) string {
	t.Helper()
	files := http.FileServerFS(os.DirFS(dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".wasm") {
			w.Header().Set("Content-Type", "application/wasm")
		}
		w.Header().Set("Cache-Control", "no-store")
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// newBrowser starts headless Chromium with a fresh profile, at a phone's
// width, and returns a tab's context.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		// Without these, Chromium tries to reach Google's hosts, which
		// this machine's closed network refuses.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(412, 915),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	// An empty Do starts the browser and opens the tab.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	return ctx
}

// pageErrors collects uncaught exceptions and console.error calls of the
// page, which the app uses only for failures, and keeps the whole console
// to show when a test fails. The Go program prints its logs and panics
// through console.log.
type pageErrors struct {
	mu            sync.Mutex
	exceptions    []string
	consoleErrors []string
	console       []string
}

func (pe *pageErrors) log(line string) {
	pe.mu.Lock()
	defer pe.mu.Unlock()
	pe.console = append(pe.console, line)
}

func watchPageErrors(t *testing.T, ctx context.Context) *pageErrors {
	t.Helper()
	pe := &pageErrors{}
	err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				msg += " " + d.Exception.Description
			}
			pe.mu.Lock()
			pe.exceptions = append(pe.exceptions, msg)
			pe.mu.Unlock()
		case *runtime.EventConsoleAPICalled:
			var parts []string
			for _, a := range ev.Args {
				if a.Description != "" {
					parts = append(parts, a.Description)
				} else {
					parts = append(parts, string(a.Value))
				}
			}
			line := strings.Join(parts, " ")
			pe.log(fmt.Sprintf("console.%s: %s", ev.Type, line))
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				pe.mu.Lock()
				pe.consoleErrors = append(pe.consoleErrors, line)
				pe.mu.Unlock()
			}
		}
	})
	if err != nil {
		t.Fatalf("listen to the page's events: %v", err)
	}
	return pe
}

// check fails the test for every uncaught exception and console.error
// call so far.
func (pe *pageErrors) check(t *testing.T) {
	t.Helper()
	pe.report(t, true)
}

// checkUncaught fails the test for every uncaught exception so far, for a
// test that makes the app report failures with console.error on purpose.
func (pe *pageErrors) checkUncaught(t *testing.T) {
	t.Helper()
	pe.report(t, false)
}

func (pe *pageErrors) report(t *testing.T, consoleErrors bool) {
	t.Helper()
	pe.mu.Lock()
	defer pe.mu.Unlock()
	for _, msg := range pe.exceptions {
		t.Errorf("page threw an uncaught exception: %s", msg)
	}
	if consoleErrors {
		for _, msg := range pe.consoleErrors {
			t.Errorf("page called console.error: %s", msg)
		}
	}
	if t.Failed() {
		t.Logf("the page's console:\n%s", strings.Join(pe.console, "\n"))
	}
}

// lockedBuffer is a bytes.Buffer that the relay's logger may write from
// several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
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

// reservePort returns a loopback address that was free a moment ago, for a
// relay that starts later at a URL the page already uses.
func reservePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on 127.0.0.1:0: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startRelay runs a relay on addr with its data in dataDir and its logs in
// logs, until the returned function stops it.
func startRelay(t *testing.T, addr, dataDir string, logs *lockedBuffer) (stop func()) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := relay.Open(relay.Config{DataDir: dataDir, Logger: logger})
	if err != nil {
		t.Fatalf("relay.Open(%s): %v", dataDir, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		srv.Shutdown(context.Background())
		t.Fatalf("listen on %s again for the relay: %v", addr, err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	var once sync.Once
	stop = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				t.Errorf("relay Shutdown: %v", err)
			}
			if err := <-served; !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("relay Serve returned %v after Shutdown, want http.ErrServerClosed", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// do runs steps in the tab within waitLimit, and ends the test when one
// fails.
func do(t *testing.T, ctx context.Context, what string, errs *pageErrors, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, waitLimit)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		errs.check(t)
		t.Fatalf("%s: %v", what, err)
	}
}

// get runs one action that returns a value, within waitLimit.
func get[T any](t *testing.T, ctx context.Context, what string, errs *pageErrors, action chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, waitLimit)
	defer cancel()
	v, err := chromedp.Run(ctx, action)
	if err != nil {
		errs.check(t)
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

func randomMarker(t *testing.T) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "marker-" + hex.EncodeToString(b)
}

// TestJournalSyncsAfterOffline writes a journal entry while the relay is
// down, reloads the page, shares the entry and starts the relay. A native
// client must then read exactly that text, and the relay's files and logs
// must contain neither the text nor the document key.
func TestJournalSyncsAfterOffline(t *testing.T) {
	requireChromium(t)
	app := buildApp(t)
	pageURL := serveDir(t, app)
	relayAddr := reservePort(t)
	relayURL := "ws://" + relayAddr + "/v1/sync"
	ctx := newBrowser(t)
	errs := watchPageErrors(t, ctx)

	// The therapist's device: a native client with its own Badger store.
	therapistStore, err := badgerstore.Open(t.TempDir())
	if err != nil {
		t.Fatalf("badgerstore.Open: %v", err)
	}
	therapistID, err := client.NewIdentity()
	if err != nil {
		t.Fatalf("NewIdentity: %v", err)
	}
	therapist, err := client.Open(context.Background(), client.Config{
		Store: therapistStore, Identity: therapistID, Dialer: wstransport.Dialer{}, RelayURL: relayURL,
	})
	if err != nil {
		t.Fatalf("client.Open: %v", err)
	}
	t.Cleanup(func() { therapist.Close() })

	marker := randomMarker(t)
	entry := "Slept badly, then a long walk helped.\nCafé at noon — " + marker + " — calmer tonight."

	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }

	// 1. Load the page with the relay down and write the entry.
	page := pageURL + "/?relay=" + relayURL
	do(t, ctx, "load the page and write while the relay is down", errs,
		chromedp.Navigate(page),
		skipPassphrase(),
		chromedp.WaitEnabled(css("#entry")),
		chromedp.SendKeys(css("#entry"), entry),
		chromedp.WaitVisible(css(`#save-state[data-state="waiting"]`)),
	)
	saveText := get(t, ctx, "read the save state", errs, chromedp.Text(css("#save-state")))
	if !strings.HasPrefix(saveText, "Waiting to sync") {
		t.Errorf("save state while the relay is down = %q, want it to start with %q", saveText, "Waiting to sync")
	}
	connText := get(t, ctx, "read the connection state", errs, chromedp.Text(css("#connection")))
	if strings.HasPrefix(connText, "Connected") {
		t.Errorf("connection line while the relay is down = %q, want the offline text", connText)
	}

	// 2. Reload: the entry comes back from IndexedDB.
	do(t, ctx, "reload the page with the relay down", errs,
		chromedp.Reload(),
		chromedp.WaitEnabled(css("#entry")),
	)
	reloaded := get(t, ctx, "read the textarea after reload", errs, chromedp.Value(css("#entry")))
	if reloaded != entry {
		t.Fatalf("textarea after reload = %q, want the entry written before it, %q", reloaded, entry)
	}

	// 3. Share with the therapist while still offline.
	fingerprint := therapistID.Public().Fingerprint()
	do(t, ctx, "share with the therapist's public id", errs,
		chromedp.SendKeys(css("#share-id"), therapistID.PublicID()),
		chromedp.Click(css("#share-button")),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.getElementById("share-state").textContent.includes(%q)`, fingerprint), chromedp.WithPollingTimeout(0)),
	)
	shareText := get(t, ctx, "read the share state", errs, chromedp.Text(css("#share-state")))
	if !strings.HasPrefix(shareText, "Shared") {
		t.Errorf("share state = %q, want it to start with %q", shareText, "Shared")
	}

	// 4. Start the relay at the address the page has been retrying.
	relayData := t.TempDir()
	var relayLogs lockedBuffer
	stopRelay := startRelay(t, relayAddr, relayData, &relayLogs)

	do(t, ctx, "wait for the page to sync", errs,
		chromedp.WaitVisible(css(`#save-state[data-state="synced"]`)),
		chromedp.WaitVisible(css(`#connection[data-state="connected"]`)),
	)
	syncedText := get(t, ctx, "read the save state", errs, chromedp.Text(css("#save-state")))
	if syncedText != "Synced" {
		t.Errorf("save state after the relay started = %q, want %q", syncedText, "Synced")
	}
	docID := get(t, ctx, "read the journal's id", errs, chromedp.Evaluate[string](`interlude.journal()`, chromedp.EvalAwaitPromise))
	reports := get(t, ctx, "read the problem reports", errs, chromedp.Evaluate[[]any](`interlude.journal().then((id) => interlude.reports(id))`, chromedp.EvalAwaitPromise))
	if len(reports) != 0 {
		t.Errorf("an honest relay produced problem reports: %v", reports)
	}
	if hidden := get(t, ctx, "read whether the problem notice is hidden", errs, chromedp.Evaluate[bool](`document.getElementById("problems").hidden`)); !hidden {
		t.Error("the problem notice is shown although there are no reports")
	}
	// Quality 100 makes a PNG, which image viewers and the file tool show.
	shot := get(t, ctx, "take a screenshot", errs, chromedp.FullScreenshot(100))
	saveScreenshot(t, "journal-synced.png", shot)

	// 5. The therapist's client accepts the shared journal and reads it.
	doc, err := envelope.ParseDocID(docID)
	if err != nil {
		t.Fatalf("journal id from the page: %v", err)
	}
	syncUntilHolds(t, therapist, "therapist", doc)
	got, err := therapist.Text(doc)
	if err != nil {
		t.Fatalf("therapist Text(%s): %v (documents on the therapist's device: %v)", doc, err, therapist.Documents())
	}
	if got != entry {
		t.Errorf("therapist reads %q, want the entry written in the browser, %q", got, entry)
	}
	docKey := documentKey(t, therapistStore, doc)

	// 6. Neither the relay's files nor its logs hold the entry or the key.
	stopRelay()
	logs := relayLogs.Bytes()
	if len(logs) == 0 {
		t.Errorf("the relay wrote no logs; the check below would prove nothing")
	}
	secrets := map[string][]byte{
		"the entry's marker":            []byte(marker),
		"the document key":              docKey,
		"the document key in hex":       []byte(hex.EncodeToString(docKey)),
		"the document key in base64":    []byte(base64.StdEncoding.EncodeToString(docKey)),
		"the document key in base64url": []byte(base64.RawURLEncoding.EncodeToString(docKey)),
	}
	for name, secret := range secrets {
		if bytes.Contains(logs, secret) {
			t.Errorf("relay logs contain %s", name)
		}
	}
	files := 0
	err = filepath.WalkDir(relayData, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for name, secret := range secrets {
			if bytes.Contains(b, secret) {
				t.Errorf("relay data file %s contains %s", filepath.Base(path), name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read the relay's data folder: %v", err)
	}
	if files == 0 {
		t.Errorf("the relay's data folder %s holds no files; the check above would prove nothing", relayData)
	}
	errs.check(t)
}

// documentKey reads doc's key from the native client's store, to search
// the relay's files for it.
//
// NOTE: this depends on the client's storage layout: the record at
// "d/<doc id>/meta" is a msgpack array whose first element is the key.
func documentKey(t *testing.T, s client.Store, doc envelope.DocID) []byte {
	t.Helper()
	key := append(append([]byte("d/"), doc[:]...), "/meta"...)
	b, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("read the therapist's record of document %s: %v", doc, err)
	}
	var fields []any
	if err := msgpack.Unmarshal(b, &fields); err != nil {
		t.Fatalf("decode the therapist's record of document %s: %v", doc, err)
	}
	if len(fields) == 0 {
		t.Fatalf("the therapist's record of document %s is empty", doc)
	}
	docKey, ok := fields[0].([]byte)
	if !ok || len(docKey) != 32 {
		t.Fatalf("the therapist's record of document %s starts with %T, want a 32-byte key", doc, fields[0])
	}
	return docKey
}

// saveScreenshot writes the screenshot into the test's temporary folder
// and, when INTERLUDE_SCREENSHOT_DIR is set, into that folder too.
func saveScreenshot(t *testing.T, name string, img []byte) {
	t.Helper()
	if len(img) == 0 {
		t.Errorf("screenshot %s is empty", name)
		return
	}
	if err := os.WriteFile(filepath.Join(t.TempDir(), name), img, 0o644); err != nil {
		t.Errorf("write screenshot: %v", err)
	}
	dir := os.Getenv("INTERLUDE_SCREENSHOT_DIR")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Errorf("create INTERLUDE_SCREENSHOT_DIR %s: %v", dir, err)
		return
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Errorf("write screenshot to %s: %v", path, err)
		return
	}
	t.Logf("screenshot written to %s", path)
}

// TestPageServedByRelay loads the app from the relay itself, with no relay
// parameter, so the page must derive the WebSocket URL from its own
// address.
func TestPageServedByRelay(t *testing.T) {
	requireChromium(t)
	app := buildApp(t)
	logger := slog.New(slog.NewTextHandler(&lockedBuffer{}, nil))
	srv, err := relay.Open(relay.Config{DataDir: t.TempDir(), Logger: logger, Web: os.DirFS(app)})
	if err != nil {
		t.Fatalf("relay.Open: %v", err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		srv.Shutdown(context.Background())
	})
	ctx := newBrowser(t)
	errs := watchPageErrors(t, ctx)

	do(t, ctx, "load the page from the relay and write", errs,
		chromedp.Navigate(ts.URL+"/"),
		skipPassphrase(),
		chromedp.WaitEnabled(chromedp.CSS("#entry")),
		chromedp.WaitVisible(chromedp.CSS(`#connection[data-state="connected"]`)),
		chromedp.SendKeys(chromedp.CSS("#entry"), "a first line"),
		chromedp.WaitVisible(chromedp.CSS(`#save-state[data-state="synced"]`)),
	)
	status := get(t, ctx, "read the journal's status", errs, chromedp.Evaluate[map[string]any](`interlude.journal().then((id) => interlude.status(id))`, chromedp.EvalAwaitPromise))
	if status["state"] != "synced" || status["connected"] != true || status["pending"] != float64(0) {
		t.Errorf("status after writing = %v, want synced, connected and nothing pending", status)
	}
	errs.check(t)
}
