package keyring

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// countDerivations replaces argon2IDKey for the test with a wrapper that
// counts its calls.
func countDerivations(t *testing.T) *int {
	t.Helper()
	var n int
	real := argon2IDKey
	argon2IDKey = func(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
		n++
		return real(password, salt, time, memory, threads, keyLen)
	}
	t.Cleanup(func() { argon2IDKey = real })
	return &n
}

func TestPassphraseSealWithMinimumParams(t *testing.T) {
	derivations := countDerivations(t)
	params := Argon2Params{Time: MinArgon2Time, MemoryKiB: MinArgon2MemoryKiB, Threads: MinArgon2Threads, Salt: bytes.Repeat([]byte{1}, MinArgon2SaltSize)}
	key, err := NewUserKey(3)
	if err != nil {
		t.Fatal(err)
	}
	pass := NewPassphrase("correct horse battery staple")

	blob, err := key.SealWithPassphrase(pass, params)
	if err != nil {
		t.Fatal(err)
	}
	stored, _, err := ReadArgon2Params(blob)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Time != params.Time || stored.MemoryKiB != params.MemoryKiB || stored.Threads != params.Threads || !bytes.Equal(stored.Salt, params.Salt) {
		t.Fatalf("stored parameters %+v, want %+v", stored, params)
	}

	got, err := OpenUserKeyWithPassphrase(blob, pass, key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if got.Public() != key.Public() {
		t.Error("opened another user key")
	}

	if _, err := OpenUserKeyWithPassphrase(blob, NewPassphrase("correct horse battery stapler"), key.Public()); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("wrong passphrase: err = %v, want ErrWrongPassphrase", err)
	}

	// Raising t to 4 passes the bounds, but the parameters are associated
	// data, so the blob no longer opens.
	raised := bytes.Clone(blob)
	binary.BigEndian.PutUint32(raised[5:9], 4)
	if _, err := OpenWithPassphrase(pass, raised, []byte(adUserSeed)); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("raised t: err = %v, want ErrWrongPassphrase", err)
	}
	if *derivations != 4 {
		t.Errorf("%d derivations, want 4: seal, open, wrong passphrase, raised t", *derivations)
	}
}

func TestPassphraseOpenRejectsWeakParamsBeforeDerivation(t *testing.T) {
	// A blob that claims weak parameters is built by hand: the relay would
	// do the same, since SealWithPassphrase refuses them.
	weak := func(time, memoryKiB uint32, threads uint8, saltLen int) []byte {
		p := Argon2Params{Time: time, MemoryKiB: memoryKiB, Threads: threads, Salt: make([]byte, saltLen)}
		return append(p.header(), make([]byte, 24+16+37)...)
	}
	tests := []struct {
		name string
		blob []byte
		want string
	}{
		{"t=1", weak(1, MinArgon2MemoryKiB, 1, 16), "time cost t=1"},
		{"t=2", weak(2, MinArgon2MemoryKiB, 1, 16), "time cost t=2"},
		{"m=8MiB", weak(3, 8*1024, 1, 16), "memory cost m=8192 KiB"},
		{"p=0", weak(3, MinArgon2MemoryKiB, 0, 16), "parallelism p=0"},
		{"salt 8 bytes", weak(3, MinArgon2MemoryKiB, 1, 8), "salt of 8 bytes"},
		{"t=1000", weak(1000, MinArgon2MemoryKiB, 1, 16), "time cost t=1000"},
		{"m=4GiB", weak(3, 4*1024*1024, 1, 16), "memory cost m=4194304 KiB"},
	}
	derivations := countDerivations(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := OpenWithPassphrase(NewPassphrase("x"), tt.blob, nil)
			if !errors.Is(err, ErrArgon2Params) {
				t.Fatalf("err = %v, want ErrArgon2Params", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to name %q", err, tt.want)
			}
		})
	}
	if *derivations != 0 {
		t.Errorf("%d key derivations ran for rejected blobs, want 0", *derivations)
	}
}

func TestPassphraseSealRejectsWeakParams(t *testing.T) {
	derivations := countDerivations(t)
	params := Argon2Params{Time: 1, MemoryKiB: MinArgon2MemoryKiB, Threads: 1, Salt: make([]byte, 16)}
	if _, err := SealWithPassphrase(NewPassphrase("x"), params, []byte("p"), nil); !errors.Is(err, ErrArgon2Params) {
		t.Errorf("t=1: err = %v, want ErrArgon2Params", err)
	}
	ok, err := NewArgon2Params()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := SealWithPassphrase(NewPassphrase(""), ok, []byte("p"), nil); !errors.Is(err, ErrEmptyPassphrase) {
		t.Errorf("empty passphrase: err = %v, want ErrEmptyPassphrase", err)
	}
	if *derivations != 0 {
		t.Errorf("%d key derivations ran, want 0", *derivations)
	}
}

func TestPassphraseOpenRejectsMalformedBlob(t *testing.T) {
	params, err := NewArgon2Params()
	if err != nil {
		t.Fatal(err)
	}
	header := params.header()
	for name, blob := range map[string][]byte{
		"empty":         nil,
		"other magic":   append([]byte("XXPW"), header[4:]...),
		"version 2":     append(append([]byte("ILPW"), 2), header[5:]...),
		"cut in salt":   header[:len(header)-1],
		"no ciphertext": header,
	} {
		if _, err := OpenWithPassphrase(NewPassphrase("x"), blob, nil); err == nil {
			t.Errorf("%s: opened", name)
		}
	}
}

func TestNewArgon2ParamsPassCheck(t *testing.T) {
	a, err := NewArgon2Params()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Check(); err != nil {
		t.Fatal(err)
	}
	b, err := NewArgon2Params()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.Salt, b.Salt) {
		t.Error("two calls returned the same salt")
	}
}

func BenchmarkArgon2MinimumParams(b *testing.B) {
	params := Argon2Params{Time: MinArgon2Time, MemoryKiB: MinArgon2MemoryKiB, Threads: 4, Salt: make([]byte, 16)}
	pass := NewPassphrase("benchmark passphrase")
	for b.Loop() {
		if _, err := passphraseCipher(pass, params); err != nil {
			b.Fatal(err)
		}
	}
}
