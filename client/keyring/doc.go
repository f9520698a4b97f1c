// Package keyring holds the keys of people and their devices: who a person
// is across their devices, how a device joins or leaves, and how a person
// gets their keys back. It is pure: no storage, no network and no clock.
// The caller stores what it returns and sends it to the relay.
//
// # Devices
//
// Every device, a phone, a laptop or a browser profile, makes its own
// key pairs and never shares their private halves: Ed25519 to sign and
// X25519 to receive sealed secrets. A Device holds them.
//
// # The per-user key
//
// People share documents with a person, not with a device. A person
// therefore has a per-user key: a random 32-byte seed from which HKDF
// derives a signing key and a box key under distinct labels. The seed is
// sealed with box.SealAnonymous to each of the person's devices, so adding a
// device gives it everything already shared with the person and nobody has
// to share anything again.
//
// # The sigchain
//
// The list of a person's devices is a sigchain: a hash-chained list of
// entries, each adding or revoking one device. The first device signs the
// first entry itself. Every later entry is signed by a device that an
// earlier entry added and no entry revoked, and also by the user key, which
// proves the signer holds the seed. Each entry carries the hash of the one
// before and the user key in force after it. VerifyChain checks a whole
// chain from the first entry and rejects gaps, forks, bad signatures and
// entries signed by revoked devices. Chain.Extend rejects a copy from the
// relay that does not start with what the device already verified, so the
// relay cannot show one device a different history than before. The hash
// of the first entry, Chain.ID, names the person.
//
// # Linking a device
//
// A new device shows a link request, as a QR code or a code to type: its
// public keys and a random secret. The person moves it to an existing
// device by camera or keyboard, never through the relay. Both devices show
// the same six-digit comparison code, a hash of both devices' public keys
// and the secret, and the person checks that they match. The existing
// device then appends an entry adding the new device and seals the seed to
// it. The response it sends carries a MAC under the secret, so the new
// device knows the response came from the device that read its code.
//
// # Revocation and rotation
//
// A lost device is revoked from another device. A revoke rotates the user
// key: the signer makes a new seed of the next generation and seals it to
// the remaining devices only, so the lost device cannot open it. The old
// seed is sealed under the new one, so every device that holds the newest
// seed can walk back through older generations and open what was sealed to
// them, such as document keys: history stays readable. What the lost device
// already knew stays known to whoever holds it, so documents should move to
// new keys, and the relay should be told to stop accepting the old device.
//
// # Recovery
//
// A recovery phrase is 128 bits of entropy written as 18 words, the last two
// a checksum. The phrase derives a key pair that the sigchain lists as one
// more device, of kind DeviceRecovery, and receives the sealed seed like any
// other device. A person who loses every device types the phrase on a new
// device, opens the seed as the recovery device, and links the new device.
// A person may also let the relay keep the seed sealed under a passphrase
// with Argon2id, whose parameters are stored in the blob and checked against
// minimums before any key is derived.
//
// Nobody else can help. The relay stores only sealed seeds and encrypted
// documents. A person who loses every device, the recovery phrase and any
// passphrase-sealed copy has lost the seed, and with it every document
// shared with them: the data is gone.
//
// # Documents and invitations
//
// In each document a person signs with a key derived from the seed and the
// document id, so the relay sees an unrelated key in every document and
// cannot link one person across documents. A therapist invites a client with
// a one-time link whose fragment, never sent to a server, carries a secret
// and the therapist's public keys. The client proves it read the link with a
// MAC over its own public keys, and both compare the same kind of
// comparison code as in device linking.
//
// # Secrets in logs
//
// Every type that holds a secret prints as "[redacted]", with a public
// fingerprint where one exists, through fmt and log/slog. Methods that
// return secret bytes or text, such as RecoveryPhrase.Words or the
// MarshalBinary methods, say so.
package keyring
