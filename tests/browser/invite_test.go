//go:build !js

package browser

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"interlude/sync/envelope"
)

// selectJournal opens doc through the page's journal list, as a person
// choosing it would.
func selectJournal(doc string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
		const select = document.getElementById("journal-select");
		select.value = %q;
		select.dispatchEvent(new Event("change"));
	})()`, doc))
}

// TestInvitationLinkInPage follows a therapist's invitation link in the
// page, which the relay serves. The page must show the comparison code
// that the therapist's device computes, remove the link's secret from its
// address, and open the journal once the therapist has synced. A second
// browser opening the used link must show that it is used. The page, as the
// admin of its own journal, must make a link that a native client can
// answer, and show that client's comparison code.
func TestInvitationLinkInPage(t *testing.T) {
	requireChromium(t)
	app := buildApp(t)
	base, relayLogs, _ := serveAppFromRelay(t, app)
	relayURL := "ws://" + strings.TrimPrefix(base, "http://") + "/v1/sync"
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	bg := context.Background()

	// 1. The therapist invites to a journal and syncs, so the relay has
	//    registered the invitation.
	therapist := openGoDevice(t, relayURL)
	doc, err := therapist.CreateDocument(bg)
	if err != nil {
		t.Fatalf("CreateDocument: %v", err)
	}
	homework := "homework: three good things " + randomMarker(t)
	if err := therapist.SetText(bg, doc, homework); err != nil {
		t.Fatalf("therapist SetText: %v", err)
	}
	syncGoDevice(t, therapist, "therapist")
	link, err := therapist.Invite(bg, doc)
	if err != nil {
		t.Fatalf("Invite: %v", err)
	}
	if !strings.HasPrefix(link, base+"/#invite=") {
		t.Fatalf("invitation link %q does not open the relay's page %s/", link, base)
	}
	secret := link[strings.Index(link, "#invite=")+len("#invite="):]
	syncGoDevice(t, therapist, "therapist")

	// 2. The page opened at the link offers to join after setup, and the
	//    join shows the comparison code and drops the secret from the
	//    address.
	ctx := newBrowser(t)
	errs := watchPageErrors(t, ctx)
	do(t, ctx, "open the invitation link", errs,
		chromedp.Navigate(link),
		skipPassphrase(),
		chromedp.WaitVisible(css("#join-button")),
		chromedp.WaitEnabled(css("#entry")),
	)
	ownJournal := get(t, ctx, "read the page's journal id", errs, chromedp.Evaluate[string](`interlude.journal()`, chromedp.EvalAwaitPromise))
	pageID := get(t, ctx, "read the page's public id", errs, chromedp.Value(css("#public-id")))
	do(t, ctx, "join", errs,
		chromedp.Click(css("#join-button")),
		chromedp.WaitVisible(css("#join-code")),
	)
	pageCode := get(t, ctx, "read the comparison code", errs, chromedp.Text(css("#join-code")))
	joinText := get(t, ctx, "read the join section", errs, chromedp.Text(css("#join-done")))
	if !strings.Contains(joinText, "Compare this code with your therapist") {
		t.Errorf("join section = %q, want it to tell the person to compare the code with their therapist", joinText)
	}
	href := get(t, ctx, "read the page's address", errs, chromedp.Evaluate[string](`location.href`))
	if strings.Contains(href, "#") || strings.Contains(href, secret) {
		t.Errorf("address after joining = %q, want the invitation fragment removed", href)
	}

	// 3. The API names each kind of bad call. A link with a character
	//    changed names an invitation that was never made.
	garbled := []byte(link)
	at := strings.Index(link, "#invite=") + len("#invite=") + 2
	if garbled[at] == 'A' {
		garbled[at] = 'B'
	} else {
		garbled[at] = 'A'
	}
	unknownDoc := envelope.DocID{1, 2, 3}
	badCalls := []struct {
		call string
		want string
	}{
		{fmt.Sprintf(`interlude.acceptInvite(%q)`, base+"/"), "InvalidInvitationError"},
		{fmt.Sprintf(`interlude.acceptInvite(%q)`, base+"/#invite=abc"), "InvalidInvitationError"},
		{fmt.Sprintf(`interlude.acceptInvite(%q)`, garbled), "InvitationNotFoundError"},
		{`interlude.acceptInvite(42)`, "TypeError"},
		{`interlude.invite("not a document id")`, "TypeError"},
		{fmt.Sprintf(`interlude.invite(%q)`, unknownDoc), "UnknownDocumentError"},
	}
	for _, bc := range badCalls {
		got := get(t, ctx, "call "+bc.call, errs, chromedp.Evaluate[string](
			bc.call+`.then(() => "resolved", (err) => err.name)`, chromedp.EvalAwaitPromise))
		if got != bc.want {
			t.Errorf("%s = %q, want it rejected with %s", bc.call, got, bc.want)
		}
	}

	// 4. The page, admin of its own journal, invites a native client.
	ownEntry := "my own notes " + randomMarker(t)
	do(t, ctx, "write in the own journal and make an invitation link", errs,
		chromedp.SendKeys(css("#entry"), ownEntry),
		chromedp.WaitVisible(css(`#save-state[data-state="synced"]`)),
		chromedp.Click(css("#invite-button")),
		chromedp.WaitVisible(css("#invite-result")),
		chromedp.WaitVisible(css(`#invitations li[data-state="open"]`)),
	)
	pageLink := get(t, ctx, "read the page's invitation link", errs, chromedp.Value(css("#invite-link")))
	if !strings.HasPrefix(pageLink, base+"/#invite=") {
		t.Errorf("the page's invitation link = %q, want it to open %s/", pageLink, base)
	}
	inviteText := get(t, ctx, "read the invitation warning", errs, chromedp.Text(css("#invite-result")))
	for _, want := range []string{"works only once", "channel you trust"} {
		if !strings.Contains(inviteText, want) {
			t.Errorf("invitation section = %q, want it to contain %q", inviteText, want)
		}
	}
	if visible := get(t, ctx, "read whether the offline line shows", errs, chromedp.Evaluate[bool](`document.getElementById("invite-offline").checkVisibility()`)); visible {
		t.Error("the page says the invitation waits for a sync, although the relay is up")
	}
	friend := openGoDevice(t, relayURL)
	acceptCtx, cancel := context.WithTimeout(bg, waitLimit)
	defer cancel()
	friendCode, err := friend.AcceptInvite(acceptCtx, pageLink)
	if err != nil {
		t.Fatalf("native client AcceptInvite of the page's link: %v", err)
	}

	// 5. A second browser opening the therapist's used link shows that
	//    it is used.
	other := newBrowser(t)
	otherErrs := watchPageErrors(t, other)
	do(t, other, "open the used link in a second browser", otherErrs,
		chromedp.Navigate(link),
		skipPassphrase(),
		chromedp.WaitVisible(css("#join-button")),
		chromedp.Click(css("#join-button")),
		chromedp.Poll[chromedp.Void](`document.getElementById("join-state").textContent.includes("already been used")`, chromedp.WithPollingTimeout(0)),
	)
	otherHref := get(t, other, "read the second browser's address", otherErrs, chromedp.Evaluate[string](`location.href`))
	if strings.Contains(otherHref, secret) {
		t.Errorf("address after a used link = %q, want the fragment removed", otherHref)
	}
	if visible := get(t, other, "read whether the join button shows", otherErrs, chromedp.Evaluate[bool](`document.getElementById("join-button").checkVisibility()`)); visible {
		t.Error("the join button still shows for a used link")
	}
	otherErrs.check(t)

	// 6. The therapist's sync adds the page's device, with the same code.
	syncGoDevice(t, therapist, "therapist")
	invitations, err := therapist.Invitations(bg, doc)
	if err != nil {
		t.Fatalf("Invitations: %v", err)
	}
	if len(invitations) != 1 || !invitations[0].Accepted {
		t.Fatalf("therapist's invitations = %+v, want one accepted", invitations)
	}
	if invitations[0].Code != pageCode {
		t.Errorf("therapist's comparison code %q, the page's %q: want equal", invitations[0].Code, pageCode)
	}

	// 7. The page opens the joined journal when it arrives, and its
	//    writes reach the therapist.
	do(t, ctx, "wait for the joined journal in the page", errs,
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.getElementById("entry").value === %q`, homework), chromedp.WithPollingTimeout(0)),
	)
	// The page joined under its key for the journal, not its device id.
	docs := get(t, ctx, "read the page's documents", errs, chromedp.Evaluate[[]map[string]any](`interlude.documents()`, chromedp.EvalAwaitPromise))
	memberID := ""
	for _, d := range docs {
		if d["docId"] == doc.String() {
			memberID, _ = d["memberId"].(string)
		}
	}
	if memberID != invitations[0].Invitee {
		t.Errorf("invitee %s, want the page's member id in the journal %q", invitations[0].Invitee, memberID)
	}
	if memberID == pageID {
		t.Errorf("the page joined the journal under its device id %s", pageID)
	}
	state := get(t, ctx, "read the journal list", errs, chromedp.Evaluate[map[string]any](`({
		selected: document.getElementById("journal-select").value,
		listShown: document.getElementById("journal-select").checkVisibility(),
		readOnly: document.getElementById("entry").readOnly,
		joinWait: document.getElementById("join-wait").textContent,
		shareShown: document.getElementById("share-button").checkVisibility(),
		joinShown: document.getElementById("join-button").checkVisibility(),
	})`))
	if state["selected"] != doc.String() || state["listShown"] != true {
		t.Errorf("journal list = %v, want it shown with %s selected", state, doc)
	}
	if state["readOnly"] != false {
		t.Error("the joined journal is read-only, but the invitee is a writer")
	}
	if state["joinWait"] != "The journal you joined is open below." {
		t.Errorf("join section after arrival = %q, want it to say the journal is open", state["joinWait"])
	}
	if state["shareShown"] != false {
		t.Error("the page offers sharing and invitations for a journal where it is no admin")
	}
	if state["joinShown"] != false {
		t.Error("the join button still shows after the join")
	}
	notAdmin := get(t, ctx, "invite as a writer", errs, chromedp.Evaluate[string](
		fmt.Sprintf(`interlude.invite(%q).then(() => "resolved", (err) => err.name)`, doc), chromedp.EvalAwaitPromise))
	if notAdmin != "NotAdminError" {
		t.Errorf("invite of a journal where the page is a writer = %q, want it rejected with NotAdminError", notAdmin)
	}
	shot := get(t, ctx, "take a screenshot", errs, chromedp.FullScreenshot(100))
	saveScreenshot(t, "invitation-joined.png", shot)
	reply := "\n1. a walk " + randomMarker(t)
	do(t, ctx, "write in the joined journal", errs,
		chromedp.SendKeys(css("#entry"), reply),
		// The input handler marks the text unsaved before SendKeys
		// returns, so this waits for the save and its sync.
		chromedp.WaitVisible(css(`#save-state[data-state="synced"]`)),
	)
	syncGoDevice(t, therapist, "therapist")
	if got, err := therapist.Text(doc); err != nil || got != homework+reply {
		t.Errorf("therapist reads %q, %v; want the page's addition %q", got, err, homework+reply)
	}

	// 8. The page took the native client's response: its list shows
	//    the same code, and the client reads the page's journal.
	do(t, ctx, "wait for the native client's answer in the page", errs,
		selectJournal(ownJournal),
		chromedp.WaitVisible(css(`#invitations li[data-state="accepted"]`)),
		waitSynced(ownJournal),
	)
	accepted := get(t, ctx, "read the accepted invitation", errs, chromedp.Text(css(`#invitations li[data-state="accepted"]`)))
	syncGoDevice(t, friend, "invited native client")
	ownID, err := envelope.ParseDocID(ownJournal)
	if err != nil {
		t.Fatalf("journal id from the page: %v", err)
	}
	// The friend joined under its key for the page's journal.
	friendID, err := friend.MemberID(ownID)
	if err != nil {
		t.Fatalf("the invited native client lacks the page's journal: %v", err)
	}
	if !strings.Contains(accepted, friendCode) || !strings.Contains(accepted, friendID.Fingerprint()) {
		t.Errorf("accepted invitation = %q, want the code %q and fingerprint %s", accepted, friendCode, friendID.Fingerprint())
	}
	if got, err := friend.Text(ownID); err != nil || got != ownEntry {
		t.Errorf("invited native client reads %q, %v; want the page's journal %q", got, err, ownEntry)
	}

	// 9. The relay never received the link's secret.
	logs := relayLogs.Bytes()
	if len(logs) == 0 {
		t.Error("the relay wrote no logs; the check below would prove nothing")
	}
	if bytes.Contains(logs, []byte(secret)) {
		t.Error("relay logs contain the invitation link's secret")
	}
	errs.check(t)
}
