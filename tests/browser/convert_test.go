//go:build !js

package browser

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"interlude/client/securestore"
	"interlude/sync/envelope"
)

// readAllRawIndexedDB reads every record of every IndexedDB database of
// the page's origin, so a plain copy left under another name is found too.
// It returns the records by database name.
func readAllRawIndexedDB(t *testing.T, ctx context.Context, errs *pageErrors) map[string][]rawEntry {
	t.Helper()
	const script = `(async () => {
		const hex = (b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, "0")).join("");
		const out = {};
		for (const info of await indexedDB.databases()) {
			out[info.name] = await new Promise((resolve, reject) => {
				const req = indexedDB.open(info.name);
				req.onerror = () => reject(req.error);
				req.onsuccess = () => {
					const db = req.result;
					if (!db.objectStoreNames.contains("kv")) {
						db.close();
						resolve([]);
						return;
					}
					const tx = db.transaction("kv", "readonly");
					const keys = tx.objectStore("kv").getAllKeys();
					const values = tx.objectStore("kv").getAll();
					tx.onerror = () => reject(tx.error);
					tx.oncomplete = () => {
						db.close();
						resolve(keys.result.map((k, i) => [hex(k), hex(values.result[i])]));
					};
				};
			});
		}
		return out;
	})()`
	byName := get(t, ctx, "read every IndexedDB database", errs, chromedp.Evaluate[map[string][][2]string](script, chromedp.EvalAwaitPromise))
	out := make(map[string][]rawEntry, len(byName))
	for name, pairs := range byName {
		for _, p := range pairs {
			key, err := hex.DecodeString(p[0])
			if err != nil {
				t.Fatalf("decode key %q of database %q: %v", p[0], name, err)
			}
			value, err := hex.DecodeString(p[1])
			if err != nil {
				t.Fatalf("decode value of key %q in database %q: %v", key, name, err)
			}
			out[name] = append(out[name], rawEntry{Key: key, Value: value})
		}
	}
	return out
}

