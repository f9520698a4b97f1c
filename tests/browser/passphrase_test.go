//go:build !js

package browser

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"interlude/client/securestore"
	"interlude/relay"
)

// skipPassphrase continues past the setup screen of a new device without
// a passphrase, so the store stays unencrypted.
func skipPassphrase() chromedp.Action[chromedp.Void] {
	return chromedp.Click(chromedp.CSS("#setup-skip"))
}

// setPassphrase chooses passphrase on the setup screen of a new device and
// waits until the journal can be edited.
func setPassphrase(passphrase string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.WaitVisible(chromedp.CSS("#setup-passphrase")),
		chromedp.SendKeys(chromedp.CSS("#setup-passphrase"), passphrase),
		chromedp.SendKeys(chromedp.CSS("#setup-confirm"), passphrase),
		chromedp.Click(chromedp.CSS("#setup-protect")),
		chromedp.WaitEnabled(chromedp.CSS("#entry")),
	)
}

// submitPassphrase types passphrase on the lock screen and submits it.
func submitPassphrase(passphrase string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.WaitVisible(chromedp.CSS("#lock-passphrase")),
		chromedp.WaitEnabled(chromedp.CSS("#lock-button")),
		chromedp.SendKeys(chromedp.CSS("#lock-passphrase"), passphrase),
		chromedp.Click(chromedp.CSS("#lock-button")),
	)
}

// serveAppFromRelay runs a relay on 127.0.0.1 that also serves the web app
// in dir, and returns its URL, its logs and its data folder.
func serveAppFromRelay(t *testing.T, dir string) (string, *lockedBuffer, string) {
	t.Helper()
	logs := &lockedBuffer{}
	dataDir := t.TempDir()
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := relay.Open(relay.Config{DataDir: dataDir, Logger: logger, Web: os.DirFS(dir)})
	if err != nil {
		t.Fatalf("relay.Open: %v", err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		srv.Shutdown(context.Background())
	})
	return ts.URL, logs, dataDir
}

// rawEntry is one record of the app's IndexedDB object store, read
// without the client.
type rawEntry struct {
	Key   []byte
	Value []byte
}

// readRawIndexedDB reads every record of the app's database ("interlude",
// object store "kv") through a second connection from the page, the way
// anyone with the browser profile could.
func readRawIndexedDB(t *testing.T, ctx context.Context, errs *pageErrors) []rawEntry {
	t.Helper()
	const script = `new Promise((resolve, reject) => {
		const hex = (b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, "0")).join("");
		const req = indexedDB.open("interlude");
		req.onerror = () => reject(req.error);
		req.onsuccess = () => {
			const db = req.result;
			const tx = db.transaction("kv", "readonly");
			const keys = tx.objectStore("kv").getAllKeys();
			const values = tx.objectStore("kv").getAll();
			tx.onerror = () => reject(tx.error);
			tx.oncomplete = () => {
				db.close();
				resolve(keys.result.map((k, i) => [hex(k), hex(values.result[i])]));
			};
		};
	})`
	pairs := get(t, ctx, "read the IndexedDB records", errs, chromedp.Evaluate[[][2]string](script, chromedp.EvalAwaitPromise))
	entries := make([]rawEntry, 0, len(pairs))
	for _, p := range pairs {
		key, err := hex.DecodeString(p[0])
		if err != nil {
			t.Fatalf("decode IndexedDB key %q: %v", p[0], err)
		}
		value, err := hex.DecodeString(p[1])
		if err != nil {
			t.Fatalf("decode IndexedDB value of key %q: %v", key, err)
		}
		entries = append(entries, rawEntry{Key: key, Value: value})
	}
	return entries
}

// rawKeys returns the keys of entries as strings.
func rawKeys(entries []rawEntry) []string {
	keys := make([]string, 0, len(entries))
	for _, e := range entries {
		keys = append(keys, string(e.Key))
	}
	return keys
}

// findInRaw returns the keys of the records whose key or value contains
// secret.
func findInRaw(entries []rawEntry, secret []byte) []string {
	var found []string
	for _, e := range entries {
		if bytes.Contains(e.Key, secret) || bytes.Contains(e.Value, secret) {
			found = append(found, fmt.Sprintf("%q", e.Key))
		}
	}
	return found
}

