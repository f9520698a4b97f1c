// The Interlude page: loads the WebAssembly client (interlude.wasm), which
// sets globalThis.interlude, and connects the journal's textarea, the
// sync status and the share form to it. All text shown comes from
// strings.js.
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

  applyStrings();
  main().catch((err) => {
    console.error("interlude: start failed:", err);
    showNotice(S.loadFailed);
    setSaveState("error", S.loadFailed);
  });

  async function main() {
    await acquireTabLock();
    await loadClient();
    const info = await globalThis.interlude.start({ relay: relayURL() });
    // Until the first connection succeeds or this much time passes, the
    // page shows "connecting" rather than "offline".
    setTimeout(() => {
      firstAttemptOver = true;
      renderStatus();
    }, CONNECTING_MS);
    journalID = await globalThis.interlude.journal();

    $("public-id").value = info.publicID;
    $("fingerprint").textContent = S.fingerprintLabel(info.fingerprint);
    const text = globalThis.interlude.text(journalID);
    entry.value = typeof text === "string" ? text : "";
    base = entry.value;
    for (const id of ["entry", "copy-id", "share-id", "share-button"]) {
      $(id).disabled = false;
    }

    globalThis.interlude.onChange(onChange);
    entry.addEventListener("input", onInput);
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "hidden") flush();
    });
    window.addEventListener("pagehide", flush);
    window.addEventListener("beforeunload", (event) => {
      if (!dirty && !saving) return;
      flush();
      event.preventDefault();
      event.returnValue = S.unsavedWarning;
    });
    $("copy-id").addEventListener("click", copyPublicID);
    $("share-form").addEventListener("submit", share);
    renderStatus();
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
    if (!dirty || !journalID) return;

    dirty = false;
    const next = entry.value;
    saving = globalThis.interlude.setText(journalID, next, base).then(
      () => {
        base = next;
        saveError = null;
      },
      (err) => {
        // The text stays marked unsaved, so the next keystroke or flush
        // tries again.
        console.error("interlude: save failed:", err);
        dirty = true;
        saveError = err;
      },
    );
    await saving;
    saving = null;
    renderStatus();
  }

  function onChange(docID) {
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
    if (checkingReports || !journalID) return;
    checkingReports = true;
    try {
      const reports = await globalThis.interlude.reports(journalID);
      const problems = $("problems");
      problems.hidden = reports.length === 0;
      if (reports.length > 0) problems.textContent = S.relayProblems(reports.length);
    } catch (err) {
      console.error("interlude: reading problem reports failed:", err);
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
    if (!journalID) return;
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
})();
