package keyring

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestWordList(t *testing.T) {
	if len(words) != 256 {
		t.Fatalf("word list has %d words, want 256", len(words))
	}
	valid := regexp.MustCompile(`^[a-z]{3,6}$`)
	prefixes := map[string]string{}
	for _, w := range words {
		if !valid.MatchString(w) {
			t.Errorf("word %q: want 3 to 6 lower-case letters", w)
		}
		p := w[:min(4, len(w))]
		if other, ok := prefixes[p]; ok {
			t.Errorf("words %q and %q share the first letters %q", other, w, p)
		}
		prefixes[p] = w
	}
	for i, a := range words {
		for _, b := range words[i+1:] {
			if strings.HasPrefix(b, a) || strings.HasPrefix(a, b) {
				t.Errorf("word %q is a prefix of %q", a, b)
			}
			if editDistance(a, b) < 2 {
				t.Errorf("words %q and %q differ in one letter", a, b)
			}
		}
	}
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func TestRecoveryPhraseRoundTrip(t *testing.T) {
	p, err := NewRecoveryPhrase()
	if err != nil {
		t.Fatal(err)
	}
	text := p.Words()
	if n := len(strings.Fields(text)); n != RecoveryPhraseWords {
		t.Fatalf("phrase has %d words, want %d", n, RecoveryPhraseWords)
	}
	again, err := ParseRecoveryPhrase("  " + strings.ToUpper(text) + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if again.entropy != p.entropy || again.Public() != p.Public() {
		t.Error("parsed phrase differs")
	}
	other, err := NewRecoveryPhrase()
	if err != nil {
		t.Fatal(err)
	}
	if other.Public() == p.Public() {
		t.Error("two phrases derived the same recovery device")
	}
}

func TestRecoveryPhraseCatchesMistypedWord(t *testing.T) {
	for _, entropy := range [][16]byte{{}, {0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {200, 15: 99}} {
		p, err := recoveryFromEntropy(entropy)
		if err != nil {
			t.Fatal(err)
		}
		good := strings.Fields(p.Words())

		// Every other word of the list in every position.
		for i := range good {
			for _, w := range words {
				if w == good[i] {
					continue
				}
				typo := append([]string(nil), good...)
				typo[i] = w
				if _, err := ParseRecoveryPhrase(strings.Join(typo, " ")); !errors.Is(err, ErrRecoveryChecksum) {
					t.Fatalf("word %d changed from %q to %q: err = %v, want ErrRecoveryChecksum", i+1, good[i], w, err)
				}
			}
		}
		// Every swap of two neighbouring, different words.
		for i := 0; i+1 < len(good); i++ {
			if good[i] == good[i+1] {
				continue
			}
			swapped := append([]string(nil), good...)
			swapped[i], swapped[i+1] = swapped[i+1], swapped[i]
			if _, err := ParseRecoveryPhrase(strings.Join(swapped, " ")); !errors.Is(err, ErrRecoveryChecksum) {
				t.Fatalf("words %d and %d swapped: err = %v, want ErrRecoveryChecksum", i+1, i+2, err)
			}
		}
	}
}

func TestRecoveryChecksumCatchesEverySingleByteChange(t *testing.T) {
	// The checksum is linear over the entropy, so a change of the entropy
	// is missed for every phrase or for none. Checking each change against
	// the all-zero entropy therefore covers all phrases.
	var zero [16]byte
	base := recoveryChecksum(zero)
	for i := range zero {
		for v := 1; v < 256; v++ {
			e := zero
			e[i] = byte(v)
			if recoveryChecksum(e) == base {
				t.Fatalf("changing byte %d by %#x leaves the checksum unchanged", i, v)
			}
			if i+1 < len(zero) {
				// A swap of neighbouring words changes both bytes by the same
				// value.
				e[i+1] = byte(v)
				if recoveryChecksum(e) == base {
					t.Fatalf("changing bytes %d and %d by %#x leaves the checksum unchanged", i, i+1, v)
				}
			}
		}
	}
}

func TestParseRecoveryPhraseErrors(t *testing.T) {
	p, err := NewRecoveryPhrase()
	if err != nil {
		t.Fatal(err)
	}
	good := strings.Fields(p.Words())

	_, err = ParseRecoveryPhrase(strings.Join(good[:17], " "))
	if err == nil || !strings.Contains(err.Error(), "17 words") {
		t.Errorf("17 words: err = %v, want it to count the words", err)
	}
	bad := append([]string(nil), good...)
	bad[4] = "zzzzzq"
	_, err = ParseRecoveryPhrase(strings.Join(bad, " "))
	if err == nil || !strings.Contains(err.Error(), "word 5") {
		t.Errorf("unknown word: err = %v, want it to name word 5", err)
	}
	if strings.Contains(err.Error(), "zzzzzq") {
		t.Errorf("error %q repeats the secret word", err)
	}
}

func TestRecoveryAfterLosingEveryDevice(t *testing.T) {
	// A person with one device writes down a recovery phrase.
	phone := newTestDevice(t)
	chain, key, _, err := NewChain(phone)
	if err != nil {
		t.Fatal(err)
	}
	phrase, err := NewRecoveryPhrase()
	if err != nil {
		t.Fatal(err)
	}
	written := phrase.Words()
	up, err := chain.AddDevice(phone, key, phrase.Public(), DeviceRecovery)
	if err != nil {
		t.Fatal(err)
	}
	relaySeeds := map[[32]byte]SealedSeed{}
	for _, s := range up.Seeds {
		relaySeeds[s.Device] = s
	}
	relayChain, _ := chain.MarshalBinary()

	// The phone is lost. On a new laptop the person types the phrase.
	typed, err := ParseRecoveryPhrase(written)
	if err != nil {
		t.Fatal(err)
	}
	recovery, err := typed.Device()
	if err != nil {
		t.Fatal(err)
	}
	fetched, err := ParseChain(relayChain)
	if err != nil {
		t.Fatal(err)
	}
	info, ok := fetched.Device(recovery.Public().Sign)
	if !ok || info.Kind != DeviceRecovery {
		t.Fatal("the sigchain does not list the recovery device")
	}
	recovered, err := recovery.OpenSeed(relaySeeds[recovery.Public().Sign], fetched.UserKey())
	if err != nil {
		t.Fatal(err)
	}
	if recovered.Public() != key.Public() {
		t.Fatal("recovered another user key")
	}

	// Acting as a device, the recovery key adds the laptop and revokes the
	// lost phone, which rotates the user key.
	laptop := newTestDevice(t)
	if _, err := fetched.AddDevice(recovery, recovered, laptop.Public(), DeviceOrdinary); err != nil {
		t.Fatal(err)
	}
	next, rot, err := fetched.RevokeDevice(recovery, recovered, phone.Public())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range rot.Seeds {
		if s.Device == phone.Public().Sign {
			t.Error("rotated seed sealed to the lost phone")
		}
		if s.Device == laptop.Public().Sign {
			k, err := laptop.OpenSeed(s, fetched.UserKey())
			if err != nil || k.Public() != next.Public() {
				t.Errorf("laptop opening the rotated seed: %v", err)
			}
		}
	}
}
