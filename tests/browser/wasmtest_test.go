//go:build !js

package browser

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"interlude/sync/wire"
	"interlude/wasm/web"
)

// runnerPage loads a Go test binary compiled for js/wasm and runs it with
// the arguments given to runGoTest. It returns the binary's exit code and
// everything it printed: wasm_exec.js prints a Go program's standard
// output and error through console.log.
const runnerPage = `<!doctype html>
<meta charset="utf-8">
<title>Go test runner</title>
<script src="wasm_exec.js"></script>
<script>
"use strict";
async function runGoTest(file, args) {
  const lines = [];
  const log = console.log;
  console.log = (...parts) => { lines.push(parts.join(" ")); };
  try {
    const go = new Go();
    go.argv = [file, ...args];
    let code = null;
    go.exit = (c) => { code = c; };
    const { instance } = await WebAssembly.instantiateStreaming(fetch(file), go.importObject);
    await go.run(instance);
    return { code: code, output: lines.join("\n") };
  } finally {
    console.log = log;
  }
}
</script>
`

// testResult is what runGoTest returns.
type testResult struct {
	Code   *int   `json:"code"`
	Output string `json:"output"`
}

// buildGoTest compiles the tests of pkg for js/wasm into dir and returns
// the file's name.
func buildGoTest(t *testing.T, pkg, dir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("find the go command: %v", err)
	}
	name := filepath.Base(pkg) + ".test.wasm"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "test", "-c", "-buildvcs=false", "-o", filepath.Join(dir, name), pkg)
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go test -c %s for js/wasm: %v\n%s", pkg, err, stderr.String())
	}
	return name
}

// runGoTestInBrowser builds the tests of pkg for js/wasm, serves them with
// the runner page, lets prepare act on the page's origin, and runs them in
// Chromium with args.
func runGoTestInBrowser(t *testing.T, pkg string, prepare func(ctx context.Context, origin string) error, args ...string) {
	t.Helper()
	requireChromium(t)
	dir := t.TempDir()
	if err := web.CopyLoader(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "run.html"), []byte(runnerPage), 0o644); err != nil {
		t.Fatal(err)
	}
	name := buildGoTest(t, pkg, dir)
	origin := serveDir(t, dir)

	ctx := newBrowser(t)
	errs := watchPageErrors(t, ctx)
	do(t, ctx, "open the test runner page", errs, chromedp.Navigate(origin+"/run.html"))
	if prepare != nil {
		if err := prepare(ctx, origin); err != nil {
			t.Fatalf("prepare the browser for %s: %v", pkg, err)
		}
	}

	call := "runGoTest(" + strconv.Quote(name) + ", ["
	for i, a := range append([]string{"-test.v"}, args...) {
		if i > 0 {
			call += ", "
		}
		call += strconv.Quote(a)
	}
	call += "])"
	res := get(t, ctx, "run the tests of "+pkg, errs, chromedp.Evaluate[testResult](call, chromedp.EvalAwaitPromise))
	t.Logf("output of the tests of %s in Chromium:\n%s", pkg, res.Output)
	if res.Code == nil {
		t.Fatalf("the test binary of %s did not exit", pkg)
	}
	if *res.Code != 0 {
		t.Fatalf("the tests of %s failed in Chromium with exit code %d (output above)", pkg, *res.Code)
	}
	if !strings.Contains(res.Output, "--- PASS") {
		t.Fatalf("the tests of %s ran no test in Chromium (output above)", pkg)
	}
	if strings.Contains(res.Output, "--- SKIP") {
		t.Errorf("some tests of %s skipped in Chromium, so their setup here is missing (output above)", pkg)
	}
}

// TestIDBStoreInChromium runs the idbstore tests against Chromium's
// IndexedDB, with the origin's storage quota lowered so that the quota
// error path runs for real.
func TestIDBStoreInChromium(t *testing.T) {
	const quota = 8 << 20
	limitQuota := func(ctx context.Context, origin string) error {
		size := float64(quota)
		_, err := chromedp.Call(ctx, storage.OverrideQuotaForOrigin, storage.OverrideQuotaForOriginParams{Origin: origin, QuotaSize: &size})
		return err
	}
	runGoTestInBrowser(t, "interlude/wasm/idbstore", limitQuota, "-quota-bytes="+strconv.Itoa(quota))
}

// TestJSWSInChromium runs the jsws tests against Chromium's WebSocket and
// a gorilla/websocket server on 127.0.0.1 with one endpoint per case.
func TestJSWSInChromium(t *testing.T) {
	srv := httptest.NewServer(wsTestHandler(t))
	t.Cleanup(srv.Close)
	runGoTestInBrowser(t, "interlude/wasm/jsws", nil, "-ws-base=ws://"+strings.TrimPrefix(srv.URL, "http://"))
}

// wsTestHandler serves the endpoints the jsws tests dial.
func wsTestHandler(t *testing.T) http.Handler {
	// The runner page has another port, so another origin, than this
	// server; a test server takes any origin.
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	upgrade := func(w http.ResponseWriter, r *http.Request) *websocket.Conn {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			t.Errorf("upgrade %s: %v", r.URL.Path, err)
			return nil
		}
		ws.SetReadLimit(2 * wire.MaxFrame)
		return ws
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		ws := upgrade(w, r)
		if ws == nil {
			return
		}
		defer ws.Close()
		for {
			kind, msg, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if err := ws.WriteMessage(kind, msg); err != nil {
				return
			}
		}
	})

	mux.HandleFunc("/text", func(w http.ResponseWriter, r *http.Request) {
		ws := upgrade(w, r)
		if ws == nil {
			return
		}
		defer ws.Close()
		ws.WriteMessage(websocket.TextMessage, []byte("a text frame"))
		ws.ReadMessage() // until the client closes
	})

	mux.HandleFunc("/oversized", func(w http.ResponseWriter, r *http.Request) {
		ws := upgrade(w, r)
		if ws == nil {
			return
		}
		defer ws.Close()
		ws.WriteMessage(websocket.BinaryMessage, make([]byte, wire.MaxFrame+1))
		ws.ReadMessage()
	})

	mux.HandleFunc("/close", func(w http.ResponseWriter, r *http.Request) {
		ws := upgrade(w, r)
		if ws == nil {
			return
		}
		defer ws.Close()
		ws.WriteMessage(websocket.BinaryMessage, []byte("last"))
		ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "bye"))
		ws.ReadMessage() // the client's close frame
	})

	mux.HandleFunc("/reject", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no WebSocket here", http.StatusForbidden)
	})

	mux.HandleFunc("/stall", func(w http.ResponseWriter, r *http.Request) {
		// Hold the handshake until the browser gives up on it.
		<-r.Context().Done()
	})
	return mux
}