// TestPassphraseProtectsJournal sets a passphrase on a new device and
// writes an entry. IndexedDB must not hold the entry in clear. After a
// reload the page must show the lock screen and no text, reject a missing
// and a wrong passphrase without changing the stored records, and show the
// entry for the right passphrase. The passphrase must reach no log, no
// relay file and no web storage. A device without a passphrase, on
// another origin, shows that the same scan finds an entry stored in clear.
func TestPassphraseProtectsJournal(t *testing.T) {
	requireChromium(t)
	app := buildApp(t)
	site, relayLogs, relayData := serveAppFromRelay(t, app)
	ctx := newBrowser(t)
	errs := watchPageErrors(t, ctx)
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }

	passphrase := "walk by the river " + randomMarker(t)
	marker := randomMarker(t)
	entry := "Slept badly; the breathing exercise helped. " + marker

	// 1. A new device: choose a passphrase, write, and sync.
	do(t, ctx, "protect a new device and write", errs,
		chromedp.Navigate(site+"/"),
		setPassphrase(passphrase),
		chromedp.WaitVisible(css("#lock-now")),
		chromedp.SendKeys(css("#entry"), entry),
		chromedp.WaitVisible(css(`#save-state[data-state="synced"]`)),
	)

	// 2. IndexedDB holds the client's keys in clear but no value in clear.
	records := readRawIndexedDB(t, ctx, errs)
	keys := rawKeys(records)
	for _, want := range []string{"identity", "web/journal", securestore.ReservedPrefix + "header"} {
		if !slices.Contains(keys, want) {
			t.Errorf("IndexedDB has no record %q; keys: %q", want, keys)
		}
	}
	if found := findInRaw(records, []byte(marker)); len(found) > 0 {
		t.Errorf("IndexedDB records %v contain the journal entry in clear", found)
	}
	if found := findInRaw(records, []byte(passphrase)); len(found) > 0 {
		t.Errorf("IndexedDB records %v contain the passphrase", found)
	}

	// 3. Reload: the lock screen, and no text anywhere on the page.
	do(t, ctx, "reload the protected page", errs,
		chromedp.Reload(),
		chromedp.WaitVisible(css("#lock-passphrase")),
	)
	pageText := get(t, ctx, "read the locked page's text", errs,
		chromedp.Evaluate[string](`document.body.innerText + "\n" + document.getElementById("entry").value`))
	if strings.Contains(pageText, marker) {
		t.Errorf("the locked page shows the journal entry: %q", pageText)
	}
	if hidden := get(t, ctx, "read whether the journal is hidden", errs, chromedp.Evaluate[bool](`document.getElementById("workspace").hidden`)); !hidden {
		t.Error("the journal's section is shown on the lock screen")
	}
	before := readRawIndexedDB(t, ctx, errs)

	// 4. start without a passphrase fails with LockedError.
	noPassphrase := get(t, ctx, "call start without a passphrase", errs, chromedp.Evaluate[string](
		`interlude.start({relay: ""}).then(() => "resolved", (err) => err.name + ": " + err.message)`, chromedp.EvalAwaitPromise))
	if !strings.HasPrefix(noPassphrase, "LockedError: ") || !strings.Contains(noPassphrase, "enter the passphrase") {
		t.Errorf("start without a passphrase on an encrypted device = %q, want a LockedError asking for the passphrase", noPassphrase)
	}

	// 5. An empty and a wrong passphrase show their messages.
	do(t, ctx, "submit an empty passphrase", errs,
		chromedp.Click(css("#lock-button")),
		chromedp.Poll[chromedp.Void](`document.getElementById("lock-state").textContent.includes("enter the passphrase")`, chromedp.WithPollingTimeout(0)),
	)
	do(t, ctx, "submit a wrong passphrase", errs,
		submitPassphrase("not "+passphrase),
		// The second message ends the wait early when unlock fails for
		// another reason.
		chromedp.Poll[chromedp.Void](`["Wrong passphrase", "Could not unlock"].some((s) => document.getElementById("lock-state").textContent.includes(s))`, chromedp.WithPollingTimeout(0)),
	)
	wrongState := get(t, ctx, "read the lock screen's message", errs, chromedp.Text(css("#lock-state")))
	if !strings.Contains(wrongState, "Wrong passphrase") {
		t.Errorf("lock screen after a wrong passphrase says %q, want it to say %q", wrongState, "Wrong passphrase")
	}
	if value := get(t, ctx, "read the textarea", errs, chromedp.Value(css("#entry"))); value != "" {
		t.Errorf("textarea after a wrong passphrase = %q, want it empty", value)
	}
	after := readRawIndexedDB(t, ctx, errs)
	if !slices.EqualFunc(before, after, func(a, b rawEntry) bool { return bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Value, b.Value) }) {
		t.Errorf("IndexedDB changed after start without and with a wrong passphrase: %d records before, %d after", len(before), len(after))
	}

	// 6. The right passphrase shows the entry.
	do(t, ctx, "unlock with the right passphrase", errs,
		submitPassphrase(passphrase),
		chromedp.WaitEnabled(css("#entry")),
	)
	if value := get(t, ctx, "read the textarea after unlock", errs, chromedp.Value(css("#entry"))); value != entry {
		t.Errorf("textarea after unlock = %q, want the entry written before the reload, %q", value, entry)
	}

	// 7. The passphrase is in no web storage, field or log.
	storage := get(t, ctx, "read the page's web storage and fields", errs, chromedp.Evaluate[string](
		`JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + Array.from(document.querySelectorAll("input"), (i) => i.value).join("\n") + location.href`))
	if strings.Contains(storage, passphrase) {
		t.Error("localStorage, sessionStorage, an input field or the URL holds the passphrase")
	}
	errs.mu.Lock()
	console := strings.Join(errs.console, "\n")
	errs.mu.Unlock()
	if strings.Contains(console, passphrase) {
		t.Error("the page's console output contains the passphrase")
	}
	logs := relayLogs.Bytes()
	if len(logs) == 0 {
		t.Error("the relay wrote no logs; the check below would prove nothing")
	}
	for name, secret := range map[string]string{"the passphrase": passphrase, "the entry": marker} {
		if bytes.Contains(logs, []byte(secret)) {
			t.Errorf("relay logs contain %s", name)
		}
	}
	err := filepath.WalkDir(relayData, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(passphrase)) {
			t.Errorf("relay data file %s contains the passphrase", filepath.Base(path))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read the relay's data folder: %v", err)
	}
	errs.check(t)

	// 8. The control: the same scan finds an entry that a device without a
	// passphrase stores. The other origin has its own IndexedDB.
	plainSite := serveDir(t, app) + "/?relay=ws://" + reservePort(t) + "/v1/sync"
	plainMarker := randomMarker(t)
	do(t, ctx, "write on a device without a passphrase", errs,
		chromedp.Navigate(plainSite),
		skipPassphrase(),
		chromedp.WaitEnabled(css("#entry")),
		chromedp.SendKeys(css("#entry"), "unprotected "+plainMarker),
		chromedp.WaitVisible(css(`#save-state[data-state="waiting"]`)),
	)
	if found := findInRaw(readRawIndexedDB(t, ctx, errs), []byte(plainMarker)); len(found) == 0 {
		t.Error("the scan did not find an entry stored without a passphrase, so it cannot show that an encrypted entry is hidden")
	}
	errs.check(t)
}