// TestEncryptDeviceFromPage sets up a device without a passphrase, writes
// a journal entry, and then protects the device from the devices section.
// No IndexedDB database may then hold the entry or the passphrase in
// clear. After a reload the page must be locked, and after unlock the
// entry, the device's identity and its sync with a native client must be
// as before.
func TestEncryptDeviceFromPage(t *testing.T) {
	requireChromium(t)
	app := buildApp(t)
	site, _, _ := serveAppFromRelay(t, app)
	ctx := newBrowser(t)
	errs := watchPageErrors(t, ctx)
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }

	passphrase := "the long way home " + randomMarker(t)
	marker := randomMarker(t)
	entry := "Wrote this before choosing a passphrase. " + marker

	// 1. A device without a passphrase writes and syncs its journal.
	do(t, ctx, "write on a device without a passphrase", errs,
		chromedp.Navigate(site+"/"),
		skipPassphrase(),
		chromedp.WaitEnabled(css("#entry")),
		chromedp.SendKeys(css("#entry"), entry),
		chromedp.WaitVisible(css(`#save-state[data-state="synced"]`)),
	)
	publicID := get(t, ctx, "read the public id", errs, chromedp.Evaluate[string](`interlude.publicID()`))
	if found := findInRaw(readRawIndexedDB(t, ctx, errs), []byte(marker)); len(found) == 0 {
		t.Fatal("the scan did not find the entry stored without a passphrase, so it cannot show that the conversion hides it")
	}

	// 2. The protect form applies the setup screen's rules.
	do(t, ctx, "submit two different passphrases", errs,
		chromedp.WaitVisible(css("#protect-passphrase")),
		chromedp.SendKeys(css("#protect-passphrase"), passphrase),
		chromedp.SendKeys(css("#protect-confirm"), "not "+passphrase),
		chromedp.Click(css("#protect-button")),
		chromedp.Poll[chromedp.Void](`document.getElementById("protect-state").textContent.includes("differ")`, chromedp.WithPollingTimeout(0)),
	)
	if lockShown := get(t, ctx, "read whether the lock button shows", errs, chromedp.Evaluate[bool](`!document.getElementById("lock-now").hidden`)); lockShown {
		t.Error("the lock button shows after the passphrases differed")
	}

	// 3. Protect the device: the lock button shows, the form goes, and
	// the entry stays in the editor.
	do(t, ctx, "protect the device", errs,
		chromedp.SendKeys(css("#protect-passphrase"), passphrase),
		chromedp.SendKeys(css("#protect-confirm"), passphrase),
		chromedp.Click(css("#protect-button")),
		chromedp.WaitVisible(css("#lock-now")),
		chromedp.WaitEnabled(css("#entry")),
	)
	if hidden := get(t, ctx, "read whether the protect form is hidden", errs, chromedp.Evaluate[bool](`document.getElementById("protect").hidden`)); !hidden {
		t.Error("the protect form still shows on an encrypted device")
	}
	if value := get(t, ctx, "read the textarea after protecting", errs, chromedp.Value(css("#entry"))); value != entry {
		t.Errorf("textarea after protecting = %q, want %q", value, entry)
	}
	again := get(t, ctx, "call encryptDevice a second time", errs, chromedp.Evaluate[string](
		`interlude.encryptDevice("another passphrase").then(() => "resolved", (err) => err.name)`, chromedp.EvalAwaitPromise))
	if again != "InvalidStateError" {
		t.Errorf("encryptDevice on an encrypted device = %q, want InvalidStateError", again)
	}

	// 4. No database holds the entry or the passphrase, and the encrypted
	// copy holds the client's records.
	databases := readAllRawIndexedDB(t, ctx, errs)
	names := make([]string, 0, len(databases))
	total := 0
	for name, records := range databases {
		names = append(names, name)
		total += len(records)
		if found := findInRaw(records, []byte(marker)); len(found) > 0 {
			t.Errorf("database %q: records %v contain the journal entry in clear", name, found)
		}
		if found := findInRaw(records, []byte(passphrase)); len(found) > 0 {
			t.Errorf("database %q: records %v contain the passphrase", name, found)
		}
	}
	if total == 0 {
		t.Fatalf("IndexedDB databases %q hold no records, so the scan proves nothing", names)
	}
	keys := strings.Join(rawKeys(databases["interlude-encrypted"]), "\n")
	for _, want := range []string{"identity", "web/journal", securestore.ReservedPrefix + "header"} {
		if !strings.Contains(keys, want) {
			t.Errorf("database %q has no record %q; databases: %q", "interlude-encrypted", want, names)
		}
	}
	if plain := databases["interlude"]; len(plain) > 0 {
		t.Errorf("the unencrypted database still holds %d records after the conversion", len(plain))
	}

	// 5. A reload shows the lock screen; unlock shows the entry and the
	// same device.
	do(t, ctx, "reload and unlock", errs,
		chromedp.Reload(),
		chromedp.WaitVisible(css("#lock-passphrase")),
	)
	if state := get(t, ctx, "read the store state", errs, chromedp.Evaluate[string](`interlude.storeState()`, chromedp.EvalAwaitPromise)); state != "encrypted" {
		t.Errorf("storeState() after the conversion = %q, want %q", state, "encrypted")
	}
	do(t, ctx, "unlock", errs,
		submitPassphrase(passphrase),
		chromedp.WaitEnabled(css("#entry")),
	)
	if value := get(t, ctx, "read the textarea after unlock", errs, chromedp.Value(css("#entry"))); value != entry {
		t.Errorf("textarea after unlock = %q, want %q", value, entry)
	}
	if after := get(t, ctx, "read the public id after unlock", errs, chromedp.Evaluate[string](`interlude.publicID()`)); after != publicID {
		t.Errorf("public id after the conversion = %q, want the device's id from before, %q", after, publicID)
	}

	// 6. The journal syncs with a native client after the conversion.
	native := openGoDevice(t, strings.Replace(site, "http://", "ws://", 1)+"/v1/sync")
	journalID := get(t, ctx, "read the journal's id", errs, chromedp.Evaluate[string](`interlude.journal()`, chromedp.EvalAwaitPromise))
	get(t, ctx, "share the journal with a native client", errs, chromedp.Evaluate[map[string]any](
		fmt.Sprintf(`interlude.share(%q, %q)`, journalID, native.Identity().PublicID()), chromedp.EvalAwaitPromise))
	do(t, ctx, "wait for the share to sync", errs, waitSynced(journalID))
	doc, err := envelope.ParseDocID(journalID)
	if err != nil {
		t.Fatalf("ParseDocID(%q): %v", journalID, err)
	}
	syncUntilHolds(t, native, "native client", doc)
	text, err := native.Text(doc)
	if err != nil {
		t.Fatalf("native client Text(journal): %v", err)
	}
	if text != entry {
		t.Errorf("native client reads the journal as %q, want %q", text, entry)
	}
	errs.check(t)
}

