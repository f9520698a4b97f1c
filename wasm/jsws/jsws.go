//go:build js && wasm

// Package jsws is the client's Dialer in the browser: a connection to a
// relay over the browser's WebSocket object, carrying binary frames.
//
// The browser delivers frames through onmessage on the JavaScript event
// loop. The handler copies each frame into a queue and returns at once;
// ReadFrame waits on a channel for the queue to fill. A frame larger than
// wire.MaxFrame, a text frame, or more unread data than MaxQueued closes
// the connection, so a misbehaving peer cannot grow the page's memory
// without bound.
package jsws

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall/js"
	"time"

	"interlude/client"
	"interlude/sync/wire"
)

// MaxQueued is the most bytes of received frames that wait for ReadFrame
// before the connection is closed.
const MaxQueued = 4 * wire.MaxFrame

// maxBuffered is the most bytes the browser may hold unsent before
// WriteFrame waits for them to drain. The browser's WebSocket.send never
// blocks, so this is the only back pressure on a writer.
const maxBuffered = 2 * wire.MaxFrame

// drainPoll is how often WriteFrame checks bufferedAmount while it waits.
const drainPoll = 20 * time.Millisecond

// closeNormal is the close code this package sends. The browser's
// WebSocket.close accepts only 1000 and 3000 to 4999, so the protocol
// codes for a text frame (1003) or a frame too large (1009) cannot be
// sent, and the reason text names the problem instead.
const closeNormal = 1000

// CloseError reports how the connection was closed by the relay or the
// network. Code 1006 means it closed without a close frame: the relay is
// down, unreachable, or refused the handshake.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("jsws: connection closed with code %d", e.Code)
	}
	return fmt.Sprintf("jsws: connection closed with code %d: %s", e.Code, e.Reason)
}

// Dialer opens WebSocket connections with the browser's WebSocket object.
type Dialer struct{}

var _ client.Dialer = Dialer{}

