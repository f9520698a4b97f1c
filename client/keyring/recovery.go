package keyring

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
)

const (
	recoveryEntropySize  = 16 // 128 bits
	recoveryChecksumSize = 2
	// RecoveryPhraseWords is the number of words in a recovery phrase:
	// one per byte of entropy and of checksum.
	RecoveryPhraseWords = recoveryEntropySize + recoveryChecksumSize
)

// ErrRecoveryChecksum is returned by ParseRecoveryPhrase when every word is
// in the word list but the checksum does not match, so a word is wrong or
// two are swapped.
var ErrRecoveryChecksum = errors.New("keyring: recovery phrase checksum does not match")

var (
	words     = strings.Fields(wordList)
	wordIndex = func() map[string]byte {
		m := make(map[string]byte, len(words))
		for i, w := range words {
			m[w] = byte(i)
		}
		return m
	}()
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

// RecoveryPhrase is 128 bits of entropy written as words. It derives a key
// pair that the sigchain lists as one more device, of kind DeviceRecovery,
// so a person who loses every other device can open the user key with it.
type RecoveryPhrase struct {
	entropy [recoveryEntropySize]byte
	public  PublicKeys
}

// NewRecoveryPhrase returns a phrase with fresh random entropy.
func NewRecoveryPhrase() (*RecoveryPhrase, error) {
	var entropy [recoveryEntropySize]byte
	if _, err := io.ReadFull(rand.Reader, entropy[:]); err != nil {
		return nil, fmt.Errorf("keyring: read random recovery entropy: %w", err)
	}
	return recoveryFromEntropy(entropy)
}

func recoveryFromEntropy(entropy [recoveryEntropySize]byte) (*RecoveryPhrase, error) {
	p := &RecoveryPhrase{entropy: entropy}
	d, err := p.Device()
	if err != nil {
		return nil, err
	}
	p.public = d.Public()
	return p, nil
}

// ParseRecoveryPhrase parses the words that Words returns. It ignores case
// and extra spaces. An error names the position of a word that is not in
// the list, never the word, because it is part of a secret.
func ParseRecoveryPhrase(s string) (*RecoveryPhrase, error) {
	fields := strings.Fields(strings.ToLower(s))
	if len(fields) != RecoveryPhraseWords {
		return nil, fmt.Errorf("keyring: recovery phrase has %d words, want %d", len(fields), RecoveryPhraseWords)
	}
	var b [RecoveryPhraseWords]byte
	for i, w := range fields {
		v, ok := wordIndex[w]
		if !ok {
			return nil, fmt.Errorf("keyring: word %d of the recovery phrase is not in the word list: check its spelling", i+1)
		}
		b[i] = v
	}

	var entropy [recoveryEntropySize]byte
	copy(entropy[:], b[:recoveryEntropySize])
	if recoveryChecksum(entropy) != [recoveryChecksumSize]byte(b[recoveryEntropySize:]) {
		return nil, fmt.Errorf("%w: a word is wrong or two words are swapped: compare each word with the written copy", ErrRecoveryChecksum)
	}
	return recoveryFromEntropy(entropy)
}

// recoveryChecksum returns the low 16 bits of the CRC-32C of the entropy.
// A CRC is linear, so whether a change is caught depends only on the change,
// not on the phrase. The tests try every change of one word and every swap
// of two neighbouring words and find that all of them alter the checksum.
func recoveryChecksum(entropy [recoveryEntropySize]byte) [recoveryChecksumSize]byte {
	var sum [recoveryChecksumSize]byte
	binary.BigEndian.PutUint16(sum[:], uint16(crc32.Checksum(entropy[:], castagnoli)))
	return sum
}

// Words returns the phrase as words split by single spaces. The result is
// secret: show it to the person to write down, and never store or log it.
func (p *RecoveryPhrase) Words() string {
	sum := recoveryChecksum(p.entropy)
	out := make([]string, 0, RecoveryPhraseWords)
	for _, b := range p.entropy {
		out = append(out, words[b])
	}
	for _, b := range sum {
		out = append(out, words[b])
	}
	return strings.Join(out, " ")
}

// Public returns the public keys of the recovery device.
func (p *RecoveryPhrase) Public() PublicKeys { return p.public }

// Device derives the recovery device's key pair.
func (p *RecoveryPhrase) Device() (*Device, error) {
	signingSeed, boxKey, err := p.DeviceSeeds()
	if err != nil {
		return nil, err
	}
	defer clear(signingSeed)
	defer clear(boxKey[:])
	return DeviceFromSeeds(signingSeed, boxKey)
}

// DeviceSeeds derives the seeds of the recovery device's key pair: the
// Ed25519 seed and the X25519 private key, for a caller that keeps device
// keys in its own type. Both are secret; clear them after use.
func (p *RecoveryPhrase) DeviceSeeds() ([]byte, [32]byte, error) {
	signingSeed, err := derive(p.entropy[:], labelRecoverySigning, nil, 32)
	if err != nil {
		return nil, [32]byte{}, err
	}
	boxKey, err := derive(p.entropy[:], labelRecoveryBox, nil, 32)
	if err != nil {
		clear(signingSeed)
		return nil, [32]byte{}, err
	}
	defer clear(boxKey)
	return signingSeed, [32]byte(boxKey), nil
}
