// The Interlude page: loads the WebAssembly client (interlude.wasm), which
// sets globalThis.interlude, and connects the journal's textarea, the
// sync status, the share and invitation forms, invitation links opened in
// the page, the person's linked devices and the recovery phrase to it.
// All text shown comes from strings.js.
"use strict";

(() => {
  const S = globalThis.interludeStrings;
  const $ = (id) => document.getElementById(id);

  // Edits are saved this long after the last keystroke, so a burst of
  // typing becomes one update instead of one per character.
  const SAVE_DELAY_MS = 300;

  // Only one tab may run the client: two tabs on one IndexedDB database
  // would each keep their own copy of the documents in memory and
  // overwrite each other's records.
  const TAB_LOCK = "interlude-client";
  // How long the page shows "Connecting…" before it calls itself offline.
  const CONNECTING_MS = 4000;

  // The idle lock's default, and the shortest passphrase the page accepts
  // when a person sets one.
  const IDLE_LOCK_MS = 15 * 60 * 1000;
  const MIN_PASSPHRASE_LENGTH = 8;
  // Moving the mouse or scrolling is reported to the client at most this
  // often, because those events fire many times a second.
  const ACTIVITY_REPORT_MS = 1000;
  // The journal list names a journal by its first line, cut to this many
  // characters.
  const TITLE_LENGTH = 40;

  const entry = $("entry");
  const saveState = $("save-state");
  const connection = $("connection");

  let journalID = ""; // the journal the textarea shows
  let ownJournalID = ""; // the device's own journal, which journal() returns
  let journals = []; // [{docId, role}] as documents() last resolved
  // The document ids on this device when a join succeeded, until a new
  // one, the joined journal, arrives and is opened.
  let joinedBefore = null;
  // The text the textarea last loaded from, or saved to, the document.
  // Saves send it with the new text, so edits that reached the document
  // meanwhile are kept around the local change rather than overwritten.
  let base = "";
  let dirty = false; // the textarea has edits not yet passed to setText
  let saving = null; // the Promise of the setText in flight
  let saveTimer = 0;
  let saveError = null; // the last setText failure, until a save succeeds
  let firstAttemptOver = false; // connected once, or CONNECTING_MS passed

  // Passphrase protection. While locked the editor is disabled and empty.
  // Text typed but not saved when the lock came is kept in heldText, out
  // of the textarea, and saved after unlock.
  let encrypted = false;
  let locked = false;
  let heldText = null;
  let unlockWith = null; // what the lock screen's form calls with a passphrase
  let lastActivityReport = 0;

  // Linked devices. The confirm steps keep the values they show, so a
  // field edited while a confirmation is open never reaches the client
  // unconfirmed: editing it closes the confirmation.
  let pendingLink = null; // {publicID, fingerprint} the link confirmation shows
  let pendingUnlink = null; // {publicID, fingerprint} the removal confirmation shows
  let shownDevices = null; // the public ids the list shows, or null before it is drawn
  let shownRequests = null; // the link requests the list shows, or null before it is drawn

  applyStrings();
  main().catch((err) => {
    console.error("interlude: start failed:", err);
    showGate(null);
    showNotice(S.loadFailed);
    setSaveState("error", S.loadFailed);
  });

  async function main() {
    await acquireTabLock();
    await loadClient();
    const options = { relay: relayURL(), idleTimeout: idleTimeoutMs() };
    $("lock-form").addEventListener("submit", submitPassphrase);
    globalThis.interlude.onLock(onLocked);

    const state = await globalThis.interlude.storeState();
    let info;
    if (state === "encrypted") {
      info = await askPassphrase((passphrase) => globalThis.interlude.start({ ...options, passphrase }));
    } else if (state === "new") {
      info = await setUp(options);
    } else {
      info = await globalThis.interlude.start(options);
    }
    encrypted = info.encrypted;
    if (!encrypted) {
      $("protect-help").textContent = S.protectHelp(Math.round(options.idleTimeout / 1000));
      $("protect").hidden = false;
      $("protect-form").addEventListener("submit", protectDevice);
    }
    $("public-id").value = info.publicID;
    $("fingerprint").textContent = S.fingerprintLabel(info.fingerprint);

    // Until the first connection succeeds or this much time passes, the
    // page shows "connecting" rather than "offline".
    setTimeout(() => {
      firstAttemptOver = true;
      renderStatus();
    }, CONNECTING_MS);

    globalThis.interlude.onChange(onChange);
    entry.addEventListener("input", onInput);
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "hidden") flush();
      else reportActivity(true);
    });
    window.addEventListener("pagehide", flush);
    window.addEventListener("beforeunload", (event) => {
      if (!dirty && !saving && heldText === null) return;
      flush();
      event.preventDefault();
      event.returnValue = S.unsavedWarning;
    });
    for (const type of ["keydown", "pointerdown", "touchstart"]) {
      document.addEventListener(type, () => reportActivity(true), { capture: true, passive: true });
    }
    for (const type of ["pointermove", "wheel", "scroll"]) {
      document.addEventListener(type, () => reportActivity(false), { capture: true, passive: true });
    }
    $("copy-id").addEventListener("click", copyPublicID);
    $("share-form").addEventListener("submit", share);
    $("link-form").addEventListener("submit", askLink);
    $("person-show").addEventListener("click", showPerson);
    $("link-confirm-button").addEventListener("click", confirmLink);
    $("link-cancel").addEventListener("click", hideLinkConfirm);
    $("link-id").addEventListener("input", hideLinkConfirm);
    $("link-fingerprint").addEventListener("input", hideLinkConfirm);
    $("unlink-confirm-button").addEventListener("click", confirmUnlink);
    $("unlink-cancel").addEventListener("click", hideUnlinkConfirm);
    $("lock-now").addEventListener("click", lockNow);
    $("journal-select").addEventListener("change", () => openJournal($("journal-select").value));
    $("join-button").addEventListener("click", join);
    $("join-cancel").addEventListener("click", cancelJoin);
    window.addEventListener("hashchange", showJoin);
    $("invite-button").addEventListener("click", invite);
    $("invite-copy").addEventListener("click", () => copyField($("invite-link"), $("invite-state"), S.copyLinkFailed));
    $("recovery-make").addEventListener("click", makeRecoveryPhrase);
    $("recovery-done").addEventListener("click", () => {
      hideRecoveryWords();
      $("recovery-state").textContent = S.recoveryHidden;
    });
    $("recover-form").addEventListener("submit", recover);
    $("recovery-backup-form").addEventListener("submit", storeRecoveryBackup);
    $("recover-backup-form").addEventListener("submit", recoverFromBackup);
    await showJournal();
  }

  // The idle lock's timeout: IDLE_LOCK_MS, or the "lockAfterSeconds"
  // query parameter when it is shorter. A link can shorten the lock but
  // never lengthen it.
  function idleTimeoutMs() {
    const seconds = Number(new URLSearchParams(location.search).get("lockAfterSeconds"));
    if (Number.isFinite(seconds) && seconds > 0) return Math.min(seconds * 1000, IDLE_LOCK_MS);
    return IDLE_LOCK_MS;
  }

  // Shows "gate", the setup or the lock screen, in place of the journal,
  // or the journal when gate is null.
  function showGate(gate) {
    $("setup").hidden = gate !== "setup";
    $("lock").hidden = gate !== "lock";
    $("workspace").hidden = gate !== null;
    $("lock-now").hidden = gate !== null || !encrypted;
    connection.hidden = gate !== null;
    if (gate === "setup") $("setup-passphrase").focus();
    if (gate === "lock") $("lock-passphrase").focus();
  }

  function setEditable(on) {
    const ids = ["entry", "copy-id", "person-show", "share-id", "share-button", "link-id", "link-fingerprint", "link-button",
      "journal-select", "join-button", "invite-button", "recovery-make", "recover-words", "recover-button",
      "recover-pass", "recover-pass-button"];
    for (const id of ids) {
      $(id).disabled = !on;
    }
    for (const button of document.querySelectorAll("#linked-list button, #link-requests button")) {
      button.disabled = !on;
    }
  }

  // Shows the setup screen on a new device and resolves with start's
  // result, with the passphrase the person chose or without one.
  function setUp(options) {
    $("setup-help").textContent = S.setupHelp(Math.round(options.idleTimeout / 1000));
    showGate("setup");
    return new Promise((resolve, reject) => {
      const form = $("setup-form");
      const first = $("setup-passphrase");
      const second = $("setup-confirm");
      const state = $("setup-state");
      const buttons = [$("setup-protect"), $("setup-skip")];
      const run = async (passphrase) => {
        for (const b of buttons) b.disabled = true;
        state.textContent = passphrase === undefined ? S.loading : S.protecting;
        try {
          resolve(await globalThis.interlude.start({ ...options, passphrase }));
        } catch (err) {
          reject(err);
        }
      };
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        let passphrase = takeNewPassphrase(first, second, state);
        if (passphrase === null) return;
        run(passphrase);
        passphrase = "";
      });
      $("setup-skip").addEventListener("click", () => {
        first.value = "";
        second.value = "";
        run(undefined);
      });
    });
  }

  // Returns the new passphrase typed in the fields first and second, or
  // null after showing in state why it is not accepted. The fields are
  // emptied first, so the passphrase stays in no element of the page once
  // it is passed on.
  function takeNewPassphrase(first, second, state) {
    const passphrase = first.value;
    const again = second.value;
    first.value = "";
    second.value = "";
    if (passphrase.length < MIN_PASSPHRASE_LENGTH) {
      state.textContent = S.passphraseTooShort(MIN_PASSPHRASE_LENGTH);
      first.focus();
      return null;
    }
    if (passphrase !== again) {
      state.textContent = S.passphraseMismatch;
      first.focus();
      return null;
    }
    return passphrase;
  }

  // Encrypts a device set up without a passphrase under the one typed in
  // the devices section. The page then locks as on a device set up with a
  // passphrase.
  async function protectDevice(event) {
    event.preventDefault();
    const state = $("protect-state");
    let passphrase = takeNewPassphrase($("protect-passphrase"), $("protect-confirm"), state);
    if (passphrase === null) return;
    const controls = [$("protect-passphrase"), $("protect-confirm"), $("protect-button")];
    for (const c of controls) c.disabled = true;
    setEditable(false);
    state.textContent = S.protecting;
    // The client stops while it copies, so the last edits are saved first.
    await flush();
    try {
      await globalThis.interlude.encryptDevice(passphrase);
      encrypted = true;
      $("protect").hidden = true;
      showGate(null);
      state.textContent = S.protectDone;
      reportActivity(true);
    } catch (err) {
      console.error("interlude: encrypting this device failed:", err);
      state.textContent = S.protectFailed;
      // encryptDevice starts the client again without a passphrase after
      // a failed copy; without a client the page cannot go on.
      if (!globalThis.interlude.publicID()) showNotice(S.loadFailed);
    } finally {
      passphrase = "";
      for (const c of controls) c.disabled = false;
      if (!locked) setEditable(true);
    }
  }

  // Shows the lock screen until action(passphrase) succeeds, and resolves
  // with its result.
  function askPassphrase(action) {
    $("held-notice").hidden = heldText === null;
    $("lock-state").textContent = "";
    showGate("lock");
    return new Promise((resolve) => {
      unlockWith = async (passphrase) => {
        const result = await action(passphrase);
        unlockWith = null;
        resolve(result);
      };
    });
  }

  async function submitPassphrase(event) {
    event.preventDefault();
    const field = $("lock-passphrase");
    const button = $("lock-button");
    const state = $("lock-state");
    let passphrase = field.value;
    field.value = "";
    if (!passphrase) {
      state.textContent = S.lockedNeedPassphrase;
      field.focus();
      return;
    }
    if (!unlockWith) return;

    field.disabled = true;
    button.disabled = true;
    state.textContent = S.unlocking;
    try {
      await unlockWith(passphrase);
      state.textContent = "";
    } catch (err) {
      if (err.name === "WrongPassphraseError") {
        state.textContent = S.wrongPassphrase;
      } else {
        console.error("interlude: unlock failed:", err);
        state.textContent = S.unlockFailed;
      }
    } finally {
      passphrase = "";
      field.disabled = false;
      button.disabled = false;
      if (unlockWith) field.focus();
    }
  }

  // Runs after the client locked, when idle or asked to. A save that was
  // running finished first; text typed since then is held until unlock.
  function onLocked() {
    if (locked) return;
    locked = true;
    clearTimeout(saveTimer);
    if (dirty || saving) heldText = entry.value;
    entry.value = "";
    setEditable(false);
    $("problems").hidden = true;
    $("share-state").textContent = "";
    // The journal list shows first lines of journals, and the invitation
    // link and the recovery words are secrets: none stays in the page.
    journals = [];
    $("journal-select").replaceChildren();
    hideInviteResult();
    $("invite-state").textContent = "";
    $("invitations").replaceChildren();
    $("members-list").replaceChildren();
    $("members-state").textContent = "";
    hideRecoveryWords();
    $("recovery-state").textContent = "";
    $("recover-words").value = "";
    $("recover-pass").value = "";
    $("recover-state").textContent = "";
    resetDevices();
    askPassphrase((passphrase) => globalThis.interlude.unlock(passphrase))
      .then(() => {
        locked = false;
        return showJournal();
      })
      .catch((err) => {
        console.error("interlude: reopening the journal after unlock failed:", err);
        showNotice(S.loadFailed);
      });
  }

  // Shows the journal, after start or unlock, and saves any held text.
  // After unlock it is the journal that was open at the lock.
  async function showJournal() {
    try {
      ownJournalID = await globalThis.interlude.journal();
      await refreshJournals();
    } catch (err) {
      // A lock that came before the journal was read has shown the lock
      // screen, and unlock calls this again.
      if (err.name === "LockedError") return;
      throw err;
    }
    if (locked) return;
    if (!journals.some((j) => j.docId === journalID)) journalID = ownJournalID;
    renderJournalChoice();
    if (heldText !== null) {
      // base stays the text the held edit started from, so the save
      // merges it with what arrived while the page was locked.
      entry.value = heldText;
      heldText = null;
      dirty = true;
    } else {
      const text = globalThis.interlude.text(journalID);
      entry.value = typeof text === "string" ? text : "";
      base = entry.value;
      dirty = false;
    }
    saveError = null;
    showGate(null);
    setEditable(true);
    applyRole();
    if (dirty) flush();
    renderStatus();
    refreshDevices();
    refreshInvitations();
    refreshMembers();
    showJoin();
  }

  async function lockNow() {
    await flush();
    try {
      await globalThis.interlude.lock();
    } catch (err) {
      console.error("interlude: lock failed:", err);
      showNotice(S.lockFailed);
    }
  }

  // Tells the client that the person is using the page, which delays the
  // idle lock. Keys and clicks are always reported, so with an idle
  // timeout longer than SAVE_DELAY_MS the lock comes after the save that
  // the last key starts.
  function reportActivity(always) {
    if (!encrypted || locked) return;
    const now = Date.now();
    if (!always && now - lastActivityReport < ACTIVITY_REPORT_MS) return;
    lastActivityReport = now;
    globalThis.interlude.activity();
  }

  function applyStrings() {
    document.documentElement.lang = S.lang;
    document.title = S.title;
    for (const el of document.querySelectorAll("[data-text]")) {
      el.textContent = S[el.dataset.text];
    }
    for (const el of document.querySelectorAll("[data-placeholder]")) {
      el.placeholder = S[el.dataset.placeholder];
    }
    setSaveState("loading", S.loading);
    setConnection(null);
  }

  // The relay's address: the "relay" query parameter when present, else
  // the server that sent this page.
  function relayURL() {
    const param = new URLSearchParams(location.search).get("relay");
    if (param) return param;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}/v1/sync`;
  }

  // Resolves once this tab holds the lock, waiting while another tab has it.
  function acquireTabLock() {
    return new Promise((resolve) => {
      if (!navigator.locks) {
        resolve();
        return;
      }
      const hold = () => {
        hideNotice();
        resolve();
        // The lock is held until the page goes away.
        return new Promise(() => {});
      };
      navigator.locks.request(TAB_LOCK, { ifAvailable: true }, (lock) => {
        if (lock) return hold();
        showNotice(S.otherTab);
        setSaveState("loading", S.otherTab);
        navigator.locks.request(TAB_LOCK, hold);
        return undefined;
      });
    });
  }

  async function loadClient() {
    const go = new Go();
    const ready = new Promise((resolve) => {
      globalThis.addEventListener("interlude-ready", resolve, { once: true });
    });
    let result;
    try {
      result = await WebAssembly.instantiateStreaming(fetch("interlude.wasm"), go.importObject);
    } catch (err) {
      // Streaming compilation needs the application/wasm content type,
      // which some servers do not send.
      console.warn("interlude: streaming compile failed, retrying:", err);
      const resp = await fetch("interlude.wasm");
      if (!resp.ok) throw new Error(`interlude.wasm: HTTP ${resp.status}`);
      result = await WebAssembly.instantiate(await resp.arrayBuffer(), go.importObject);
    }
    go.run(result.instance).then(() => {
      // The client never exits on its own, so this is a crash.
      showNotice(S.stopped);
      setSaveState("error", S.stopped);
      entry.disabled = true;
    });
    await ready;
  }

  function onInput() {
    dirty = true;
    setSaveState("saving", S.saving);
    clearTimeout(saveTimer);
    saveTimer = setTimeout(flush, SAVE_DELAY_MS);
  }

  // Saves the textarea now. Saves run one at a time, in order, so an older
  // text never lands after a newer one.
  async function flush() {
    clearTimeout(saveTimer);
    while (saving) await saving;
    if (!dirty || !journalID || locked) return;

    dirty = false;
    const next = entry.value;
    saving = globalThis.interlude.setText(journalID, next, base).then(
      () => {
        base = next;
        saveError = null;
      },
      (err) => {
        // The text stays marked unsaved, so the next keystroke or flush
        // tries again. A lock that came first is no failure: onLocked
        // keeps the text and showJournal saves it after unlock.
        dirty = true;
        if (err.name === "LockedError") return;
        console.error("interlude: save failed:", err);
        saveError = err;
      },
    );
    await saving;
    saving = null;
    renderStatus();
  }

  function onChange(docID) {
    if (locked) return;
    // A change may come from a link made on this device in another tab.
    refreshDevices();
    // A document not listed yet has just arrived, and a change to the open
    // one may have changed this device's role in it.
    if (docID === journalID || !journals.some((j) => j.docId === docID)) {
      refreshJournals().catch(logUnlessLocked("reading the journal list"));
    } else {
      renderJournalChoice();
    }
    if (docID !== journalID) return;
    // While local edits wait for their save, the textarea keeps them; the
    // save merges them with what arrived, and this refresh follows it.
    if (!dirty && !saving) {
      const text = globalThis.interlude.text(journalID);
      if (typeof text === "string" && text !== entry.value) replaceText(text);
    }
    renderStatus();
    checkReports();
    refreshInvitations();
    refreshMembers();
  }

  // Shows a warning when this device found problems in what the relay
  // delivered. Checks run one at a time, so a burst of changes makes one.
  let checkingReports = false;
  async function checkReports() {
    if (checkingReports || !journalID || locked) return;
    checkingReports = true;
    try {
      const reports = await globalThis.interlude.reports(journalID);
      const problems = $("problems");
      problems.hidden = reports.length === 0;
      if (reports.length > 0) problems.textContent = S.relayProblems(reports.length);
    } catch (err) {
      if (err.name !== "LockedError") console.error("interlude: reading problem reports failed:", err);
    } finally {
      checkingReports = false;
    }
  }

  // Puts a remote version of the text into the textarea, keeping the
  // cursor where it was relative to the text around it. A cursor at the
  // end stays at the end, where a journal grows, also when the textarea
  // was empty before the text arrived.
  function replaceText(next) {
    const prev = entry.value;
    const { selectionStart: start, selectionEnd: end } = entry;
    let common = 0;
    while (common < prev.length && common < next.length && prev[common] === next[common]) common++;
    const shift = next.length - prev.length;
    const move = (pos) => {
      if (pos === prev.length) return next.length;
      return pos <= common ? pos : Math.max(common, pos + shift);
    };
    entry.value = next;
    base = next;
    entry.setSelectionRange(move(start), move(end));
  }

  function renderStatus() {
    if (!journalID || locked) return;
    const status = globalThis.interlude.status(journalID);
    if (status.connected) firstAttemptOver = true;
    setConnection(status.connected || firstAttemptOver ? status.connected : null);
    if (saveError) {
      setSaveState("error", saveError.name === "QuotaExceededError" ? S.quotaFull : S.notSaved);
    } else if (dirty || saving) {
      setSaveState("saving", S.saving);
    } else if (status.state === "waiting") {
      setSaveState("waiting", S.waiting(status.pending));
    } else if (status.state === "synced") {
      setSaveState("synced", S.synced);
    } else {
      setSaveState("saved", S.saved);
    }
  }

  function setSaveState(state, text) {
    saveState.dataset.state = state;
    saveState.textContent = text;
  }

  // connected is true, false, or null before the first attempt has ended.
  function setConnection(connected) {
    if (connected === null) {
      connection.dataset.state = "connecting";
      connection.textContent = S.connecting;
      return;
    }
    connection.dataset.state = connected ? "connected" : "disconnected";
    connection.textContent = connected ? S.connected : S.disconnected;
  }

  function showNotice(text) {
    const notice = $("notice");
    notice.textContent = text;
    notice.hidden = false;
  }

  function hideNotice() {
    $("notice").hidden = true;
  }

  function copyPublicID() {
    return copyField($("public-id"), $("copy-state"), S.copyFailed);
  }

  // Copies a read-only field's value and reports in state whether it worked.
  async function copyField(field, state, failed) {
    try {
      await navigator.clipboard.writeText(field.value);
      state.textContent = S.copied;
    } catch {
      // The Clipboard API needs a secure context (https or localhost).
      field.select();
      state.textContent = document.execCommand("copy") ? S.copied : failed;
    }
  }

  async function share(event) {
    event.preventDefault();
    const input = $("share-id");
    const button = $("share-button");
    const state = $("share-state");
    const publicID = input.value.trim();
    if (!publicID) return;

    button.disabled = true;
    state.textContent = S.sharing;
    try {
      const result = await globalThis.interlude.share(journalID, publicID);
      state.textContent = result.person ? S.sharedPerson : S.shared(result.fingerprint);
      input.value = "";
    } catch (err) {
      // A mistyped id and a device that has the journal are the
      // person's to fix; anything else is logged.
      if (err.name === "InvalidPublicIDError") state.textContent = S.shareInvalid;
      else if (err.name === "AlreadyMemberError") state.textContent = S.shareAlreadyMember;
      else {
        console.error("interlude: share failed:", err);
        state.textContent = err.name === "QuotaExceededError" ? S.quotaFull : S.shareFailed;
      }
    } finally {
      button.disabled = false;
      renderStatus();
    }
  }

  // Shows what linking the typed device will do, before anything changes.
  function askLink(event) {
    event.preventDefault();
    const publicID = $("link-id").value.trim();
    const fingerprint = $("link-fingerprint").value.trim();
    if (!publicID || !fingerprint) return;
    pendingLink = { publicID, fingerprint };
    $("link-state").textContent = "";
    $("link-confirm-text").textContent = S.linkConfirm(fingerprint.toUpperCase());
    $("link-confirm").hidden = false;
    $("link-confirm-button").focus();
  }

  function hideLinkConfirm() {
    pendingLink = null;
    $("link-confirm").hidden = true;
  }

  // Links the confirmed device. The client checks the fingerprint against
  // the public id and rejects the link when they differ.
  async function confirmLink() {
    if (!pendingLink) return;
    const { publicID, fingerprint } = pendingLink;
    hideLinkConfirm();
    const button = $("link-button");
    const state = $("link-state");
    button.disabled = true;
    state.textContent = S.linking;
    try {
      const result = await globalThis.interlude.linkDevice(publicID, fingerprint);
      state.textContent = S.linked(result.fingerprint);
      $("link-id").value = "";
      $("link-fingerprint").value = "";
    } catch (err) {
      state.textContent = linkErrorText(err);
    } finally {
      button.disabled = locked;
      refreshDevices();
    }
  }

  function linkErrorText(err) {
    switch (err.name) {
      case "FingerprintMismatchError":
        return S.linkMismatch;
      case "InvalidPublicIDError":
        return S.linkInvalid;
      case "SameDeviceError":
        return S.linkSelf;
      case "QuotaExceededError":
        return S.quotaFull;
      case "LockedError":
        // The lock screen shows instead.
        return "";
    }
    console.error("interlude: link failed:", err);
    return S.linkFailed;
  }

  function askUnlink(device) {
    pendingUnlink = device;
    $("unlink-state").textContent = "";
    $("unlink-confirm-text").textContent = device.recovery
      ? S.unlinkRecoveryConfirm(device.fingerprint)
      : S.unlinkConfirm(device.fingerprint);
    $("unlink-confirm").hidden = false;
    $("unlink-confirm-button").focus();
  }

  function hideUnlinkConfirm() {
    pendingUnlink = null;
    $("unlink-confirm").hidden = true;
  }

  async function confirmUnlink() {
    if (!pendingUnlink) return;
    const device = pendingUnlink;
    hideUnlinkConfirm();
    const state = $("unlink-state");
    state.textContent = S.unlinking;
    try {
      const result = await globalThis.interlude.unlinkDevice(device.publicID);
      state.textContent = S.unlinked(result.fingerprint);
      if (result.check.length > 0) {
        state.textContent += " " + S.unlinkCheck(result.check.length);
      }
    } catch (err) {
      if (err.name === "LockedError") {
        state.textContent = "";
      } else if (err.name === "QuotaExceededError") {
        state.textContent = S.quotaFull;
      } else {
        console.error("interlude: removing a linked device failed:", err);
        state.textContent = S.unlinkFailed;
      }
    } finally {
      refreshDevices();
    }
  }

  // Reads the linked devices into the list. Reads run one at a time, and a
  // call made during a read starts one more read after it.
  let readingDevices = false;
  let devicesStale = false;
  async function refreshDevices() {
    if (locked) return;
    if (readingDevices) {
      devicesStale = true;
      return;
    }
    readingDevices = true;
    try {
      do {
        devicesStale = false;
        const devices = await globalThis.interlude.linkedDevices();
        const requests = await globalThis.interlude.linkRequests();
        if (!locked) {
          renderDevices(devices);
          renderLinkRequests(requests, devices);
        }
      } while (devicesStale && !locked);
    } catch (err) {
      if (err.name !== "LockedError") console.error("interlude: reading linked devices failed:", err);
    } finally {
      readingDevices = false;
    }
  }

  function renderDevices(devices) {
    const ids = devices.map((d) => d.publicID).join(" ");
    if (ids === shownDevices) return;
    shownDevices = ids;
    $("linked-list").replaceChildren(...devices.map(deviceItem));
    $("linked-none").hidden = devices.length > 0;
    if (pendingUnlink && !devices.some((d) => d.publicID === pendingUnlink.publicID)) hideUnlinkConfirm();
  }

  function deviceItem(device) {
    const item = document.createElement("li");
    item.dataset.publicId = device.publicID;
    const name = document.createElement("span");
    name.textContent = device.recovery
      ? S.linkedRecovery(device.fingerprint)
      : device.previous
        ? S.linkedPrevious(device.fingerprint)
        : S.linkedDevice(device.fingerprint);
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "secondary";
    remove.textContent = S.removeButton;
    remove.setAttribute("aria-label", S.removeLabel(device.fingerprint));
    remove.disabled = locked;
    remove.addEventListener("click", () => askUnlink(device));
    item.append(name, remove);
    return item;
  }

  // Lists the devices that added this one to their person, except those
  // linked since, each with a button that fills in the link form.
  function renderLinkRequests(requests, devices) {
    const linked = new Set(devices.map((d) => d.publicID));
    const pending = requests.filter((r) => r.linked || !linked.has(r.publicID));
    // Drawn again only when the list changes, so a button stays the
    // same node while the person reaches for it.
    const key = pending.map((r) => `${r.publicID}:${r.linked}`).join(" ");
    if (key === shownRequests) return;
    shownRequests = key;
    const items = pending.map((request) => {
      const item = document.createElement("li");
      item.dataset.publicId = request.publicID;
      const text = document.createElement("span");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "secondary";
      button.disabled = locked;
      if (request.linked) {
        text.textContent = S.linkRequestOther(request.fingerprint);
        button.textContent = S.linkRequestMove;
        button.addEventListener("click", () => movePerson(request.person));
      } else {
        text.textContent = S.linkRequest(request.fingerprint);
        button.textContent = S.linkRequestButton;
        button.addEventListener("click", () => {
          // The fingerprint stays for the person to type from the other
          // device's screen, which is the check.
          $("link-id").value = request.publicID;
          $("link-fingerprint").focus();
        });
      }
      item.append(text, button);
      return item;
    });
    $("link-requests").replaceChildren(...items);
  }

  // Moves this device to the person of a linked device's request.
  async function movePerson(personID) {
    const state = $("person-state");
    try {
      await globalThis.interlude.joinPerson(personID);
      state.textContent = S.personMoved;
      $("person-id").hidden = true;
    } catch (err) {
      if (err.name === "LockedError") return;
      console.error("interlude: moving to the other person failed:", err);
      state.textContent = err.name === "QuotaExceededError" ? S.quotaFull : S.personFailed;
    } finally {
      refreshDevices();
    }
  }

  // Shows the person id, and starts the person if this device has none.
  async function showPerson() {
    const state = $("person-state");
    try {
      const person = await globalThis.interlude.person();
      const field = $("person-id");
      field.value = person.personID;
      field.hidden = false;
      field.select();
      const active = person.devices.filter((d) => !d.revoked && !d.recovery).length;
      state.textContent = active > 0 ? S.personShown(active) : S.personStarted;
    } catch (err) {
      if (err.name === "LockedError") return;
      console.error("interlude: reading the person id failed:", err);
      state.textContent = err.name === "QuotaExceededError" ? S.quotaFull : S.personFailed;
    }
  }

  // Empties the devices section when the page locks. Unlock reads it again.
  function resetDevices() {
    hideLinkConfirm();
    hideUnlinkConfirm();
    $("link-state").textContent = "";
    $("unlink-state").textContent = "";
    $("linked-list").replaceChildren();
    $("link-requests").replaceChildren();
    shownRequests = null;
    $("person-id").value = "";
    $("person-id").hidden = true;
    $("person-state").textContent = "";
    $("linked-none").hidden = true;
    shownDevices = null;
  }

  // Returns a catch handler that reports err on the console unless the
  // page locked, because the lock screen then shows what happened.
  function logUnlessLocked(what) {
    return (err) => {
      if (err.name !== "LockedError") console.error(`interlude: ${what} failed:`, err);
    };
  }

  // Reads the documents on this device into the journal list, and opens
  // the joined journal when it has arrived. Reads run one at a time, and a
  // call made during a read starts one more read after it. Every call
  // resolves once a read that started after it has ended.
  let journalsReading = null;
  let journalsStale = false;
  function refreshJournals() {
    if (journalsReading) {
      journalsStale = true;
      return journalsReading;
    }
    journalsReading = (async () => {
      try {
        do {
          journalsStale = false;
          const list = await globalThis.interlude.documents();
          if (locked) return;
          journals = list;
          renderJournalChoice();
          openJoinedJournal();
        } while (journalsStale);
      } finally {
        journalsReading = null;
      }
    })();
    return journalsReading;
  }

  // Opens the journal that a join in this page added, once it is here. It
  // is the one document that was not on this device at the join.
  function openJoinedJournal() {
    if (!joinedBefore || !journalID) return;
    const joined = journals.find((j) => !joinedBefore.has(j.docId));
    if (!joined) return;
    joinedBefore = null;
    $("join-wait").textContent = S.joinArrived;
    openJournal(joined.docId);
  }

  // Fills the journal list: the device's own journal first, then the
  // others by their first line. The list shows only with two or more.
  function renderJournalChoice() {
    const select = $("journal-select");
    const ordered = [...journals].sort((a, b) => (b.docId === ownJournalID) - (a.docId === ownJournalID));
    const ids = ordered.map((j) => j.docId);
    const shown = [...select.options].map((o) => o.value);
    if (ids.join(" ") !== shown.join(" ")) {
      select.replaceChildren(...ids.map((id) => {
        const option = document.createElement("option");
        option.value = id;
        return option;
      }));
    }
    for (const option of select.options) option.textContent = journalTitle(option.value);
    select.value = journalID;
    $("journal-choice").hidden = ids.length < 2;
  }

  function journalTitle(docID) {
    if (docID === ownJournalID) return S.ownJournal;
    const text = globalThis.interlude.text(docID);
    const line = typeof text === "string" ? text.split("\n").map((l) => l.trim()).find((l) => l) : undefined;
    if (!line) return S.untitledJournal;
    return line.length > TITLE_LENGTH ? `${line.slice(0, TITLE_LENGTH - 1)}…` : line;
  }

  // Shows the journal docID in the textarea, after saving the one shown.
  async function openJournal(docID) {
    if (docID === journalID || locked) return;
    await flush();
    if (locked) return;
    journalID = docID;
    const text = globalThis.interlude.text(docID);
    entry.value = typeof text === "string" ? text : "";
    // A journal grows at its end, so writing continues there.
    entry.setSelectionRange(entry.value.length, entry.value.length);
    base = entry.value;
    dirty = false;
    saveError = null;
    $("journal-select").value = docID;
    $("problems").hidden = true;
    $("share-state").textContent = "";
    $("invite-state").textContent = "";
    hideInviteResult();
    applyRole();
    renderStatus();
    checkReports();
    refreshInvitations();
    refreshMembers();
  }

  // This device's role in the open journal: "admin", "writer", "reader",
  // or "" once it is no longer a member.
  function currentRole() {
    const open = journals.find((j) => j.docId === journalID);
    return open ? open.role : "";
  }

  // Lets only writers edit, and shows sharing and invitations only to an
  // admin, who alone may change the members.
  function applyRole() {
    const role = currentRole();
    entry.readOnly = role !== "admin" && role !== "writer";
    $("share-admin").hidden = role !== "admin";
    $("share-not-admin").hidden = role === "admin";
  }

  function invitationInURL() {
    return new URLSearchParams(location.hash.slice(1)).has("invite");
  }

  // Offers to join when the address contains an invitation link.
  function showJoin() {
    if (locked || !journalID || !invitationInURL()) return;
    $("join").hidden = false;
    $("join-actions").hidden = false;
    $("join-done").hidden = true;
    $("join-state").textContent = "";
    $("join-button").disabled = false;
  }

  // Removes the invitation's secret from the address bar. Replacing the
  // history entry, rather than adding one, keeps it out of the history too.
  function forgetInvitation() {
    history.replaceState(history.state, "", location.pathname + location.search);
  }

  function cancelJoin() {
    forgetInvitation();
    $("join").hidden = true;
  }

  async function join() {
    const button = $("join-button");
    const state = $("join-state");
    if (!invitationInURL()) {
      $("join").hidden = true;
      return;
    }
    button.disabled = true;
    state.textContent = S.joining;
    try {
      const result = await globalThis.interlude.acceptInvite(location.href);
      forgetInvitation();
      joinedBefore = new Set(journals.map((j) => j.docId));
      state.textContent = "";
      $("join-actions").hidden = true;
      $("join-code").textContent = result.code;
      $("join-wait").textContent = S.joinWait;
      $("join-done").hidden = false;
    } catch (err) {
      state.textContent = joinErrorText(err);
      // A used, malformed or own link never works here, so its secret
      // need not stay in the address bar for another try.
      if (["InvitationUsedError", "InvalidInvitationError", "SameDeviceError"].includes(err.name)) {
        forgetInvitation();
        $("join-actions").hidden = true;
      }
    } finally {
      button.disabled = locked;
    }
  }

  function joinErrorText(err) {
    switch (err.name) {
      case "InvitationUsedError":
        return S.joinUsed;
      case "InvalidInvitationError":
        return S.joinInvalid;
      case "InvitationNotFoundError":
        return S.joinNotFound;
      case "SameDeviceError":
        return S.joinSelf;
      case "LockedError":
        return "";
    }
    console.error("interlude: joining by invitation failed:", err);
    return S.joinFailed;
  }

  // Makes an invitation link to the open journal.
  async function invite() {
    const button = $("invite-button");
    const state = $("invite-state");
    const doc = journalID;
    button.disabled = true;
    hideInviteResult();
    state.textContent = S.inviting;
    try {
      const result = await globalThis.interlude.invite(doc);
      state.textContent = "";
      if (locked || doc !== journalID) return;
      $("invite-link").value = result.link;
      $("invite-offline").hidden = result.synced;
      $("invite-result").hidden = false;
    } catch (err) {
      if (err.name === "LockedError") {
        state.textContent = "";
      } else if (err.name === "NotAdminError") {
        state.textContent = S.inviteNotAdmin;
      } else if (err.name === "QuotaExceededError") {
        state.textContent = S.quotaFull;
      } else {
        console.error("interlude: making an invitation failed:", err);
        state.textContent = S.inviteFailed;
      }
    } finally {
      button.disabled = locked;
      renderStatus();
      refreshInvitations();
      refreshMembers();
    }
  }

  function hideInviteResult() {
    $("invite-result").hidden = true;
    $("invite-link").value = "";
  }

  // Lists the members of the open journal, with a Remove button on the
  // others for an admin. A read that a newer one or a change of journal
  // overtook is dropped.
  let membersRead = 0;
  async function refreshMembers() {
    const list = $("members-list");
    const read = ++membersRead;
    if (locked || !journalID || currentRole() === "") {
      list.replaceChildren();
      return;
    }
    const doc = journalID;
    try {
      const found = await globalThis.interlude.members(doc);
      if (read !== membersRead || doc !== journalID || locked) return;
      const admin = currentRole() === "admin";
      list.replaceChildren(...found.map((m) => memberItem(doc, m, admin)));
    } catch (err) {
      logUnlessLocked("reading members")(err);
    }
  }

  function memberItem(doc, m, admin) {
    const item = document.createElement("li");
    item.dataset.publicId = m.publicID;
    const label = document.createElement("span");
    let text = S.memberItem(m.fingerprint, m.role);
    if (m.you) text += " · " + S.memberYou;
    else if (m.yours) text += " · " + S.memberYours;
    label.textContent = text;
    item.append(label);
    if (admin && !m.you) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = S.removeMemberButton;
      button.addEventListener("click", () => removeMember(doc, m, item, button));
      item.append(button);
    }
    return item;
  }

  // Removes a member on the second click, after the first has shown
  // what removing does.
  async function removeMember(doc, m, item, button) {
    const state = $("members-state");
    if (item.dataset.confirm !== "1") {
      item.dataset.confirm = "1";
      button.textContent = S.removeMemberConfirmButton(m.fingerprint);
      state.textContent = S.removeMemberHelp(m.fingerprint);
      return;
    }
    button.disabled = true;
    try {
      const result = await globalThis.interlude.removeMember(doc, m.publicID);
      state.textContent = S.removedMember(result.fingerprint);
    } catch (err) {
      if (err.name === "LockedError") {
        state.textContent = "";
      } else {
        console.error("interlude: removing a member failed:", err);
        state.textContent = S.removeMemberFailed;
      }
    } finally {
      refreshMembers();
    }
  }

  // Lists the invitations this device made to the open journal. A read
  // that a newer one or a change of journal overtook is dropped.
  let invitationsRead = 0;
  async function refreshInvitations() {
    const list = $("invitations");
    const read = ++invitationsRead;
    if (locked || currentRole() !== "admin") {
      list.replaceChildren();
      return;
    }
    const doc = journalID;
    try {
      const found = await globalThis.interlude.invitations(doc);
      if (read !== invitationsRead || doc !== journalID || locked) return;
      list.replaceChildren(...found.map(invitationItem));
    } catch (err) {
      logUnlessLocked("reading invitations")(err);
    }
  }

  function invitationItem(inv) {
    const item = document.createElement("li");
    item.dataset.invitation = inv.id;
    if (inv.accepted) {
      item.dataset.state = "accepted";
      item.textContent = S.invitationAccepted(inv.inviteeFingerprint, inv.code);
    } else if (inv.failed) {
      item.dataset.state = "failed";
      item.textContent = S.invitationFailed;
    } else {
      item.dataset.state = "open";
      item.textContent = S.invitationOpen;
    }
    return item;
  }

  // Makes a recovery phrase and shows its words until the person confirms
  // they wrote them down. Only the list in the page contains them meanwhile.
  async function makeRecoveryPhrase() {
    const button = $("recovery-make");
    const state = $("recovery-state");
    button.disabled = true;
    state.textContent = S.recoveryMaking;
    try {
      let result = await globalThis.interlude.makeRecoveryPhrase();
      state.textContent = "";
      if (!locked) {
        showRecoveryWords(result.words.split(" "));
        $("recovery-note").textContent = S.recoveryNote(result.fingerprint, result.documents);
      }
      result = null;
    } catch (err) {
      if (err.name === "LockedError") {
        state.textContent = "";
      } else if (err.name === "QuotaExceededError") {
        state.textContent = S.quotaFull;
      } else {
        console.error("interlude: making a recovery phrase failed:", err);
        state.textContent = S.recoveryFailed;
      }
    } finally {
      button.disabled = locked;
      renderStatus();
      refreshDevices();
    }
  }

  // The words on screen, kept for storeRecoveryBackup until they are
  // hidden.
  let shownWords = "";

  function showRecoveryWords(words) {
    shownWords = words.join(" ");
    $("recovery-words").replaceChildren(...words.map((word) => {
      const item = document.createElement("li");
      item.textContent = word;
      return item;
    }));
    $("recovery-make").hidden = true;
    $("recovery-box").hidden = false;
    $("recovery-done").focus();
  }

  function hideRecoveryWords() {
    shownWords = "";
    $("recovery-backup-pass").value = "";
    $("recovery-backup-confirm").value = "";
    $("recovery-backup-state").textContent = "";
    $("recovery-words").replaceChildren();
    $("recovery-note").textContent = "";
    $("recovery-box").hidden = true;
    $("recovery-make").hidden = false;
  }

  // Has the server keep the words on screen sealed under a passphrase.
  async function storeRecoveryBackup(event) {
    event.preventDefault();
    const pass = $("recovery-backup-pass");
    const confirm = $("recovery-backup-confirm");
    const button = $("recovery-backup-button");
    const state = $("recovery-backup-state");
    if (!shownWords || !pass.value) return;
    if (pass.value !== confirm.value) {
      state.textContent = S.recoveryBackupMismatch;
      return;
    }
    button.disabled = true;
    state.textContent = S.recoveryBackupSaving;
    try {
      await globalThis.interlude.storeRecoveryBackup(shownWords, pass.value);
      pass.value = "";
      confirm.value = "";
      state.textContent = S.recoveryBackupSaved;
    } catch (err) {
      if (err.name === "WeakPassphraseError") {
        state.textContent = S.recoveryBackupWeak;
      } else if (err.name === "BackupExistsError") {
        state.textContent = S.recoveryBackupExists;
      } else if (err.name === "LockedError") {
        state.textContent = "";
      } else {
        console.error("interlude: storing the recovery backup failed:", err);
        state.textContent = S.recoveryBackupFailed;
      }
    } finally {
      button.disabled = false;
    }
  }

  // Recovers with the phrase the server keeps under the typed passphrase.
  async function recoverFromBackup(event) {
    event.preventDefault();
    const field = $("recover-pass");
    const button = $("recover-pass-button");
    const state = $("recover-state");
    if (!field.value) return;
    field.disabled = true;
    button.disabled = true;
    state.textContent = S.recovering;
    try {
      const result = await globalThis.interlude.recoverFromBackup(field.value);
      field.value = "";
      state.textContent = result.synced ? S.recovered(result.documents) : S.recoveredNotSynced(result.documents);
      await refreshJournals();
    } catch (err) {
      state.textContent = err.name === "NoBackupError" ? S.recoverNoBackup : recoverErrorText(err);
    } finally {
      field.disabled = locked;
      button.disabled = locked;
    }
  }

  // Links this device with the typed recovery phrase. The field is emptied
  // while the client works, and refilled when recovery fails, so that one
  // mistyped word can be corrected without typing them all again.
  async function recover(event) {
    event.preventDefault();
    const field = $("recover-words");
    const button = $("recover-button");
    const state = $("recover-state");
    let words = field.value;
    if (!words.trim()) return;
    field.value = "";
    field.disabled = true;
    button.disabled = true;
    state.textContent = S.recovering;
    try {
      const result = await globalThis.interlude.recover(words);
      words = "";
      state.textContent = result.synced ? S.recovered(result.documents) : S.recoveredNotSynced(result.documents);
      await refreshJournals();
    } catch (err) {
      state.textContent = recoverErrorText(err);
      if (!locked && words) field.value = words;
    } finally {
      words = "";
      field.disabled = locked;
      button.disabled = locked;
    }
  }

  function recoverErrorText(err) {
    switch (err.name) {
      case "InvalidRecoveryPhraseError":
        if (err.reason === "count") return S.recoverCount(err.words, err.want);
        if (err.reason === "checksum") return S.recoverChecksum;
        return S.recoverWord;
      case "NoRecoveryDocumentsError":
        return S.recoverNoJournals;
      case "QuotaExceededError":
        return S.quotaFull;
      case "LockedError":
        return "";
    }
    console.error("interlude: recovery failed:", err);
    return S.recoverFailed;
  }
})();
