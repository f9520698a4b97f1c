// Every piece of text the Interlude page shows, in English. To translate
// the app, translate the values here and set "lang" to the language's tag.
// Entries that are functions build a sentence around a number or a name.
globalThis.interludeStrings = Object.freeze({
  lang: "en",
  title: "Interlude",
  tagline: "A private journal you can share with your therapist.",
  loading: "Starting…",
  otherTab: "Interlude is open in another tab. Close that tab to write here.",
  loadFailed: "Interlude could not start. Reload the page to try again.",
  stopped: "Interlude stopped unexpectedly. Reload the page; what you saved is kept on this device.",

  setupHeading: "Protect this device with a passphrase",
  setupHelp: (seconds) =>
    `Without a passphrase, anyone who can open this browser can read your journal on this device. With one, Interlude encrypts your journal on this device and locks after ${seconds >= 60 ? `${Math.round(seconds / 60)} minutes` : `${seconds} seconds`} without use. You can also continue without one.`,
  setupWarning: "If you forget the passphrase, the copy on this device cannot be opened. What was synced can come back only by joining your shared journal again or linking this device to another of yours.",
  passphraseLabel: "Passphrase",
  confirmLabel: "Type the passphrase again",
  protectButton: "Use this passphrase",
  skipButton: "Continue without a passphrase",
  passphraseTooShort: (n) => `Use at least ${n} characters.`,
  passphraseMismatch: "The two passphrases differ. Type them again.",
  protecting: "Encrypting this device's copy…",

  lockHeading: "Interlude is locked",
  lockHelp: "Enter this device's passphrase to open your journal.",
  heldNotice: "Interlude locked before your last words were saved. They are kept in this page until you unlock, and saved then. Closing the page loses them.",
  unlockButton: "Unlock",
  unlocking: "Unlocking…",
  lockedNeedPassphrase: "This device's data is locked: enter the passphrase.",
  wrongPassphrase: "Wrong passphrase. Try again.",
  unlockFailed: "Could not unlock. Reload the page and try again.",
  lockNow: "Lock",
  lockFailed: "Could not lock. Reload the page to lock it.",

  entryLabel: "Your journal",
  entryPlaceholder: "Write whatever is on your mind.",

  saving: "Saving…",
  saved: "Saved on this device",
  waiting: (n) => n === 1 ? "Waiting to sync (1 change)" : `Waiting to sync (${n} changes)`,
  synced: "Synced",
  notSaved: "Not saved. Keep this page open and try typing again.",
  quotaFull: "Not saved: this browser has no storage space left for Interlude. Free some space on this device, then type again.",
  unsavedWarning: "Your last words are not saved yet.",

  relayProblems: (n) =>
    `This device found ${n === 1 ? "a problem" : `${n} problems`} in what the server sent: it may have altered, dropped or withheld changes. Your journal is safe on this device. Tell your therapist or clinic.`,
  connecting: "Connecting…",
  connected: "Connected",
  disconnected: "Offline. Your writing stays on this device and syncs when the connection returns.",

  deviceHeading: "This device",
  publicIDLabel: "Your public id",
  publicIDHelp: "Give this id to anyone who wants to share a document with you. It is not secret.",
  fingerprintLabel: (f) => `Fingerprint: ${f}`,
  copy: "Copy",
  copied: "Copied",
  copyFailed: "Could not copy. Select the id and copy it by hand.",

  shareHeading: "Share with your therapist",
  shareHelp: "Paste your therapist's public id. Only you and the people you share with can read this journal; the server that syncs it cannot.",
  shareLabel: "Therapist's public id",
  shareButton: "Share",
  sharing: "Sharing…",
  shared: (f) => `Shared with fingerprint ${f}. Check that your therapist sees the same fingerprint. They can read your journal once you have both been online.`,
  shareInvalid: "That public id is not valid. Check that you copied all of it.",
  shareFailed: "Could not share. Try again.",
});
