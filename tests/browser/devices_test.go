//go:build !js

package browser

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"interlude/client"
	"interlude/client/badgerstore"
	"interlude/client/wstransport"
	"interlude/sync/envelope"
)

// openGoDevice opens a native client with its own Badger store and a new
// identity, synced through relayURL when the test calls SyncOnce.
func openGoDevice(t *testing.T, relayURL string) *client.Client {
	t.Helper()
	store, err := badgerstore.Open(t.TempDir())
	if err != nil {
		t.Fatalf("badgerstore.Open: %v", err)
	}
	id, err := client.NewIdentity()
	if err != nil {
		t.Fatalf("NewIdentity: %v", err)
	}
	c, err := client.Open(context.Background(), client.Config{
		Store: store, Identity: id, Dialer: wstransport.Dialer{}, RelayURL: relayURL,
	})
	if err != nil {
		t.Fatalf("client.Open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// syncGoDevice runs one sync of c within waitLimit.
func syncGoDevice(t *testing.T, c *client.Client, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := c.SyncOnce(ctx); err != nil {
		t.Fatalf("%s SyncOnce: %v", name, err)
	}
}

// syncUntilHolds syncs c until it holds doc. A share is an offer: c
// replies with its key for doc, the page's running session adds that
// key, and a later sync brings doc. waitLimit only guards against a hang.
func syncUntilHolds(t *testing.T, c *client.Client, name string, doc envelope.DocID) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		syncGoDevice(t, c, name)
		if _, err := c.Text(doc); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not hold document %s after syncing until the deadline", name, doc)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// isMember reports whether dev is a current member of doc in c's copy of
// the membership log.
func isMember(t *testing.T, c *client.Client, doc envelope.DocID, dev *client.Client) bool {
	t.Helper()
	members, err := c.Members(doc)
	if err != nil {
		t.Fatalf("Members(%s): %v", doc, err)
	}
	// dev is a member under its key for doc, if it holds doc, else under
	// its device key, as a linked device that never synced is.
	want := [32]byte(dev.Identity().Public().Sign)
	if id, err := dev.MemberID(doc); err == nil {
		want = [32]byte(id.Sign)
	}
	for _, m := range members {
		if m.Sign == want {
			return true
		}
	}
	return false
}

// waitSynced waits until the page reports every document in docs synced
// with nothing pending. Called after a change's Promise has resolved, it
// waits for the relay to acknowledge that change: the API refreshes the
// status before it resolves.
func waitSynced(docs ...string) chromedp.Action[chromedp.Void] {
	quoted := make([]string, len(docs))
	for i, d := range docs {
		quoted[i] = fmt.Sprintf("%q", d)
	}
	return chromedp.Poll[chromedp.Void](fmt.Sprintf(
		`[%s].every((id) => { const s = interlude.status(id); return s.state === "synced" && s.pending === 0; })`,
		strings.Join(quoted, ", ")), chromedp.WithPollingTimeout(0))
}

// TestLinkDeviceFromPage links a native client as the browser person's
// second device from the page. A wrong fingerprint must be rejected with
// its message shown and nothing linked. With the right one, typed in lower
// case with spaces, the native device must read the browser's journal and
// a journal the therapist shared with the browser, and its writes must
// show in the page. Removing it from the page must remove it from the
// therapist's member list.
func TestLinkDeviceFromPage(t *testing.T) {
	requireChromium(t)
	app := buildApp(t)
	pageURL := serveDir(t, app)
	relayAddr := reservePort(t)
	relayURL := "ws://" + relayAddr + "/v1/sync"
	startRelay(t, relayAddr, t.TempDir(), &lockedBuffer{})
	ctx := newBrowser(t)
	errs := watchPageErrors(t, ctx)
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }

	therapist := openGoDevice(t, relayURL)
	phone := openGoDevice(t, relayURL)
	phoneID := phone.Identity().PublicID()
	phoneFingerprint := phone.Identity().Public().Fingerprint()

	// 1. The calls need a started client: on the setup screen they reject.
	do(t, ctx, "load the page", errs,
		chromedp.Navigate(pageURL+"/?relay="+relayURL),
		chromedp.WaitVisible(css("#setup-skip")),
	)
	beforeStart := get(t, ctx, "call linkedDevices before start", errs, chromedp.Evaluate[string](
		`interlude.linkedDevices().then(() => "resolved", (err) => err.name)`, chromedp.EvalAwaitPromise))
	if beforeStart != "NotStartedError" {
		t.Errorf("linkedDevices before start = %q, want it rejected with NotStartedError", beforeStart)
	}

	// 2. Start, write in the browser's journal, and sync it.
	entry := "morning pages " + randomMarker(t)
	do(t, ctx, "start and write in the journal", errs,
		skipPassphrase(),
		chromedp.WaitEnabled(css("#entry")),
		chromedp.WaitVisible(css(`#connection[data-state="connected"]`)),
		chromedp.SendKeys(css("#entry"), entry),
		chromedp.WaitVisible(css(`#save-state[data-state="synced"]`)),
		chromedp.WaitVisible(css("#linked-none")),
	)
	browserID := get(t, ctx, "read the page's public id", errs, chromedp.Value(css("#public-id")))
	journal := get(t, ctx, "read the journal's id", errs, chromedp.Evaluate[string](`interlude.journal()`, chromedp.EvalAwaitPromise))
	journalID, err := envelope.ParseDocID(journal)
	if err != nil {
		t.Fatalf("journal id from the page: %v", err)
	}

	// 3. The therapist shares a journal of their own with the browser.
	browserDevice, err := client.ParsePublicID(browserID)
	if err != nil {
		t.Fatalf("the page shows an invalid public id %q: %v", browserID, err)
	}
	homework := "homework: three good things " + randomMarker(t)
	bg := context.Background()
	shared, err := therapist.CreateDocument(bg)
	if err != nil {
		t.Fatalf("CreateDocument: %v", err)
	}
	if err := therapist.SetText(bg, shared, homework); err != nil {
		t.Fatalf("therapist SetText: %v", err)
	}
	if err := therapist.Share(bg, shared, browserDevice); err != nil {
		t.Fatalf("therapist Share: %v", err)
	}
	// The share is an offer: the page replies with its key for the
	// journal, and a later sync of the therapist adds that key.
	shareDeadline := time.Now().Add(waitLimit)
	pageText := fmt.Sprintf(`(() => { try { return interlude.text(%q) ?? ""; } catch { return ""; } })()`, shared)
	for get(t, ctx, "read the shared journal in the page", errs, chromedp.Evaluate[string](pageText)) != homework {
		if time.Now().After(shareDeadline) {
			t.Fatal("the page did not receive the shared journal before the deadline")
		}
		syncGoDevice(t, therapist, "therapist")
		time.Sleep(50 * time.Millisecond)
	}
	do(t, ctx, "wait for the shared journal in the page", errs,
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`interlude.text(%q) === %q`, shared, homework), chromedp.WithPollingTimeout(0)),
		waitSynced(journal, shared.String()),
	)

	// 4. The API names each kind of bad input.
	badCalls := []struct {
		call string
		want string
	}{
		{fmt.Sprintf(`interlude.linkDevice(%q, %q)`, phoneID, "0000-0000-0000"), "FingerprintMismatchError"},
		{fmt.Sprintf(`interlude.linkDevice(%q, "")`, phoneID), "TypeError"},
		{fmt.Sprintf(`interlude.linkDevice(%q, %q)`, phoneID[:len(phoneID)-4], phoneFingerprint), "InvalidPublicIDError"},
		{fmt.Sprintf(`interlude.linkDevice(%q, %q)`, browserID, browserDevice.Fingerprint()), "SameDeviceError"},
		{fmt.Sprintf(`interlude.unlinkDevice(%q)`, phoneFingerprint), "UnknownDeviceError"},
		{fmt.Sprintf(`interlude.unlinkDevice(%q)`, browserID), "SameDeviceError"},
	}
	for _, bc := range badCalls {
		got := get(t, ctx, "call "+bc.call, errs, chromedp.Evaluate[string](
			bc.call+`.then(() => "resolved", (err) => err.name)`, chromedp.EvalAwaitPromise))
		if got != bc.want {
			t.Errorf("%s = %q, want it rejected with %s", bc.call, got, bc.want)
		}
	}

	// 5. In the page, a fingerprint of another device is rejected.
	stranger, err := client.NewIdentity()
	if err != nil {
		t.Fatalf("NewIdentity: %v", err)
	}
	wrongFingerprint := stranger.Public().Fingerprint()
	do(t, ctx, "link with a wrong fingerprint", errs,
		chromedp.SendKeys(css("#link-id"), phoneID),
		chromedp.SendKeys(css("#link-fingerprint"), wrongFingerprint),
		chromedp.Click(css("#link-button")),
		chromedp.WaitVisible(css("#link-confirm")),
	)
	confirmText := get(t, ctx, "read the link confirmation", errs, chromedp.Text(css("#link-confirm-text")))
	if !strings.Contains(confirmText, wrongFingerprint) || !strings.Contains(confirmText, "every journal") {
		t.Errorf("link confirmation = %q, want it to name fingerprint %s and say the device gets every journal", confirmText, wrongFingerprint)
	}
	do(t, ctx, "confirm the link with a wrong fingerprint", errs,
		chromedp.Click(css("#link-confirm-button")),
		chromedp.Poll[chromedp.Void](`document.getElementById("link-state").textContent.includes("does not match")`, chromedp.WithPollingTimeout(0)),
	)
	if linked := get(t, ctx, "read the linked devices", errs, chromedp.Evaluate[[]any](`interlude.linkedDevices()`, chromedp.EvalAwaitPromise)); len(linked) != 0 {
		t.Errorf("linked devices after a wrong fingerprint = %v, want none", linked)
	}
	listed := get(t, ctx, "count the listed devices", errs, chromedp.Evaluate[int](`document.querySelectorAll("#linked-list li").length`))
	if listed != 0 {
		t.Errorf("the page lists %d linked devices after a wrong fingerprint, want 0", listed)
	}
	for _, doc := range []string{journal, shared.String()} {
		pending := get(t, ctx, "read the pending changes of "+doc, errs, chromedp.Evaluate[int](fmt.Sprintf(`interlude.status(%q).pending`, doc)))
		if pending != 0 {
			t.Errorf("document %s has %d pending changes after a rejected link, want 0", doc, pending)
		}
	}

	// 6. The right fingerprint, as a person might type it, links the phone.
	typed := " " + strings.ToLower(strings.ReplaceAll(phoneFingerprint, "-", " ")) + " "
	do(t, ctx, "link with the right fingerprint", errs,
		// chromedp.Clear resets only the attribute, not a typed value.
		chromedp.Evaluate[chromedp.Void](`document.getElementById("link-fingerprint").value = ""`),
		chromedp.SendKeys(css("#link-fingerprint"), typed),
		chromedp.Click(css("#link-button")),
		chromedp.WaitVisible(css("#link-confirm")),
		chromedp.Click(css("#link-confirm-button")),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.getElementById("link-state").textContent.includes(%q)`, "Linked device "+phoneFingerprint), chromedp.WithPollingTimeout(0)),
		chromedp.WaitVisible(css(fmt.Sprintf(`#linked-list li[data-public-id=%q]`, phoneID))),
		waitSynced(journal, shared.String()),
	)
	if hidden := get(t, ctx, "read whether the no-devices line is hidden", errs, chromedp.Evaluate[bool](`document.getElementById("linked-none").hidden`)); !hidden {
		t.Error("the page says no device is linked while it lists one")
	}
	shot := get(t, ctx, "take a screenshot", errs, chromedp.FullScreenshot(100))
	saveScreenshot(t, "devices-linked.png", shot)

	// 7. The phone replies to the page's offers with its key for each
	//    journal; the page, whose session runs, adds those keys, and a
	//    later sync brings the journals. The phone then reads both, and
	//    its writes show in the page.
	deadline := time.Now().Add(waitLimit)
	for len(phone.Documents()) < 2 && time.Now().Before(deadline) {
		syncGoDevice(t, phone, "phone")
		time.Sleep(50 * time.Millisecond)
	}
	for doc, want := range map[envelope.DocID]string{journalID: entry, shared: homework} {
		got, err := phone.Text(doc)
		if err != nil {
			t.Fatalf("phone Text(%s): %v (documents on the phone: %v)", doc, err, phone.Documents())
		}
		if got != want {
			t.Errorf("phone reads %q in %s, want %q", got, doc, want)
		}
	}
	fromPhoneJournal := entry + "\nwritten on the phone " + randomMarker(t)
	fromPhoneShared := homework + "\n1. a walk " + randomMarker(t)
	if err := phone.SetText(bg, journalID, fromPhoneJournal); err != nil {
		t.Fatalf("phone SetText of the journal: %v", err)
	}
	if err := phone.SetText(bg, shared, fromPhoneShared); err != nil {
		t.Fatalf("phone SetText of the shared journal: %v", err)
	}
	syncGoDevice(t, phone, "phone")
	do(t, ctx, "wait for the phone's writes in the page", errs,
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.getElementById("entry").value === %q`, fromPhoneJournal), chromedp.WithPollingTimeout(0)),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`interlude.text(%q) === %q`, shared, fromPhoneShared), chromedp.WithPollingTimeout(0)),
	)
	syncGoDevice(t, therapist, "therapist")
	if !isMember(t, therapist, shared, phone) {
		t.Fatal("the therapist does not list the linked phone as a member; the removal check below would prove nothing")
	}
	if got, err := therapist.Text(shared); err != nil || got != fromPhoneShared {
		t.Errorf("therapist reads %q, %v; want the phone's write %q", got, err, fromPhoneShared)
	}

	// 8. Removing the phone in the page takes it off the therapist's list.
	do(t, ctx, "ask to remove the phone", errs,
		chromedp.Click(css(fmt.Sprintf(`#linked-list li[data-public-id=%q] button`, phoneID))),
		chromedp.WaitVisible(css("#unlink-confirm")),
	)
	unlinkText := get(t, ctx, "read the removal confirmation", errs, chromedp.Text(css("#unlink-confirm-text")))
	shot = get(t, ctx, "take a screenshot", errs, chromedp.FullScreenshot(100))
	saveScreenshot(t, "devices-remove-confirm.png", shot)
	for _, want := range []string{phoneFingerprint, "changes the keys", "cannot open anything written from now on"} {
		if !strings.Contains(unlinkText, want) {
			t.Errorf("removal confirmation = %q, want it to contain %q", unlinkText, want)
		}
	}
	do(t, ctx, "remove the phone", errs,
		chromedp.Click(css("#unlink-confirm-button")),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.getElementById("unlink-state").textContent.includes(%q)`, "Removed device "+phoneFingerprint), chromedp.WithPollingTimeout(0)),
		chromedp.WaitVisible(css("#linked-none")),
		waitSynced(journal, shared.String()),
	)
	if linked := get(t, ctx, "read the linked devices", errs, chromedp.Evaluate[[]any](`interlude.linkedDevices()`, chromedp.EvalAwaitPromise)); len(linked) != 0 {
		t.Errorf("linked devices after the removal = %v, want none", linked)
	}
	syncGoDevice(t, therapist, "therapist")
	if isMember(t, therapist, shared, phone) {
		t.Error("the therapist still lists the removed phone as a member of the shared journal")
	}
	if !isMember(t, therapist, shared, therapist) {
		t.Error("the therapist is no longer a member of their own journal")
	}
	errs.check(t)
}
