package keyring

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"unicode/utf8"
)

// A recovery phrase kept on the relay under a passphrase.
//
// A person who would rather remember a passphrase than keep a list of
// words on paper can have the relay store their recovery phrase sealed
// under it. The blob is sealed with SealWithPassphrase, so its Argon2id
// parameters travel in it and OpenWithPassphrase rejects weakened ones.
// The new device finds the blob by an id that Argon2id also derives from
// the passphrase and the relay's host name, so the person needs nothing
// but the passphrase and the relay. Anyone with a copy of the relay's
// data can guess passphrases at the cost of one Argon2id run per guess,
// against the id or the blob, so the passphrase must be long.

// MinBackupPassphraseLength is the shortest passphrase, in characters,
// that SealRecoveryBackup takes. A guess costs one Argon2id derivation at
// the minimum parameters, about 0.1 s on a server core (an estimate from
// BenchmarkArgon2MinimumParams), so a short passphrase falls to a
// determined guesser in days.
const MinBackupPassphraseLength = 12

const (
	labelBackupID = "interlude/keyring/v1 recovery backup id"
	adBackup      = "interlude/keyring/v1 recovery backup"
)

// ErrBackupPassphraseShort is returned for a backup passphrase shorter
// than MinBackupPassphraseLength.
var ErrBackupPassphraseShort = errors.New("keyring: backup passphrase is too short")

// BackupID returns the id under which the recovery backup sealed with
// pass is stored on the relay with host name relay. Argon2id at the
// minimum parameters derives it, with a salt from the relay's host name,
// so the same passphrase names different ids on different relays.
func BackupID(pass Passphrase, relay string) ([16]byte, error) {
	if len(pass.b) == 0 {
		return [16]byte{}, ErrEmptyPassphrase
	}
	salt := sha256.Sum256(append([]byte(labelBackupID+"\x00"), relay...))
	id := argon2IDKey(pass.b, salt[:MinArgon2SaltSize], MinArgon2Time, MinArgon2MemoryKiB, 4, 16)
	return [16]byte(id), nil
}

// CheckBackupPassphrase returns ErrBackupPassphraseShort, with the
// lengths, for a passphrase shorter than MinBackupPassphraseLength.
func CheckBackupPassphrase(pass Passphrase) error {
	if n := utf8.RuneCount(pass.b); n < MinBackupPassphraseLength {
		return fmt.Errorf("%w: %d characters, want at least %d: anyone with a copy of the relay's data can try guesses offline, so choose a longer one", ErrBackupPassphraseShort, n, MinBackupPassphraseLength)
	}
	return nil
}

// SealRecoveryBackup seals the recovery phrase p under pass for the relay
// with host name relay. It rejects a passphrase that
// CheckBackupPassphrase rejects.
func SealRecoveryBackup(p *RecoveryPhrase, pass Passphrase, relay string) ([]byte, error) {
	if err := CheckBackupPassphrase(pass); err != nil {
		return nil, err
	}
	params, err := NewArgon2Params()
	if err != nil {
		return nil, err
	}
	words := []byte(p.Words())
	defer clear(words)
	return SealWithPassphrase(pass, params, words, backupAD(relay))
}

// OpenRecoveryBackup opens a blob that SealRecoveryBackup returned for the
// relay with host name relay.
func OpenRecoveryBackup(blob []byte, pass Passphrase, relay string) (*RecoveryPhrase, error) {
	words, err := OpenWithPassphrase(pass, blob, backupAD(relay))
	if err != nil {
		return nil, err
	}
	defer clear(words)
	p, err := ParseRecoveryPhrase(string(words))
	if err != nil {
		return nil, fmt.Errorf("keyring: invalid recovery backup: it opened but contains no valid phrase: %w", err)
	}
	return p, nil
}

func backupAD(relay string) []byte { return append([]byte(adBackup+"\x00"), relay...) }
