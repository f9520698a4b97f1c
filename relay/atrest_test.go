package relay_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"interlude/relay"
)

func newEncryptionKey(t *testing.T) relay.EncryptionKey {
	t.Helper()
	raw := make([]byte, relay.EncryptionKeySize)
	for i := range raw {
		raw[i] = byte(0xa0 + i)
	}
	key, err := relay.ParseEncryptionKey(raw, "test")
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// startEncryptedRelay starts a relay on dir with key and returns it.
func startEncryptedRelay(t *testing.T, dir string, key relay.EncryptionKey, logs *bytes.Buffer) *testRelay {
	t.Helper()
	srv, err := relay.Open(relay.Config{DataDir: dir, EncryptionKey: key, Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatalf("Open(%q) with a key: %v", dir, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Shutdown(context.Background())
		t.Fatal(err)
	}
	r := &testRelay{t: t, srv: srv, addr: ln.Addr().String(), dataDir: dir, served: make(chan error, 1)}
	go func() { r.served <- srv.Serve(ln) }()
	t.Cleanup(r.stop)
	return r
}

// fileContaining returns the first file under dir whose bytes contain
// needle, or "".
func fileContaining(t *testing.T, dir string, needle []byte) string {
	t.Helper()
	found, files := "", 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || found != "" {
			return err
		}
		files++
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, needle) {
			found = path
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatalf("no files under %s: the scan checked nothing", dir)
	}
	return found
}

func TestEncryptionAtRest(t *testing.T) {
	dir := t.TempDir()
	key := newEncryptionKey(t)
	var logs bytes.Buffer
	r := startEncryptedRelay(t, dir, key, &logs)
	alice := newDevice(t)
	doc, a := sharedDoc(t, r, alice)
	env := alice.sealedSize(t, doc, 1, 4096)
	a.mustPush(doc, env)
	r.stop()

	// The envelope is ciphertext already, but in the clear on disk it
	// would still show who wrote what and when. Its signature, the last
	// 64 bytes, is a marker no encrypted file contains by chance.
	for name, needle := range map[string][]byte{
		"envelope signature": env[len(env)-64:],
		"author key":         alice.pub,
		"document id":        doc[:],
	} {
		if path := fileContaining(t, dir, needle); path != "" {
			t.Errorf("%s is in the clear in %s", name, path)
		}
	}
	// The control: the same push to an unencrypted relay leaves the
	// signature on disk, so the scan above can find what it looks for.
	plainDir := t.TempDir()
	plain := startRelayWith(t, plainDir, nil)
	doc2, a2 := sharedDoc(t, plain, alice)
	env2 := alice.sealedSize(t, doc2, 1, 4096)
	a2.mustPush(doc2, env2)
	plain.stop()
	if fileContaining(t, plainDir, env2[len(env2)-64:]) == "" {
		t.Fatal("control: an unencrypted relay's files do not contain the envelope either, so the scan proves nothing")
	}

	// Reopen with the key: the data is there.
	r = startEncryptedRelay(t, dir, key, &logs)
	got, _ := storedEnvelopes(t, r, doc, alice)
	checkDeliveries(t, "after reopen with the key", got, []delivery{{1, string(env)}})
	r.stop()

	// The key never reaches the logs, in any encoding.
	for _, form := range keyForms(key) {
		if bytes.Contains(logs.Bytes(), []byte(form)) {
			t.Errorf("relay logs contain the encryption key as %q", form)
		}
	}
}

func TestOpenEncryptedWithoutKeyFails(t *testing.T) {
	dir := t.TempDir()
	key := newEncryptionKey(t)
	var logs bytes.Buffer
	startEncryptedRelay(t, dir, key, &logs).stop()

	_, err := relay.Open(relay.Config{DataDir: dir})

	if !errors.Is(err, relay.ErrEncryptionKeyMismatch) {
		t.Fatalf("Open of an encrypted data directory without the key: err = %v, want ErrEncryptionKeyMismatch", err)
	}
	if !strings.Contains(err.Error(), "encryption key") || !strings.Contains(err.Error(), dir) {
		t.Errorf("error %q does not explain the missing key or name the directory", err)
	}

	other := bytes.Repeat([]byte{7}, relay.EncryptionKeySize)
	if _, err := relay.Open(relay.Config{DataDir: dir, EncryptionKey: other}); !errors.Is(err, relay.ErrEncryptionKeyMismatch) {
		t.Errorf("Open with another key: err = %v, want ErrEncryptionKeyMismatch", err)
	}
}

func TestOpenPlainWithKeyFails(t *testing.T) {
	dir := t.TempDir()
	startRelayWith(t, dir, nil).stop()

	_, err := relay.Open(relay.Config{DataDir: dir, EncryptionKey: newEncryptionKey(t)})

	if !errors.Is(err, relay.ErrEncryptionKeyMismatch) {
		t.Fatalf("Open of a plain data directory with a key: err = %v, want ErrEncryptionKeyMismatch", err)
	}
}

func TestReadEncryptionKeyFile(t *testing.T) {
	dir := t.TempDir()
	raw := bytes.Repeat([]byte{0x5c}, relay.EncryptionKeySize)
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for name, data := range map[string][]byte{
		"raw":          raw,
		"hex":          []byte(hex.EncodeToString(raw)),
		"hex, newline": []byte(hex.EncodeToString(raw) + "\n"),
		"HEX":          []byte(strings.ToUpper(hex.EncodeToString(raw))),
	} {
		key, err := relay.ReadEncryptionKeyFile(write("ok", data))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !bytes.Equal(key, raw) {
			t.Errorf("%s: read another key", name)
		}
	}

	secretText := hex.EncodeToString(raw)
	for name, data := range map[string][]byte{
		"raw with newline": append(bytes.Clone(raw), '\n'),
		"short hex":        []byte(secretText[:62]),
		"not hex":          []byte(strings.Repeat("zz", relay.EncryptionKeySize)),
		"empty":            nil,
		"base64":           []byte(base64.StdEncoding.EncodeToString(raw)),
	} {
		path := write("bad", data)
		_, err := relay.ReadEncryptionKeyFile(path)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, path) || !strings.Contains(msg, "64 hex digits") {
			t.Errorf("%s: error %q does not name the file and the expected format", name, msg)
		}
		if len(data) > 8 && strings.Contains(msg, string(data[:8])) {
			t.Errorf("%s: error %q contains the file's content", name, msg)
		}
	}
	if _, err := relay.ReadEncryptionKeyFile(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing file: err = %v, want one naming the file", err)
	}
}

// keyForms returns the encodings in which a key could leak into text.
func keyForms(key []byte) []string {
	return []string{
		string(key),
		hex.EncodeToString(key),
		strings.ToUpper(hex.EncodeToString(key)),
		base64.StdEncoding.EncodeToString(key),
		base64.RawURLEncoding.EncodeToString(key),
		fmt.Sprint([]byte(key)),
	}
}

func TestEncryptionKeyNeverPrinted(t *testing.T) {
	key := newEncryptionKey(t)
	cfg := relay.Config{DataDir: "/data", EncryptionKey: key}
	var out bytes.Buffer
	jsonLog := slog.New(slog.NewJSONHandler(&out, nil))
	textLog := slog.New(slog.NewTextHandler(&out, nil))
	for _, log := range []*slog.Logger{jsonLog, textLog} {
		log.Info("key", "key", key, "config", cfg)
		log.Info("key", slog.Any("key", key), slog.Any("config", &cfg))
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
		fmt.Fprintf(&out, verb+"\n", key)
		fmt.Fprintf(&out, verb+"\n", cfg)
		fmt.Fprintf(&out, verb+"\n", &cfg)
	}
	if b, err := json.Marshal(cfg); err == nil {
		out.Write(b)
	}

	for _, form := range keyForms(key) {
		if bytes.Contains(out.Bytes(), []byte(form)) {
			t.Errorf("printed output contains the key as %q:\n%s", form, out.String())
		}
	}
	if !strings.Contains(out.String(), "[redacted]") {
		t.Error("printed output never shows [redacted], so the key was not printed through its methods")
	}
}
