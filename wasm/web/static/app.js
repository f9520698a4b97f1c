// The Interlude page: loads the WebAssembly client (interlude.wasm), which
// sets globalThis.interlude, and connects the journal's textarea, the
// sync status, the share form and the person's linked devices to it. All
// text shown comes from strings.js.
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

  const entry = $("entry");
  const saveState = $("save-state");
  const connection = $("connection");

  let journalID = "";
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
    $("link-confirm-button").addEventListener("click", confirmLink);
    $("link-cancel").addEventListener("click", hideLinkConfirm);
    $("link-id").addEventListener("input", hideLinkConfirm);
    $("link-fingerprint").addEventListener("input", hideLinkConfirm);
    $("unlink-confirm-button").addEventListener("click", confirmUnlink);
    $("unlink-cancel").addEventListener("click", hideUnlinkConfirm);
    $("lock-now").addEventListener("click", lockNow);
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
    for (const id of ["entry", "copy-id", "share-id", "share-button", "link-id", "link-fingerprint", "link-button"]) {
      $(id).disabled = !on;
    }
    for (const button of document.querySelectorAll("#linked-list button")) {
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
        // The fields are emptied first, so the passphrase stays in no
        // element of the page once it is passed on.
        let passphrase = first.value;
        const again = second.value;
        first.value = "";
        second.value = "";
        if (passphrase.length < MIN_PASSPHRASE_LENGTH) {
          state.textContent = S.passphraseTooShort(MIN_PASSPHRASE_LENGTH);
          first.focus();
          return;
        }
        if (passphrase !== again) {
          state.textContent = S.passphraseMismatch;
          first.focus();
          return;
        }
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
  async function showJournal() {
    try {
      journalID = await globalThis.interlude.journal();
    } catch (err) {
      // A lock that came before the journal was read has shown the lock
      // screen, and unlock calls this again.
      if (err.name === "LockedError") return;
      throw err;
    }
    if (locked) return;
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
    if (dirty) flush();
    renderStatus();
    refreshDevices();
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
    // The client records a device that linked this one while it syncs the
    // membership log of any document, so any change may bring one.
    // NOTE: a record written after the last change of a sync shows only
    // after the next change or a reload.
    refreshDevices();
    if (docID !== journalID) return;
    // While local edits wait for their save, the textarea keeps them; the
    // save merges them with what arrived, and this refresh follows it.
    if (!dirty && !saving) {
      const text = globalThis.interlude.text(journalID);
      if (typeof text === "string" && text !== entry.value) replaceText(text);
    }
    renderStatus();
    checkReports();
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
  // cursor where it was relative to the text around it.
  function replaceText(next) {
    const prev = entry.value;
    const { selectionStart: start, selectionEnd: end } = entry;
    let common = 0;
    while (common < prev.length && common < next.length && prev[common] === next[common]) common++;
    const shift = next.length - prev.length;
    const move = (pos) => (pos <= common ? pos : Math.max(common, pos + shift));
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

  async function copyPublicID() {
    const field = $("public-id");
    const state = $("copy-state");
    try {
      await navigator.clipboard.writeText(field.value);
      state.textContent = S.copied;
    } catch {
      // The Clipboard API needs a secure context (https or localhost).
      field.select();
      state.textContent = document.execCommand("copy") ? S.copied : S.copyFailed;
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
      state.textContent = S.shared(result.fingerprint);
      input.value = "";
    } catch (err) {
      console.error("interlude: share failed:", err);
      if (err.name === "InvalidPublicIDError") state.textContent = S.shareInvalid;
      else if (err.name === "QuotaExceededError") state.textContent = S.quotaFull;
      else state.textContent = S.shareFailed;
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
    $("unlink-confirm-text").textContent = S.unlinkConfirm(device.fingerprint);
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
        if (!locked) renderDevices(devices);
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
    name.textContent = S.linkedDevice(device.fingerprint);
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

  // Empties the devices section when the page locks. Unlock reads it again.
  function resetDevices() {
    hideLinkConfirm();
    hideUnlinkConfirm();
    $("link-state").textContent = "";
    $("unlink-state").textContent = "";
    $("linked-list").replaceChildren();
    $("linked-none").hidden = true;
    shownDevices = null;
  }
})();
