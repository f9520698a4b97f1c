package wstransport_test

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"interlude/client"
	"interlude/client/badgerstore"
	"interlude/client/wstransport"
	"interlude/relay"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSessionEndsWithCloseFrame syncs once against a real relay and
// checks that the relay logs a normal close (code 1000), not the abnormal
// closure (code 1006) of a connection dropped without a close frame.
func TestSessionEndsWithCloseFrame(t *testing.T) {
	logs := &lockedBuffer{}
	srv, err := relay.Open(relay.Config{DataDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })

	id, err := client.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	store, err := badgerstore.Open(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Open(context.Background(), client.Config{Store: store, Identity: id, Dialer: wstransport.Dialer{}, RelayURL: "ws://" + ln.Addr().String() + "/v1/sync"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SyncOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs.String(), `msg="connection closed"`) {
		if time.Now().After(deadline) {
			t.Fatalf("the relay logged no closed connection:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Contains(logs.String(), "1006") {
		t.Errorf("the relay logged an abnormal closure:\n%s", logs.String())
	}
}
