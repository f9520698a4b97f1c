package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"interlude/client"
	"interlude/client/badgerstore"
	"interlude/client/wstransport"
	"interlude/crdt"
	"interlude/internal/trace"
	"interlude/relay"
)

// traceResult is the JSON line that 'interlude bench trace' prints.
type traceResult struct {
	Trace   string `json:"trace"`
	Edits   int    `json:"edits"`
	Batch   int    `json:"batch"`
	Updates int    `json:"updates"`
	// WireBytes counts the WebSocket frame payloads both clients sent and
	// received.
	WireBytes int64 `json:"wire_bytes"`
	// ApplyMS is client A's time to make every update locally: CRDT edits,
	// sealing and the synced write to its store.
	ApplyMS float64 `json:"apply_ms"`
	// CRDTApplyMS is the time of the same edits on a bare CRDT document,
	// without encryption or storage.
	CRDTApplyMS float64 `json:"crdt_apply_ms"`
	// ConvergeMS runs from the moment both clients connect until B's text
	// equals the trace's final text.
	ConvergeMS float64 `json:"converge_ms"`
	OK         bool    `json:"ok"`
}

func runBenchTrace(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench trace", flag.ContinueOnError)
	fs.SetOutput(stderr)
	batch := fs.Int("batch", 100, "edits grouped into one update")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up when B has not converged after this long")
	setUsage(fs, "FILE", "Replay the editing trace FILE through two clients and a relay on loopback, and print one JSON line of figures.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("bench trace takes one trace file, for example ../shared/traces/automerge-paper.json.gz")
	}
	if *batch < 1 {
		return fmt.Errorf("invalid --batch %d: want at least 1", *batch)
	}
	tr, err := trace.Load(fs.Arg(0))
	if err != nil {
		return err
	}
	if tr.Kind == "concurrent" {
		return fmt.Errorf("%s is a concurrent trace: bench trace replays sequential traces only", fs.Arg(0))
	}
	res, err := benchTrace(ctx, tr, *batch, *timeout)
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(res)
}

func benchTrace(ctx context.Context, tr *trace.Trace, batch int, timeout time.Duration) (*traceResult, error) {
	res := &traceResult{Trace: tr.Name, Edits: tr.Edits(), Batch: batch}
	tmp, err := os.MkdirTemp("", "interlude-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	patches := tr.Patches()

	// A bare CRDT replay first, as the floor the client's path adds to.
	start := time.Now()
	bare := crdt.NewDoc(1)
	text, err := bare.Text("body")
	if err != nil {
		return nil, err
	}
	if err := replay(text, patches); err != nil {
		return nil, err
	}
	res.CRDTApplyMS = ms(time.Since(start))

	// 1. A relay on loopback, in this process.
	srv, err := relay.Open(relay.Config{DataDir: filepath.Join(tmp, "relay"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Shutdown(context.Background())
		return nil, err
	}
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())
	relayURL := "ws://" + ln.Addr().String() + "/v1/sync"

	var wireBytes atomic.Int64
	dialer := countingDialer{inner: wstransport.Dialer{}, bytes: &wireBytes}
	a, err := benchClient(ctx, filepath.Join(tmp, "a"), relayURL, dialer)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	b, err := benchClient(ctx, filepath.Join(tmp, "b"), relayURL, dialer)
	if err != nil {
		return nil, err
	}
	defer b.Close()

	// 2. A makes the document, shares it with B and registers both with
	//    the relay, so B can subscribe before any update exists.
	doc, err := a.CreateDocument(ctx)
	if err != nil {
		return nil, err
	}
	if err := a.Share(ctx, doc, b.Identity().Public()); err != nil {
		return nil, err
	}
	// The offer, B's reply with its key, the addition, and B's fetch.
	for _, c := range []*client.Client{a, b, a, b} {
		if err := c.SyncOnce(ctx); err != nil {
			return nil, err
		}
	}
	if _, err := b.Text(doc); err != nil {
		return nil, fmt.Errorf("the reader did not receive the shared document: %w", err)
	}
	wireBytes.Store(0)

	// 3. A replays the trace offline, one update per batch of edits.
	start = time.Now()
	for from := 0; from < res.Edits; from += batch {
		to := min(from+batch, res.Edits)
		err := a.Edit(ctx, doc, func(t *crdt.Text) error { return replay(t, patches[from:to]) })
		if err != nil {
			return nil, err
		}
		res.Updates++
	}
	res.ApplyMS = ms(time.Since(start))

	// 4. Both connect; B converges when its text is the final text.
	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start = time.Now()
	go a.Run(runCtx)
	go b.Run(runCtx)
	for {
		got, err := b.Text(doc)
		if err == nil && len(got) == len(tr.EndContent) && got == tr.EndContent {
			res.ConvergeMS = ms(time.Since(start))
			res.OK = true
			break
		}
		if runCtx.Err() != nil {
			res.ConvergeMS = ms(time.Since(start))
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	cancel()
	res.WireBytes = wireBytes.Load()
	return res, nil
}

// replay applies patches to t in order.
func replay(t *crdt.Text, patches []trace.Patch) error {
	for i, p := range patches {
		if p.Delete > 0 {
			if err := t.Delete(p.Pos, p.Delete); err != nil {
				return fmt.Errorf("patch %d: %w", i, err)
			}
		}
		if p.Insert != "" {
			if err := t.Insert(p.Pos, p.Insert); err != nil {
				return fmt.Errorf("patch %d: %w", i, err)
			}
		}
	}
	return nil
}

func benchClient(ctx context.Context, dir, relayURL string, dialer client.Dialer) (*client.Client, error) {
	id, err := client.CreateIdentityFile(dir)
	if err != nil {
		return nil, err
	}
	store, err := badgerstore.Open(filepath.Join(dir, "store"))
	if err != nil {
		return nil, err
	}
	return client.Open(ctx, client.Config{Store: store, Identity: id, Dialer: dialer, RelayURL: relayURL})
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// countingDialer counts the bytes of every frame its connections carry.
type countingDialer struct {
	inner client.Dialer
	bytes *atomic.Int64
}

func (d countingDialer) Dial(ctx context.Context, url string) (client.Conn, error) {
	c, err := d.inner.Dial(ctx, url)
	if err != nil {
		return nil, err
	}
	return countingConn{Conn: c, bytes: d.bytes}, nil
}

type countingConn struct {
	client.Conn
	bytes *atomic.Int64
}

func (c countingConn) ReadFrame(ctx context.Context) ([]byte, error) {
	b, err := c.Conn.ReadFrame(ctx)
	c.bytes.Add(int64(len(b)))
	return b, err
}

func (c countingConn) WriteFrame(ctx context.Context, frame []byte) error {
	c.bytes.Add(int64(len(frame)))
	return c.Conn.WriteFrame(ctx, frame)
}
