//go:build !js

package browser

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"interlude/client"
	"interlude/sync/membership"
)

// TestPersonIDFromPage has a native laptop that started a person link
// the page's device. The page lists the laptop's link request, and the
// person links the laptop back from it, typing the laptop's fingerprint.
// The page then shows the laptop's person id, and a journal a therapist
// shares with that id, not with a device, reaches the page.
func TestPersonIDFromPage(t *testing.T) {
	requireChromium(t)
	app := buildApp(t)
	pageURL := serveDir(t, app)
	relayAddr := reservePort(t)
	relayURL := "ws://" + relayAddr + "/v1/sync"
	startRelay(t, relayAddr, t.TempDir(), &lockedBuffer{})
	ctx := newBrowser(t)
	errs := watchPageErrors(t, ctx)
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	bg := context.Background()

	therapist := openGoDevice(t, relayURL)
	laptop := openGoDevice(t, relayURL)
	laptopID := laptop.Identity().PublicID()
	person, err := laptop.Person(bg)
	if err != nil {
		t.Fatalf("Person: %v", err)
	}

	do(t, ctx, "start the page", errs,
		chromedp.Navigate(pageURL+"/?relay="+relayURL),
		skipPassphrase(),
		chromedp.WaitVisible(css(`#connection[data-state="connected"]`)),
		chromedp.WaitEnabled(css("#person-show")),
	)
	pageID := get(t, ctx, "read the page's public id", errs, chromedp.Value(css("#public-id")))
	pageDevice, err := client.ParsePublicID(pageID)
	if err != nil {
		t.Fatalf("the page shows an invalid public id %q: %v", pageID, err)
	}

	// 1. The laptop links the page's device and adds it to the person.
	if _, err := laptop.LinkDevice(bg, pageDevice); err != nil {
		t.Fatalf("LinkDevice: %v", err)
	}
	syncGoDevice(t, laptop, "laptop")
	syncGoDevice(t, laptop, "laptop")
	request := fmt.Sprintf(`#link-requests li[data-public-id=%q]`, laptopID)
	do(t, ctx, "wait for the laptop's link request", errs,
		chromedp.WaitVisible(css(request)),
	)
	if joined := get(t, ctx, "read the link requests", errs, chromedp.Evaluate[[]any](`interlude.linkRequests()`, chromedp.EvalAwaitPromise)); len(joined) != 1 {
		t.Errorf("link requests = %v, want the laptop's", joined)
	}

	// 2. The person accepts by linking the laptop, typing its fingerprint.
	do(t, ctx, "link the laptop from its request", errs,
		chromedp.Click(css(request+" button")),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.getElementById("link-id").value === %q`, laptopID), chromedp.WithPollingTimeout(0)),
		chromedp.SendKeys(css("#link-fingerprint"), laptop.Identity().Public().Fingerprint()),
		chromedp.Click(css("#link-button")),
		chromedp.WaitVisible(css("#link-confirm")),
		chromedp.Click(css("#link-confirm-button")),
		chromedp.WaitVisible(css(fmt.Sprintf(`#linked-list li[data-public-id=%q]`, laptopID))),
		chromedp.WaitNotPresent(css(request)),
		chromedp.Click(css("#person-show")),
		chromedp.WaitVisible(css("#person-id")),
	)
	pagePerson := get(t, ctx, "read the person id", errs, chromedp.Value(css("#person-id")))
	if pagePerson != person.String() {
		t.Fatalf("the page shows person id %q, want the laptop's %q", pagePerson, person)
	}
	shot := get(t, ctx, "take a screenshot", errs, chromedp.FullScreenshot(100))
	saveScreenshot(t, "person-id.png", shot)

	// 3. The therapist shares a journal with the person id.
	homework := "homework: a thought record " + randomMarker(t)
	shared, err := therapist.CreateDocument(bg)
	if err != nil {
		t.Fatalf("CreateDocument: %v", err)
	}
	if err := therapist.SetText(bg, shared, homework); err != nil {
		t.Fatalf("therapist SetText: %v", err)
	}
	if err := therapist.ShareWithPerson(bg, shared, person, membership.RoleWriter); err != nil {
		t.Fatalf("ShareWithPerson: %v", err)
	}
	deadline := time.Now().Add(waitLimit)
	pageText := fmt.Sprintf(`(() => { try { return interlude.text(%q) ?? ""; } catch { return ""; } })()`, shared)
	for get(t, ctx, "read the shared journal in the page", errs, chromedp.Evaluate[string](pageText)) != homework {
		if time.Now().After(deadline) {
			t.Fatal("the page did not receive the journal shared with its person before the deadline")
		}
		syncGoDevice(t, therapist, "therapist")
		syncGoDevice(t, laptop, "laptop")
		time.Sleep(50 * time.Millisecond)
	}
	devices := get(t, ctx, "read the person's devices", errs, chromedp.Evaluate[map[string]any](`interlude.person()`, chromedp.EvalAwaitPromise))
	if list, _ := devices["devices"].([]any); len(list) != 2 {
		t.Errorf("the page's person lists %v, want the laptop and the page", devices["devices"])
	}
}
