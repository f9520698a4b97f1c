//go:build !js

package browser

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"interlude/sync/envelope"
)

// TestRemoveMemberFromPage shares the page's journal with a native
// client, as a therapist shares with a client, and ends that sharing in
// the page. The member list shows both, and the second click on Remove
// removes the client. Nothing the page writes afterwards reaches it.
func TestRemoveMemberFromPage(t *testing.T) {
	requireChromium(t)
	app := buildApp(t)
	base, _, _ := serveAppFromRelay(t, app)
	relayURL := "ws://" + strings.TrimPrefix(base, "http://") + "/v1/sync"
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }

	ctx := newBrowser(t)
	errs := watchPageErrors(t, ctx)
	do(t, ctx, "start and write", errs,
		chromedp.Navigate(base+"/"),
		skipPassphrase(),
		chromedp.WaitEnabled(css("#entry")),
		chromedp.WaitVisible(css(`#connection[data-state="connected"]`)),
		chromedp.SendKeys(css("#entry"), "before "),
		chromedp.WaitVisible(css(`#save-state[data-state="synced"]`)),
	)
	journal := get(t, ctx, "read the journal's id", errs, chromedp.Evaluate[string](`interlude.journal()`, chromedp.EvalAwaitPromise))
	doc, err := envelope.ParseDocID(journal)
	if err != nil {
		t.Fatal(err)
	}
	client := openGoDevice(t, relayURL)
	clientID := client.Identity().PublicID()
	do(t, ctx, "share with the client", errs,
		chromedp.SendKeys(css("#share-id"), clientID),
		chromedp.Click(css("#share-button")),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.getElementById("share-state").textContent.includes(%q)`, client.Identity().Public().Fingerprint()), chromedp.WithPollingTimeout(0)),
		waitSynced(journal),
	)
	syncUntilHolds(t, client, "client", doc)
	if got, err := client.Text(doc); err != nil || got != "before " {
		t.Fatalf("the client reads %q, %v; want the shared journal", got, err)
	}
	// The client joined under its own key for the journal.
	memberID, err := client.MemberID(doc)
	if err != nil {
		t.Fatal(err)
	}
	item := fmt.Sprintf(`#members-list li[data-public-id=%q]`, memberID.String())
	do(t, ctx, "list the members", errs,
		chromedp.WaitVisible(css(item)),
		chromedp.WaitVisible(css(`#members-list li:nth-child(2)`)),
	)
	// Sharing again with the client is refused: it has the journal.
	do(t, ctx, "share with the client again", errs,
		chromedp.SendKeys(css("#share-id"), clientID),
		chromedp.Click(css("#share-button")),
		chromedp.Poll[chromedp.Void](`document.getElementById("share-state").textContent.includes("already has")`, chromedp.WithPollingTimeout(0)),
	)
	if you := get(t, ctx, "read this device's entry", errs, chromedp.Evaluate[int](
		`[...document.querySelectorAll("#members-list li")].filter((li) => li.textContent.includes("this device") && !li.querySelector("button")).length`)); you != 1 {
		t.Errorf("the member list shows this device %d times without a Remove button, want once", you)
	}
	do(t, ctx, "remove the client with two clicks", errs,
		chromedp.Click(css(item+" button")),
		chromedp.Poll[chromedp.Void](`document.getElementById("members-state").textContent.includes("cannot open anything written from now on")`, chromedp.WithPollingTimeout(0)),
		chromedp.Click(css(item+" button")),
		chromedp.Poll[chromedp.Void](`document.getElementById("members-state").textContent.startsWith("Removed")`, chromedp.WithPollingTimeout(0)),
		waitSynced(journal),
		chromedp.WaitNotPresent(css(item)),
		chromedp.SendKeys(css("#entry"), "after"),
		chromedp.WaitVisible(css(`#save-state[data-state="synced"]`)),
	)
	syncGoDevice(t, client, "client")
	if !client.Status(doc).Removed {
		t.Error("the removed client does not report its removal")
	}
	if got, _ := client.Text(doc); strings.Contains(got, "after") {
		t.Errorf("the removed client reads %q, including what was written after the removal", got)
	}
	errs.check(t)
}
