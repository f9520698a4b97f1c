//go:build !js

package browser

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"
)

// TestSecondTabWaitsForFirst opens the app in two tabs of one browser. The
// second must not start a client on the same IndexedDB database while the
// first runs, and must start once the first tab closes.
func TestSecondTabWaitsForFirst(t *testing.T) {
	requireChromium(t)
	app := buildApp(t)
	// The relay stays down: this test is about the local database.
	page := serveDir(t, app) + "/?relay=ws://" + reservePort(t) + "/v1/sync"
	first := newBrowser(t)
	firstErrs := watchPageErrors(t, first)

	do(t, first, "load the page in the first tab", firstErrs,
		chromedp.Navigate(page),
		skipPassphrase(),
		chromedp.WaitEnabled(chromedp.CSS("#entry")),
		chromedp.SendKeys(chromedp.CSS("#entry"), "written in the first tab"),
		chromedp.WaitVisible(chromedp.CSS(`#save-state[data-state="waiting"]`)),
	)

	second, closeSecond := chromedp.NewContext(first)
	defer closeSecond()
	if err := chromedp.Do(second); err != nil {
		t.Fatalf("open a second tab: %v", err)
	}
	secondErrs := watchPageErrors(t, second)
	do(t, second, "load the page in the second tab", secondErrs,
		chromedp.Navigate(page),
		chromedp.WaitVisible(chromedp.CSS("#notice")),
	)
	notice := get(t, second, "read the second tab's notice", secondErrs, chromedp.Text(chromedp.CSS("#notice")))
	if !strings.Contains(notice, "open in another tab") {
		t.Errorf("second tab's notice = %q, want it to say the app is open in another tab", notice)
	}
	disabled := get(t, second, "read whether the second tab's textarea is disabled", secondErrs,
		chromedp.Evaluate[bool](`document.getElementById("entry").disabled`))
	if !disabled {
		t.Errorf("second tab's textarea is enabled while the first tab runs the client")
	}

	// Closing the first tab releases its lock.
	if err := chromedp.Do(first, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("leave the page in the first tab: %v", err)
	}
	do(t, second, "wait for the second tab to start", secondErrs,
		chromedp.WaitEnabled(chromedp.CSS("#entry")),
		chromedp.WaitNotVisible(chromedp.CSS("#notice")),
	)
	text := get(t, second, "read the second tab's textarea", secondErrs, chromedp.Value(chromedp.CSS("#entry")))
	if text != "written in the first tab" {
		t.Errorf("second tab's textarea = %q, want the text saved by the first tab", text)
	}
	firstErrs.check(t)
	secondErrs.check(t)
}

// TestQuotaErrorShown gives the page less storage than one large entry
// needs. The page must show that the entry is not saved, and a smaller
// entry typed next must save, without a reload.
func TestQuotaErrorShown(t *testing.T) {
	requireChromium(t)
	app := buildApp(t)
	origin := serveDir(t, app)
	page := origin + "/?relay=ws://" + reservePort(t) + "/v1/sync"
	ctx := newBrowser(t)
	errs := watchPageErrors(t, ctx)

	// Chromium applies a quota override to IndexedDB connections opened
	// after it, so it is set before the page loads.
	setQuota(t, ctx, origin, 256<<10)
	do(t, ctx, "load the page and write a short entry", errs,
		chromedp.Navigate(page),
		skipPassphrase(),
		chromedp.WaitEnabled(chromedp.CSS("#entry")),
		chromedp.SendKeys(chromedp.CSS("#entry"), "kept"),
		chromedp.WaitVisible(chromedp.CSS(`#save-state[data-state="waiting"]`)),
	)

	// Random letters, so the browser cannot compress the entry below the
	// quota. Typing 300,000 keys would take minutes, so a script sets the
	// text and fires the input event that typing fires.
	do(t, ctx, "write an entry larger than the quota", errs,
		chromedp.Evaluate[chromedp.Void](`(() => {
			const entry = document.getElementById("entry");
			const letters = [];
			for (let i = 0; i < 300000; i++) letters.push(String.fromCharCode(97 + Math.floor(Math.random() * 26)));
			entry.value = "kept " + letters.join("");
			entry.dispatchEvent(new Event("input"));
		})()`),
		chromedp.WaitVisible(chromedp.CSS(`#save-state[data-state="error"]`)),
	)
	state := get(t, ctx, "read the save state", errs, chromedp.Text(chromedp.CSS("#save-state")))
	if !strings.Contains(state, "no storage space") {
		t.Errorf("save state with storage full = %q, want it to say that storage is full", state)
	}

	do(t, ctx, "replace the entry with a short one", errs,
		chromedp.Evaluate[chromedp.Void](`(() => {
			const entry = document.getElementById("entry");
			entry.value = "kept and short";
			entry.dispatchEvent(new Event("input"));
		})()`),
		chromedp.WaitVisible(chromedp.CSS(`#save-state[data-state="waiting"]`)),
		chromedp.Reload(),
		chromedp.WaitEnabled(chromedp.CSS("#entry")),
	)
	text := get(t, ctx, "read the textarea after reload", errs, chromedp.Value(chromedp.CSS("#entry")))
	if text != "kept and short" {
		t.Errorf("textarea after reload = %q, want %q, the entry saved after the quota failure", text, "kept and short")
	}
	// The failed save called console.error on purpose.
	errs.checkUncaught(t)
}

// setQuota overrides the storage quota of origin in bytes, or restores the
// browser's own quota when bytes is 0. The override applies to IndexedDB
// connections opened after it.
func setQuota(t *testing.T, ctx context.Context, origin string, bytes int) {
	t.Helper()
	params := storage.OverrideQuotaForOriginParams{Origin: origin}
	if bytes > 0 {
		size := float64(bytes)
		params.QuotaSize = &size
	}
	if _, err := chromedp.Call(ctx, storage.OverrideQuotaForOrigin, params); err != nil {
		t.Fatalf("override the storage quota of %s: %v", origin, err)
	}
}
