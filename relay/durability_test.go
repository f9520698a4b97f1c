package relay_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"interlude/relay"
)

func TestEnvelopesSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	alice := newDevice(t)
	r := startRelayWith(t, dir, nil)
	doc, a := sharedDoc(t, r, alice)
	var want []delivery
	for seq := uint64(1); seq <= 3; seq++ {
		env := alice.sealed(t, doc, seq)
		want = append(want, delivery{a.mustPush(doc, env), string(env)})
	}
	r.stop()

	r = startRelayWith(t, dir, nil)
	got, last := storedEnvelopes(t, r, doc, alice)

	checkDeliveries(t, "after restart", got, want)
	if last != 3 {
		t.Errorf("CaughtUp at cursor %d after restart, want 3", last)
	}

	// The sequence index and membership survived too.
	a = connect(t, r, alice)
	if cursor := a.mustPush(doc, []byte(want[1].Envelope)); cursor != 2 {
		t.Errorf("retried push of seq 2 after restart acked at cursor %d, want 2", cursor)
	}
	if cursor := a.mustPush(doc, alice.sealed(t, doc, 4)); cursor != 4 {
		t.Errorf("push of seq 4 after restart acked at cursor %d, want 4", cursor)
	}
	if docs := a.listDocs(); len(docs.Grants) != 1 {
		t.Errorf("%d grants after restart, want 1", len(docs.Grants))
	}
}

func TestOpenDataDirInUse(t *testing.T) {
	dir := t.TempDir()
	startRelayWith(t, dir, nil)

	srv, err := relay.Open(relay.Config{DataDir: dir})
	if err == nil {
		srv.Shutdown(context.Background())
		t.Fatal("second Open of a data directory in use succeeded")
	}
	if !strings.Contains(err.Error(), dir) {
		t.Errorf("error %q does not name the data directory", err)
	}
}

func TestOpenDataDirIsFile(t *testing.T) {
	file := t.TempDir() + "/file"
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	_, err := relay.Open(relay.Config{DataDir: file})

	if err == nil || !strings.Contains(err.Error(), file) {
		t.Fatalf("Open of a plain file returned %v, want an error naming it", err)
	}
}

// childDataDirEnv makes the test binary run TestRelayChildProcess as a
// relay serving that data directory, for TestAckedPushSurvivesKill.
const childDataDirEnv = "INTERLUDE_RELAY_CHILD_DATA_DIR"

// TestRelayChildProcess serves a relay until killed when started by
// TestAckedPushSurvivesKill, and skips otherwise.
func TestRelayChildProcess(t *testing.T) {
	dir := os.Getenv(childDataDirEnv)
	if dir == "" {
		t.Skip("runs only as the child process of TestAckedPushSurvivesKill")
	}
	srv, err := relay.Open(relay.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("addr=%s\n", ln.Addr())
	srv.Serve(ln)
}

func TestAckedPushSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestRelayChildProcess$")
	cmd.Env = append(os.Environ(), childDataDirEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "addr=")
	if err != nil || !ok {
		t.Fatalf("child relay printed %q (%v), want its address", line, err)
	}
	child := &testRelay{t: t, addr: addr}

	alice := newDevice(t)
	doc, a := sharedDoc(t, child, alice)
	var want []delivery
	for seq := uint64(1); seq <= 5; seq++ {
		env := alice.sealed(t, doc, seq)
		want = append(want, delivery{a.mustPush(doc, env), string(env)})
	}
	// SIGKILL: no Shutdown, no Badger Close.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	r := startRelayWith(t, dir, nil)
	got, last := storedEnvelopes(t, r, doc, alice)

	checkDeliveries(t, "after the kill", got, want)
	if last != uint64(len(want)) {
		t.Errorf("CaughtUp at cursor %d after the kill, want %d", last, len(want))
	}
}