// putRawRecord writes one record into the IndexedDB database name of the
// page's origin, creating the database in the app's layout if needed.
func putRawRecord(name, key, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`new Promise((resolve, reject) => {
		const req = indexedDB.open(%q, 1);
		req.onupgradeneeded = () => req.result.createObjectStore("kv");
		req.onerror = () => reject(req.error);
		req.onsuccess = () => {
			const db = req.result;
			const tx = db.transaction("kv", "readwrite");
			const enc = new TextEncoder();
			tx.objectStore("kv").put(enc.encode(%q).buffer, enc.encode(%q));
			tx.onerror = () => reject(tx.error);
			tx.oncomplete = () => { db.close(); resolve(); };
		};
	})`, name, value, key), chromedp.EvalAwaitPromise)
}

// databaseNames lists the IndexedDB databases of the page's origin.
func databaseNames(t *testing.T, ctx context.Context, errs *pageErrors) []string {
	t.Helper()
	return get(t, ctx, "list the IndexedDB databases", errs, chromedp.Evaluate[[]string](
		`indexedDB.databases().then((list) => list.map((d) => d.name).sort())`, chromedp.EvalAwaitPromise))
}

// TestEncryptDeviceCutShort leaves the databases as a conversion cut short
// at each step would. With the copy incomplete, the next start must use
// the unencrypted data and delete the copy. With the copy recorded as
// current but the unencrypted database still there, the next start must
// delete that database and ask for the passphrase.
func TestEncryptDeviceCutShort(t *testing.T) {
	requireChromium(t)
	app := buildApp(t)
	site, _, _ := serveAppFromRelay(t, app)
	ctx := newBrowser(t)
	errs := watchPageErrors(t, ctx)
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }

	passphrase := "halfway through " + randomMarker(t)
	entry := "kept through a conversion cut short " + randomMarker(t)

	// 1. A device without a passphrase, and an incomplete encrypted copy.
	do(t, ctx, "write on a device without a passphrase", errs,
		chromedp.Navigate(site+"/"),
		skipPassphrase(),
		chromedp.WaitEnabled(css("#entry")),
		chromedp.SendKeys(css("#entry"), entry),
		chromedp.WaitVisible(css(`#save-state[data-state="synced"]`)),
		putRawRecord("interlude-encrypted", securestore.ReservedPrefix+"header", "copy cut short"),
	)

	// 2. The next start keeps the unencrypted data and deletes the copy.
	do(t, ctx, "reload after a copy cut short", errs,
		chromedp.Reload(),
		chromedp.WaitEnabled(css("#entry")),
	)
	if value := get(t, ctx, "read the textarea", errs, chromedp.Value(css("#entry"))); value != entry {
		t.Errorf("textarea after a copy cut short = %q, want %q", value, entry)
	}
	for _, name := range databaseNames(t, ctx, errs) {
		if name == "interlude-encrypted" {
			t.Error("the incomplete encrypted copy is still there after the next start")
		}
	}

	// 3. Convert, then bring back an unencrypted database as if the
	// conversion stopped before deleting it.
	do(t, ctx, "protect the device and leave a plain database behind", errs,
		chromedp.WaitVisible(css("#protect-passphrase")),
		chromedp.SendKeys(css("#protect-passphrase"), passphrase),
		chromedp.SendKeys(css("#protect-confirm"), passphrase),
		chromedp.Click(css("#protect-button")),
		chromedp.WaitVisible(css("#lock-now")),
		putRawRecord("interlude", "identity", "left behind"),
	)

	// 4. The next start deletes it and uses the encrypted copy.
	do(t, ctx, "reload after a switch cut short", errs,
		chromedp.Reload(),
		chromedp.WaitVisible(css("#lock-passphrase")),
	)
	for _, name := range databaseNames(t, ctx, errs) {
		if name == "interlude" {
			t.Error("the unencrypted database is still there after the next start")
		}
	}
	do(t, ctx, "unlock", errs,
		submitPassphrase(passphrase),
		chromedp.WaitEnabled(css("#entry")),
	)
	if value := get(t, ctx, "read the textarea after unlock", errs, chromedp.Value(css("#entry"))); value != entry {
		t.Errorf("textarea after unlock = %q, want %q", value, entry)
	}
	errs.check(t)
}

