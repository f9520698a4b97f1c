//go:build !js

package browser

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"interlude/client"
	"interlude/client/keyring"
	"interlude/client/wstransport"
	"interlude/sync/envelope"
)

// clearRecoveryWords empties the recovery field, which chromedp.Clear
// does not do for a typed value.
var clearRecoveryWords = chromedp.Evaluate[chromedp.Void](`document.getElementById("recover-words").value = ""`)

// TestRecoveryPhraseFromPage makes a recovery phrase in the page. The
// words must show once, with the warning, and leave the page when the
// person confirms they wrote them down. A native client must recover with the
// words as the command does, through client.RecoveryIdentity on a store in
// memory, and read the journal. A second browser must reject a short
// phrase, two swapped words and a word not in the list, each with a
// message that names what to fix, and then recover the journal with the
// phrase typed in capitals.
func TestRecoveryPhraseFromPage(t *testing.T) {
	requireChromium(t)
	app := buildApp(t)
	base, _, _ := serveAppFromRelay(t, app)
	relayURL := "ws://" + strings.TrimPrefix(base, "http://") + "/v1/sync"
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	bg := context.Background()

	// 1. The page writes a journal entry and syncs it.
	ctx := newBrowser(t)
	errs := watchPageErrors(t, ctx)
	entry := "slept well after the walk " + randomMarker(t)
	do(t, ctx, "start and write in the journal", errs,
		chromedp.Navigate(base+"/"),
		skipPassphrase(),
		chromedp.WaitEnabled(css("#entry")),
		chromedp.WaitVisible(css(`#connection[data-state="connected"]`)),
		chromedp.SendKeys(css("#entry"), entry),
		chromedp.WaitVisible(css(`#save-state[data-state="synced"]`)),
	)
	journal := get(t, ctx, "read the journal's id", errs, chromedp.Evaluate[string](`interlude.journal()`, chromedp.EvalAwaitPromise))
	journalID, err := envelope.ParseDocID(journal)
	if err != nil {
		t.Fatalf("journal id from the page: %v", err)
	}
	pageID := get(t, ctx, "read the page's public id", errs, chromedp.Value(css("#public-id")))
	pageDevice, err := client.ParsePublicID(pageID)
	if err != nil {
		t.Fatalf("the page shows an invalid public id %q: %v", pageID, err)
	}

	// 2. The page makes a phrase, shows its words with the warning, and
	//    links the recovery device it derives.
	do(t, ctx, "make a recovery phrase", errs,
		chromedp.Click(css("#recovery-make")),
		chromedp.WaitVisible(css("#recovery-box")),
	)
	words := get(t, ctx, "read the recovery words", errs, chromedp.Evaluate[string](
		`[...document.querySelectorAll("#recovery-words li")].map((li) => li.textContent).join(" ")`))
	if n := len(strings.Fields(words)); n != keyring.RecoveryPhraseWords {
		t.Fatalf("the page shows %d recovery words, want %d", n, keyring.RecoveryPhraseWords)
	}
	phrase, err := keyring.ParseRecoveryPhrase(words)
	if err != nil {
		t.Fatalf("the page's recovery words do not parse: %v", err)
	}
	recoveryID, err := client.RecoveryIdentity(phrase)
	if err != nil {
		t.Fatalf("RecoveryIdentity: %v", err)
	}
	recoveryFingerprint := recoveryID.Public().Fingerprint()
	boxText := get(t, ctx, "read the recovery warning", errs, chromedp.Text(css("#recovery-box")))
	for _, want := range []string{"on paper", "Anyone who has them can read your journals", "shown only this once", "lose every device and these words", recoveryFingerprint} {
		if !strings.Contains(boxText, want) {
			t.Errorf("recovery box = %q, want it to contain %q", boxText, want)
		}
	}
	shot := get(t, ctx, "take a screenshot", errs, chromedp.FullScreenshot(100))
	saveScreenshot(t, "recovery-phrase.png", shot)
	do(t, ctx, "wait for the recovery device's link to sync", errs,
		chromedp.WaitVisible(css(fmt.Sprintf(`#linked-list li[data-public-id=%q]`, recoveryID.PublicID()))),
		waitSynced(journal),
	)
	listed := get(t, ctx, "read the linked recovery device", errs, chromedp.Text(css(fmt.Sprintf(`#linked-list li[data-public-id=%q] span`, recoveryID.PublicID()))))
	if listed != "Recovery phrase "+recoveryFingerprint {
		t.Errorf("linked device entry = %q, want it named as recovery phrase %s", listed, recoveryFingerprint)
	}

	// 3. Once the person has written them down, the words leave the page.
	do(t, ctx, "hide the recovery words", errs,
		chromedp.Click(css("#recovery-done")),
		chromedp.WaitNotVisible(css("#recovery-box")),
	)
	if html := get(t, ctx, "read the page", errs, chromedp.Evaluate[string](`document.documentElement.outerHTML`)); strings.Contains(html, words) {
		t.Error("the page still contains the recovery words after they were hidden")
	}

	// 4. A native client recovers as 'interlude device recover' does.
	newDevice := openGoDevice(t, relayURL)
	recovery, err := client.Open(bg, client.Config{
		Store: client.NewMemoryStore(), Identity: recoveryID, Dialer: wstransport.Dialer{}, RelayURL: relayURL,
	})
	if err != nil {
		t.Fatalf("open the recovery client: %v", err)
	}
	defer recovery.Close()
	handCtx, cancel := context.WithTimeout(bg, waitLimit)
	defer cancel()
	n, err := recovery.HandOver(handCtx, newDevice)
	if err != nil {
		t.Fatalf("recovery HandOver: %v", err)
	}
	if n != 1 {
		t.Errorf("the recovery device offered the new device %d documents, want the page's 1 journal", n)
	}
	// The recovery device is a member under a key of its own for the
	// journal, not its device key.
	if id, err := recovery.MemberID(journalID); err != nil || bytes.Equal(id.Sign, recoveryID.Public().Sign) {
		t.Errorf("the recovery device is a member of the journal under %v (err %v), want a key for the journal", id, err)
	}
	if got, err := newDevice.Text(journalID); err != nil || got != entry {
		t.Errorf("new device reads %q, %v; want the page's journal %q", got, err, entry)
	}
	errs.check(t)

	// 5. A second browser rejects mistyped phrases, naming what to fix,
	//    and keeps the typed words so one can be corrected.
	other := newBrowser(t)
	otherErrs := watchPageErrors(t, other)
	do(t, other, "load the page on a new device", otherErrs,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(css("#setup-skip")),
	)
	// Before start, the calls reject as the others do.
	for _, call := range []string{
		fmt.Sprintf(`interlude.recover(%q)`, words),
		`interlude.makeRecoveryPhrase()`,
		fmt.Sprintf(`interlude.acceptInvite(%q)`, base+"/#invite=abc"),
		`interlude.documents()`,
	} {
		got := get(t, other, "call "+call+" before start", otherErrs, chromedp.Evaluate[string](
			call+`.then(() => "resolved", (err) => err.name)`, chromedp.EvalAwaitPromise))
		if got != "NotStartedError" {
			t.Errorf("%s before start = %q, want it rejected with NotStartedError", strings.Replace(call, words, "WORDS", 1), got)
		}
	}
	do(t, other, "start the new device", otherErrs,
		skipPassphrase(),
		chromedp.WaitEnabled(css("#recover-words")),
	)
	list := strings.Fields(words)
	swapAt := 0
	for list[swapAt] == list[swapAt+1] {
		swapAt++
	}
	swapped := append([]string(nil), list...)
	swapped[swapAt], swapped[swapAt+1] = swapped[swapAt+1], swapped[swapAt]
	badPhrases := []struct {
		name  string
		typed string
		want  string
	}{
		{"five words", strings.Join(list[:5], " "), fmt.Sprintf("You typed 5 words, but a recovery phrase has %d.", keyring.RecoveryPhraseWords)},
		{"two words swapped", strings.Join(swapped, " "), "a word is wrong or two words are swapped"},
		{"a word not in the list", strings.Join(append([]string{"interludexyz"}, list[1:]...), " "), "A word is not one of the recovery phrase words."},
	}
	for _, bp := range badPhrases {
		do(t, other, "recover with "+bp.name, otherErrs,
			clearRecoveryWords,
			chromedp.SendKeys(css("#recover-words"), bp.typed),
			chromedp.Click(css("#recover-button")),
			chromedp.Poll[chromedp.Void](`document.getElementById("recover-words").disabled === false && document.getElementById("recover-state").textContent !== "Recovering your journals…"`, chromedp.WithPollingTimeout(0)),
		)
		state := get(t, other, "read the recovery state", otherErrs, chromedp.Text(css("#recover-state")))
		if !strings.Contains(state, bp.want) {
			t.Errorf("recovery with %s: page shows %q, want it to contain %q", bp.name, state, bp.want)
		}
		fieldValue := get(t, other, "read the recovery field", otherErrs, chromedp.Value(css("#recover-words")))
		if fieldValue != bp.typed {
			t.Errorf("recovery with %s: field contains %q after the error, want the typed words kept", bp.name, fieldValue)
		}
	}
	typeErr := get(t, other, "call recover with a number", otherErrs, chromedp.Evaluate[string](
		`interlude.recover(42).then(() => "resolved", (err) => err.name)`, chromedp.EvalAwaitPromise))
	if typeErr != "TypeError" {
		t.Errorf("recover(42) = %q, want it rejected with TypeError", typeErr)
	}

	// 6. The phrase as a person might type it recovers the journal.
	typed := "  " + strings.ToUpper(strings.Join(list, "  ")) + " "
	do(t, other, "recover with the phrase", otherErrs,
		clearRecoveryWords,
		chromedp.SendKeys(css("#recover-words"), typed),
		chromedp.Click(css("#recover-button")),
		chromedp.Poll[chromedp.Void](`document.getElementById("recover-state").textContent.startsWith("This device now has 1 journal")`, chromedp.WithPollingTimeout(0)),
		chromedp.WaitVisible(css("#journal-choice")),
		selectJournal(journal),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.getElementById("entry").value === %q`, entry), chromedp.WithPollingTimeout(0)),
	)
	if left := get(t, other, "read the recovery field", otherErrs, chromedp.Value(css("#recover-words"))); left != "" {
		t.Errorf("recovery field contains %q after a recovery, want it empty", left)
	}

	// 7. The first page's device, which held the journal before, is
	//    listed as a previous device, and removing it takes it out.
	firstKey := get(t, ctx, "read the first page's key for the journal", errs, chromedp.Evaluate[string](
		fmt.Sprintf(`interlude.members(%q).then((ms) => ms.find((m) => m.you).publicID)`, journal), chromedp.EvalAwaitPromise))
	isMemberKey := func(key string) bool {
		t.Helper()
		syncGoDevice(t, newDevice, "new device")
		members, err := newDevice.Members(journalID)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range members {
			if id := (client.PublicID{Sign: m.Sign[:], Box: m.Box}); id.String() == key {
				return true
			}
		}
		return false
	}
	if !isMemberKey(firstKey) {
		t.Fatalf("the first page's key %q is no member before its removal; the check below would prove nothing", firstKey)
	}
	previous := fmt.Sprintf(`#linked-list li[data-public-id=%q]`, pageID)
	do(t, other, "find the previous device", otherErrs, chromedp.WaitVisible(css(previous)))
	label := get(t, other, "read the previous device's entry", otherErrs, chromedp.Text(css(previous+" span")))
	if !strings.HasPrefix(label, "Previous device "+pageDevice.Fingerprint()) {
		t.Errorf("previous device entry = %q, want it named with fingerprint %s", label, pageDevice.Fingerprint())
	}
	do(t, other, "remove the previous device", otherErrs,
		chromedp.Click(css(previous+" button")),
		chromedp.WaitVisible(css("#unlink-confirm")),
		chromedp.Click(css("#unlink-confirm-button")),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.getElementById("unlink-state").textContent.includes(%q)`, "Removed device "+pageDevice.Fingerprint()), chromedp.WithPollingTimeout(0)),
		chromedp.WaitNotPresent(css(previous)),
	)
	// The native device of step 4 is another device of the person that
	// this browser cannot match, so the page asks to check the journal.
	// The first page's key for the journal itself is removed.
	do(t, other, "wait for the removal to sync", otherErrs, waitSynced(journal))
	if isMemberKey(firstKey) {
		t.Error("the first page's key for the journal is still a member after its removal")
	}
	otherErrs.check(t)
}

// TestRecoveryBackupFromPage makes a recovery phrase in the page and has
// the server keep it under a backup passphrase, refusing a short one and
// two that differ. A second browser then recovers the journal with the
// passphrase alone, after a wrong one finds no backup.
func TestRecoveryBackupFromPage(t *testing.T) {
	requireChromium(t)
	app := buildApp(t)
	base, _, _ := serveAppFromRelay(t, app)
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }

	ctx := newBrowser(t)
	errs := watchPageErrors(t, ctx)
	entry := "three good things today " + randomMarker(t)
	pass := "the tram stops by the old mill " + randomMarker(t)
	do(t, ctx, "write, make a phrase and try a short backup passphrase", errs,
		chromedp.Navigate(base+"/"),
		skipPassphrase(),
		chromedp.WaitEnabled(css("#entry")),
		chromedp.WaitVisible(css(`#connection[data-state="connected"]`)),
		chromedp.SendKeys(css("#entry"), entry),
		chromedp.WaitVisible(css(`#save-state[data-state="synced"]`)),
		chromedp.Click(css("#recovery-make")),
		chromedp.WaitVisible(css("#recovery-backup-form")),
		chromedp.SendKeys(css("#recovery-backup-pass"), "too short"),
		chromedp.SendKeys(css("#recovery-backup-confirm"), "too short"),
		chromedp.Click(css("#recovery-backup-button")),
		chromedp.Poll[chromedp.Void](`document.getElementById("recovery-backup-state").textContent.includes("at least 12 characters")`, chromedp.WithPollingTimeout(0)),
	)
	journal := get(t, ctx, "read the journal's id", errs, chromedp.Evaluate[string](`interlude.journal()`, chromedp.EvalAwaitPromise))
	do(t, ctx, "try two different passphrases, then keep the words", errs,
		chromedp.Evaluate[chromedp.Void](`document.getElementById("recovery-backup-pass").value = ""; document.getElementById("recovery-backup-confirm").value = ""`),
		chromedp.SendKeys(css("#recovery-backup-pass"), pass),
		chromedp.SendKeys(css("#recovery-backup-confirm"), pass+"!"),
		chromedp.Click(css("#recovery-backup-button")),
		chromedp.Poll[chromedp.Void](`document.getElementById("recovery-backup-state").textContent.includes("differ")`, chromedp.WithPollingTimeout(0)),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("recovery-backup-confirm").value = ""`),
		chromedp.SendKeys(css("#recovery-backup-confirm"), pass),
		chromedp.Click(css("#recovery-backup-button")),
		chromedp.Poll[chromedp.Void](`document.getElementById("recovery-backup-state").textContent.includes("now keeps your words")`, chromedp.WithPollingTimeout(0)),
		chromedp.Click(css("#recovery-done")),
		chromedp.WaitNotVisible(css("#recovery-box")),
	)
	if left := get(t, ctx, "read the backup passphrase field", errs, chromedp.Value(css("#recovery-backup-pass"))); left != "" {
		t.Error("the backup passphrase stays in its field after the backup")
	}
	errs.check(t)

	other := newBrowser(t)
	otherErrs := watchPageErrors(t, other)
	do(t, other, "try a wrong passphrase on a new device", otherErrs,
		chromedp.Navigate(base+"/"),
		skipPassphrase(),
		chromedp.WaitEnabled(css("#recover-pass")),
		chromedp.SendKeys(css("#recover-pass"), pass+" but wrong"),
		chromedp.Click(css("#recover-pass-button")),
		chromedp.Poll[chromedp.Void](`document.getElementById("recover-state").textContent.includes("keeps no backup")`, chromedp.WithPollingTimeout(0)),
	)
	do(t, other, "recover with the backup passphrase", otherErrs,
		chromedp.Evaluate[chromedp.Void](`document.getElementById("recover-pass").value = ""`),
		chromedp.SendKeys(css("#recover-pass"), pass),
		chromedp.Click(css("#recover-pass-button")),
		chromedp.Poll[chromedp.Void](`document.getElementById("recover-state").textContent.startsWith("This device now has 1 journal")`, chromedp.WithPollingTimeout(0)),
		chromedp.WaitVisible(css("#journal-choice")),
		selectJournal(journal),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.getElementById("entry").value === %q`, entry), chromedp.WithPollingTimeout(0)),
	)
	otherErrs.check(t)
}