// TestIdleLockKeepsEdits lets a protected page lock after one idle second,
// then checks the lock screen, that unlock opens the page and that it
// locks again when idle. With the default timeout it then locks the
// client while an edit waits for its save: the edit must come back after
// unlock and be saved.
func TestIdleLockKeepsEdits(t *testing.T) {
	requireChromium(t)
	app := buildApp(t)
	site, _, _ := serveAppFromRelay(t, app)
	ctx := newBrowser(t)
	errs := watchPageErrors(t, ctx)
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }

	passphrase := "a quiet morning " + randomMarker(t)
	first := "written before the lock " + randomMarker(t)

	// 1. Count locks from before the first one can happen.
	do(t, ctx, "load the page with a one-second idle lock", errs,
		chromedp.Navigate(site+"/?lockAfterSeconds=1"),
		chromedp.WaitVisible(css("#setup-passphrase")),
		chromedp.Evaluate[chromedp.Void](`globalThis.testLocks = 0; interlude.onLock(() => { globalThis.testLocks++; })`),
		setPassphrase(passphrase),
		chromedp.SendKeys(css("#entry"), first),
	)

	// 2. Idle: the lock screen and an empty, disabled editor.
	do(t, ctx, "wait for the idle lock", errs, chromedp.WaitVisible(css("#lock-passphrase")))
	state := get(t, ctx, "read the locked page", errs, chromedp.Evaluate[map[string]any](fmt.Sprintf(`({
		entry: document.getElementById("entry").value,
		disabled: document.getElementById("entry").disabled,
		entryShown: document.body.innerText.includes(%q),
		locked: interlude.locked(),
	})`, first)))
	if state["entry"] != "" || state["disabled"] != true {
		t.Errorf("editor while locked: value %q, disabled %v; want it empty and disabled", state["entry"], state["disabled"])
	}
	if state["entryShown"] != false {
		t.Error("the locked page shows the journal entry")
	}
	if state["locked"] != true {
		t.Errorf("interlude.locked() = %v while the lock screen shows, want true", state["locked"])
	}
	if noticeHidden := get(t, ctx, "read whether the held-edit notice is hidden", errs, chromedp.Evaluate[bool](`document.getElementById("held-notice").hidden`)); !noticeHidden {
		t.Error("the lock screen says an edit is held, but the entry was saved before the idle lock")
	}

	// 3. Unlock, and the page locks again once idle.
	do(t, ctx, "unlock and wait for the next idle lock", errs,
		submitPassphrase(passphrase),
		chromedp.Poll[chromedp.Void](`globalThis.testLocks >= 2`, chromedp.WithPollingTimeout(0)),
	)

	// 4. With the default timeout, the entry saved before the idle lock is
	// there after unlock.
	do(t, ctx, "load the page with the default idle lock and unlock", errs,
		chromedp.Navigate(site+"/"),
		submitPassphrase(passphrase),
		chromedp.WaitEnabled(css("#entry")),
	)
	if value := get(t, ctx, "read the textarea after unlock", errs, chromedp.Value(css("#entry"))); value != first {
		t.Fatalf("textarea after unlock = %q, want the entry saved before the idle lock, %q", value, first)
	}

	// 5. Lock while an edit waits for its save: setText then fails with
	// LockedError, and the page holds the edit until unlock. The API
	// returns no text while locked.
	journalID := get(t, ctx, "read the journal's id", errs, chromedp.Evaluate[string](`interlude.journal()`, chromedp.EvalAwaitPromise))
	both := first + " and one line typed as it locked"
	do(t, ctx, "edit and lock before the save runs", errs,
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
			const entry = document.getElementById("entry");
			entry.value = %q;
			entry.dispatchEvent(new Event("input"));
			interlude.lock();
		})()`, both)),
		chromedp.WaitVisible(css("#lock-passphrase")),
	)
	if noticeHidden := get(t, ctx, "read whether the held-edit notice is hidden", errs, chromedp.Evaluate[bool](`document.getElementById("held-notice").hidden`)); noticeHidden {
		t.Error("the lock screen does not say that an unsaved edit is held")
	}
	if value := get(t, ctx, "read the textarea while locked", errs, chromedp.Value(css("#entry"))); value != "" {
		t.Errorf("textarea while locked = %q, want it empty", value)
	}
	if text := get(t, ctx, "read the journal through the API while locked", errs, chromedp.Evaluate[any](fmt.Sprintf(`interlude.text(%q)`, journalID))); text != nil {
		t.Errorf("interlude.text(journal) = %v while locked, want null", text)
	}
	saveFailed := get(t, ctx, "call setText while locked", errs, chromedp.Evaluate[string](fmt.Sprintf(
		`interlude.setText(%q, "x").then(() => "resolved", (err) => err.name)`, journalID), chromedp.EvalAwaitPromise))
	if saveFailed != "LockedError" {
		t.Errorf("setText while locked = %q, want it rejected with LockedError", saveFailed)
	}
	do(t, ctx, "unlock and save the held edit", errs,
		submitPassphrase(passphrase),
		chromedp.WaitEnabled(css("#entry")),
		chromedp.WaitVisible(css(`#save-state[data-state="synced"]`)),
	)
	if value := get(t, ctx, "read the textarea after unlock", errs, chromedp.Value(css("#entry"))); value != both {
		t.Errorf("textarea after unlock = %q, want the held edit, %q", value, both)
	}

	// 6. The held edit was saved on this device.
	do(t, ctx, "reload and unlock", errs,
		chromedp.Reload(),
		submitPassphrase(passphrase),
		chromedp.WaitEnabled(css("#entry")),
	)
	if value := get(t, ctx, "read the textarea after reload", errs, chromedp.Value(css("#entry"))); value != both {
		t.Errorf("textarea after reload = %q, want the held edit saved before it, %q", value, both)
	}
	errs.check(t)
}