// TestEncryptDeviceFailsKeepsData makes the conversion fail, as another
// tab that holds the encrypted database open does: encryptDevice must
// reject, and the device must go on with its unencrypted data, the entry
// intact and new writes saved. Once the other connection closes, a second
// try succeeds.
func TestEncryptDeviceFailsKeepsData(t *testing.T) {
	requireChromium(t)
	app := buildApp(t)
	site, _, _ := serveAppFromRelay(t, app)
	ctx := newBrowser(t)
	errs := watchPageErrors(t, ctx)
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	entry := "kept when the conversion fails " + randomMarker(t)

	do(t, ctx, "write on a device without a passphrase", errs,
		chromedp.Navigate(site+"/"),
		skipPassphrase(),
		chromedp.WaitEnabled(css("#entry")),
		chromedp.SendKeys(css("#entry"), entry),
		chromedp.WaitVisible(css(`#save-state[data-state="synced"]`)),
		// A connection that ignores versionchange, as a stuck tab would,
		// blocks the deletion that starts every conversion.
		chromedp.Evaluate[chromedp.Void](`new Promise((resolve, reject) => {
			const req = indexedDB.open("interlude-encrypted", 1);
			req.onupgradeneeded = () => req.result.createObjectStore("kv");
			req.onerror = () => reject(req.error);
			req.onsuccess = () => { window.blocker = req.result; resolve(); };
		})`, chromedp.EvalAwaitPromise),
	)
	failed := get(t, ctx, "call encryptDevice while the copy is held open", errs, chromedp.Evaluate[string](
		`interlude.encryptDevice("a passphrase that is not used").then(() => "resolved", (err) => "rejected: " + err.message)`, chromedp.EvalAwaitPromise))
	if !strings.Contains(failed, "open in another tab") {
		t.Fatalf("encryptDevice while the copy is held open = %q, want it rejected naming the other tab", failed)
	}
	// A second try while the other tab still holds the copy fails the
	// same way, rather than wait behind the first deletion, and the app
	// still responds to other calls.
	again := get(t, ctx, "call encryptDevice again while the copy is held open", errs, chromedp.Evaluate[string](
		`interlude.encryptDevice("a passphrase that is not used").then(() => "resolved", (err) => "rejected: " + err.message)`, chromedp.EvalAwaitPromise))
	if !strings.Contains(again, "open in another tab") {
		t.Fatalf("second encryptDevice while the copy is held open = %q, want it rejected naming the other tab", again)
	}
	if n := get(t, ctx, "list linked devices after the failures", errs, chromedp.Evaluate[int](
		`interlude.linkedDevices().then((list) => list.length)`, chromedp.EvalAwaitPromise)); n != 0 {
		t.Errorf("linked devices after the failed conversions = %d, want 0", n)
	}

	more := " and written after the failure"
	do(t, ctx, "write again after the failed conversion", errs,
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.getElementById("entry").value === %q`, entry), chromedp.WithPollingTimeout(0)),
		chromedp.WaitEnabled(css("#entry")),
		chromedp.SendKeys(css("#entry"), more),
		chromedp.WaitVisible(css(`#save-state[data-state="synced"]`)),
	)
	if state := get(t, ctx, "read whether the lock button shows", errs, chromedp.Evaluate[bool](
		`document.getElementById("lock-now").checkVisibility()`)); state {
		t.Error("the page shows the lock button after the failed conversion, as if encrypted")
	}

	do(t, ctx, "close the other connection and reload", errs,
		chromedp.Evaluate[chromedp.Void](`window.blocker.close()`),
		chromedp.Reload(),
		chromedp.WaitEnabled(css("#entry")),
	)
	if value := get(t, ctx, "read the textarea after a reload", errs, chromedp.Value(css("#entry"))); value != entry+more {
		t.Errorf("textarea after the failed conversion and a reload = %q, want %q", value, entry+more)
	}
	final := get(t, ctx, "call encryptDevice once the copy is free", errs, chromedp.Evaluate[string](
		`interlude.encryptDevice("the passphrase used now").then(() => "resolved", (err) => "rejected: " + err.message)`, chromedp.EvalAwaitPromise))
	if final != "resolved" {
		t.Errorf("encryptDevice once nothing holds the copy open = %q, want resolved", final)
	}
	errs.check(t)
}