// Dial connects to url (ws:// or wss://) and returns once the connection
// is open, or fails with a *CloseError when it could not be opened.
func (Dialer) Dial(ctx context.Context, url string) (client.Conn, error) {
	ctor := js.Global().Get("WebSocket")
	if !ctor.Truthy() {
		return nil, errors.New("jsws: this JavaScript environment has no WebSocket: run in a browser")
	}

	var ws js.Value
	if err := catch(func() { ws = ctor.New(url) }); err != nil {
		return nil, fmt.Errorf("jsws: open %q: %w (want a ws:// or wss:// URL; a page served over https needs wss://)", url, err)
	}
	ws.Set("binaryType", "arraybuffer")

	c := &conn{
		ws:     ws,
		url:    url,
		opened: make(chan struct{}),
		notify: make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	c.attach()

	select {
	case <-c.opened:
		return c, nil
	case <-c.done:
		return nil, fmt.Errorf("jsws: connect to %s: %w", url, c.endErr())
	case <-ctx.Done():
		c.Close()
		return nil, fmt.Errorf("jsws: connect to %s: %w", url, ctx.Err())
	}
}

// conn is one browser WebSocket.
type conn struct {
	ws  js.Value
	url string

	opened chan struct{} // closed by onopen
	notify chan struct{} // receives a token when a frame is queued or the connection ends
	done   chan struct{} // closed when the connection ends

	mu       sync.Mutex
	queue    [][]byte  // received frames not yet read; guarded by mu
	queued   int       // bytes in queue; guarded by mu
	err      error     // the reason the connection ended, set once; guarded by mu
	handlers []js.Func // released once the connection ends; guarded by mu
}

// attach installs the WebSocket's event handlers. Each one returns without
// blocking, because it runs on the JavaScript event loop.
func (c *conn) attach() {
	onOpen := js.FuncOf(func(js.Value, []js.Value) any {
		close(c.opened)
		return nil
	})
	onMessage := js.FuncOf(func(_ js.Value, args []js.Value) any {
		c.receive(args[0].Get("data"))
		return nil
	})
	onClose := js.FuncOf(func(_ js.Value, args []js.Value) any {
		ev := args[0]
		c.end(&CloseError{Code: ev.Get("code").Int(), Reason: ev.Get("reason").String()}, false)
		return nil
	})
	// The error event carries no detail; the close event that always
	// follows it has the code.
	onError := js.FuncOf(func(js.Value, []js.Value) any { return nil })

	c.ws.Set("onopen", onOpen)
	c.ws.Set("onmessage", onMessage)
	c.ws.Set("onclose", onClose)
	c.ws.Set("onerror", onError)
	c.handlers = []js.Func{onOpen, onMessage, onClose, onError}
}

// receive queues one frame, or ends the connection when the frame breaks
// the protocol or the queue's limit.
func (c *conn) receive(data js.Value) {
	if !data.InstanceOf(js.Global().Get("ArrayBuffer")) {
		c.fail("text frame", fmt.Errorf("jsws: relay %s sent a text frame; the protocol uses binary frames only", c.url))
		return
	}
	n := data.Get("byteLength").Int()
	if n > wire.MaxFrame {
		c.fail("frame too large", fmt.Errorf("jsws: relay %s sent a frame of %d bytes, more than the limit of %d", c.url, n, wire.MaxFrame))
		return
	}

	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	if c.queued+n > MaxQueued {
		c.mu.Unlock()
		c.fail("reader too slow", fmt.Errorf("jsws: more than %d bytes of frames from %s are waiting to be read", MaxQueued, c.url))
		return
	}
	frame := make([]byte, n)
	js.CopyBytesToGo(frame, js.Global().Get("Uint8Array").New(data))
	c.queue = append(c.queue, frame)
	c.queued += n
	c.mu.Unlock()

	c.wake()
}

// fail closes the WebSocket with reason and ends the connection with err.
func (c *conn) fail(reason string, err error) {
	_ = catch(func() { c.ws.Call("close", closeNormal, reason) })
	c.end(err, true)
}

// end records why the connection ended, once, and wakes a blocked reader.
// When dropQueue is set, frames not yet read are discarded: this side
// closed the connection and will not read them. After the relay closes,
// frames it sent before closing are still read.
func (c *conn) end(err error, dropQueue bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	if dropQueue {
		c.queue, c.queued = nil, 0
	}
	handlers := c.handlers
	c.handlers = nil
	c.mu.Unlock()

	for _, h := range []string{"onopen", "onmessage", "onclose", "onerror"} {
		c.ws.Set(h, js.Null())
	}
	close(c.done)
	c.wake()
	// end may run inside one of these handlers, so they are released once
	// it has returned.
	go func() {
		for _, h := range handlers {
			h.Release()
		}
	}()
}

// endErr returns why the connection ended, or nil while it is open.
func (c *conn) endErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *conn) wake() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// ReadFrame returns the next binary frame. A ctx that ends only stops this
// call; the connection stays open.
func (c *conn) ReadFrame(ctx context.Context) ([]byte, error) {
	for {
		c.mu.Lock()
		if len(c.queue) > 0 {
			frame := c.queue[0]
			c.queue[0] = nil
			c.queue = c.queue[1:]
			c.queued -= len(frame)
			c.mu.Unlock()
			return frame, nil
		}
		err := c.err
		c.mu.Unlock()
		if err != nil {
			return nil, err
		}

		select {
		case <-c.notify:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// WriteFrame sends frame as one binary message. It waits while the
// browser holds more than maxBuffered bytes unsent.
func (c *conn) WriteFrame(ctx context.Context, frame []byte) error {
	if len(frame) > wire.MaxFrame {
		return fmt.Errorf("jsws: frame of %d bytes is larger than the limit of %d", len(frame), wire.MaxFrame)
	}
	for c.ws.Get("bufferedAmount").Int() > maxBuffered {
		select {
		case <-c.done:
			return c.endErr()
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(drainPoll):
		}
	}

	if err := c.endErr(); err != nil {
		return err
	}
	a := js.Global().Get("Uint8Array").New(len(frame))
	js.CopyBytesToJS(a, frame)
	if err := catch(func() { c.ws.Call("send", a) }); err != nil {
		return fmt.Errorf("jsws: send to %s: %w", c.url, err)
	}
	return nil
}

// Close closes the connection. Frames not yet read are dropped, and a
// blocked ReadFrame returns an error that matches net.ErrClosed.
func (c *conn) Close() error {
	c.fail("", fmt.Errorf("jsws: connection to %s: %w", c.url, net.ErrClosed))
	return nil
}

// catch runs f and returns a JavaScript exception thrown inside it as an
// error that starts with the exception's name, such as SyntaxError.
// syscall/js reports such an exception as a panic of js.Error.
func catch(f func()) (err error) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		jsErr, ok := r.(js.Error)
		if !ok {
			panic(r)
		}
		name, msg := "Error", jsErr.Value.String()
		if n := jsErr.Value.Get("name"); n.Type() == js.TypeString {
			name = n.String()
		}
		if m := jsErr.Value.Get("message"); m.Type() == js.TypeString {
			msg = m.String()
		}
		err = fmt.Errorf("%s: %s", name, msg)
	}()
	f()
	return nil
}
