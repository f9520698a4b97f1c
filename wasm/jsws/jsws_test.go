//go:build js && wasm

package jsws

// These tests need a browser's WebSocket and a server to talk to. The
// browser test in tests/browser compiles them with GOOS=js GOARCH=wasm,
// starts a WebSocket server on 127.0.0.1 and runs the test binary in
// headless Chromium with -ws-base set to that server.

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"net"
	"strings"
	"testing"
	"time"

	"interlude/client"
	"interlude/sync/wire"
)

var wsBase = flag.String("ws-base", "", "base URL of the test WebSocket server, such as ws://127.0.0.1:PORT")

// guard bounds each test's waits, so a missing event fails the test
// instead of hanging the browser.
const guard = 30 * time.Second

func dial(t *testing.T, path string) client.Conn {
	t.Helper()
	if *wsBase == "" {
		t.Skip("run by tests/browser with -ws-base set to its WebSocket server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	c, err := Dialer{}.Dial(ctx, *wsBase+path)
	if err != nil {
		t.Fatalf("Dial(%s): %v", path, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func read(t *testing.T, c client.Conn) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	return c.ReadFrame(ctx)
}

func TestEchoRoundTrip(t *testing.T) {
	c := dial(t, "/echo")
	frames := [][]byte{
		{},
		{0},
		[]byte("hello"),
		bytes.Repeat([]byte{0xab}, 64<<10),
		bytes.Repeat([]byte{0x01, 0xff}, wire.MaxFrame/2),
	}
	for _, f := range frames {
		if err := c.WriteFrame(context.Background(), f); err != nil {
			t.Fatalf("WriteFrame(%d bytes): %v", len(f), err)
		}
	}
	for _, want := range frames {
		got, err := read(t, c)
		if err != nil {
			t.Fatalf("ReadFrame: %v", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("echoed frame of %d bytes differs from the %d-byte frame sent", len(got), len(want))
		}
	}
}

func TestWriteFrameTooLarge(t *testing.T) {
	c := dial(t, "/echo")
	err := c.WriteFrame(context.Background(), make([]byte, wire.MaxFrame+1))
	if err == nil || !strings.Contains(err.Error(), "larger than the limit") {
		t.Fatalf("WriteFrame over the limit: %v, want an error naming the limit", err)
	}
}

func TestTextFrameEndsConnection(t *testing.T) {
	c := dial(t, "/text")
	_, err := read(t, c)
	if err == nil || !strings.Contains(err.Error(), "text frame") {
		t.Fatalf("ReadFrame after a text frame: %v, want an error about the text frame", err)
	}
}

func TestOversizedFrameEndsConnection(t *testing.T) {
	c := dial(t, "/oversized")
	_, err := read(t, c)
	if err == nil || !strings.Contains(err.Error(), "more than the limit") {
		t.Fatalf("ReadFrame after an oversized frame: %v, want an error naming the limit", err)
	}
}

func TestRemoteCloseAfterFrame(t *testing.T) {
	c := dial(t, "/close")
	got, err := read(t, c)
	if err != nil {
		t.Fatalf("ReadFrame of the frame sent before the close: %v", err)
	}
	if string(got) != "last" {
		t.Errorf("frame before the close = %q, want %q", got, "last")
	}
	_, err = read(t, c)
	var ce *CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("ReadFrame after the relay closed: %v, want *CloseError", err)
	}
	if ce.Code != 4001 || ce.Reason != "bye" {
		t.Errorf("close = %d %q, want 4001 %q", ce.Code, ce.Reason, "bye")
	}
	if err := c.WriteFrame(context.Background(), []byte("x")); err == nil {
		t.Errorf("WriteFrame after the relay closed succeeded, want an error")
	}
}

func TestDialRejectedHandshake(t *testing.T) {
	if *wsBase == "" {
		t.Skip("run by tests/browser with -ws-base set to its WebSocket server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	_, err := Dialer{}.Dial(ctx, *wsBase+"/reject")
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != 1006 {
		t.Fatalf("Dial to an endpoint that rejects the handshake: %v, want *CloseError with code 1006", err)
	}
}

func TestDialInvalidURL(t *testing.T) {
	// The browser rejects the scheme before it opens any connection.
	const url = "ftp://127.0.0.1/v1/sync"
	_, err := Dialer{}.Dial(context.Background(), url)
	if err == nil || !strings.Contains(err.Error(), "SyntaxError") || !strings.Contains(err.Error(), "ws://") {
		t.Fatalf("Dial(%q): %v, want the browser's SyntaxError and a hint naming the ws:// form", url, err)
	}
}

func TestDialContextCanceled(t *testing.T) {
	if *wsBase == "" {
		t.Skip("run by tests/browser with -ws-base set to its WebSocket server")
	}
	// The /stall endpoint never completes the handshake, so only ctx
	// can end the Dial.
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(100 * time.Millisecond)
		cancel()
	}()
	_, err := Dialer{}.Dial(ctx, *wsBase+"/stall")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Dial with ctx canceled during the handshake: %v, want context.Canceled", err)
	}
}

func TestReadFrameContextLeavesConnOpen(t *testing.T) {
	c := dial(t, "/echo")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.ReadFrame(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadFrame with a canceled ctx: %v, want context.Canceled", err)
	}
	if err := c.WriteFrame(context.Background(), []byte("still open")); err != nil {
		t.Fatalf("WriteFrame after a canceled read: %v", err)
	}
	got, err := read(t, c)
	if err != nil || string(got) != "still open" {
		t.Errorf("ReadFrame = %q, %v; want the echo of %q", got, err, "still open")
	}
}

func TestCloseUnblocksReadFrame(t *testing.T) {
	c := dial(t, "/echo")
	result := make(chan error, 1)
	go func() {
		_, err := read(t, c)
		result <- err
	}()
	// Give the reader time to block; the check below holds either way.
	time.Sleep(50 * time.Millisecond)
	c.Close()
	if err := <-result; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadFrame blocked during Close returned %v, want net.ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
