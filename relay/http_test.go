package relay_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"interlude/relay"
)

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body of %s: %v", url, err)
	}
	return resp, string(body)
}

func TestHealthz(t *testing.T) {
	r := startRelay(t)

	resp, body := get(t, r.url("/healthz"))

	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d, want 200", resp.StatusCode)
	}
	if body != "ok" {
		t.Errorf("body %q, want %q", body, "ok")
	}
}

func TestHealthzAfterShutdown(t *testing.T) {
	srv, err := relay.Open(relay.Config{DataDir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}

	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))

	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("status %d with the database closed, want 503", rec.Code)
	}
}

func TestWebAppServedFromFS(t *testing.T) {
	web := fstest.MapFS{
		"index.html": {Data: []byte("<title>Interlude</title>")},
		"app.wasm":   {Data: []byte("\x00asm\x01\x00\x00\x00")},
	}
	r := startRelayWith(t, t.TempDir(), web)

	resp, body := get(t, r.url("/"))
	if resp.StatusCode != http.StatusOK || body != "<title>Interlude</title>" {
		t.Errorf("GET / = %d %q, want 200 and index.html", resp.StatusCode, body)
	}

	resp, body = get(t, r.url("/app.wasm"))
	if resp.StatusCode != http.StatusOK || body != "\x00asm\x01\x00\x00\x00" {
		t.Errorf("GET /app.wasm = %d %q, want 200 and the module", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/wasm" {
		t.Errorf("Content-Type of a .wasm file is %q, want application/wasm", ct)
	}

	resp, _ = get(t, r.url("/missing.js"))
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /missing.js status %d, want 404", resp.StatusCode)
	}
}

func TestWebAppNotBuilt(t *testing.T) {
	r := startRelay(t)

	resp, body := get(t, r.url("/"))

	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("status %d, want 404", resp.StatusCode)
	}
	if !strings.Contains(body, "go generate ./wasm/web") {
		t.Errorf("page %q does not say how to build the web app", body)
	}
}

func TestSyncRequiresWebSocket(t *testing.T) {
	r := startRelay(t)

	resp, _ := get(t, r.url("/v1/sync"))

	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("plain GET /v1/sync status %d, want 400", resp.StatusCode)
	}
}
