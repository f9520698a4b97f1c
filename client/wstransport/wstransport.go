// Package wstransport is the native client.Dialer, over gorilla/websocket.
package wstransport

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"interlude/client"
	"interlude/sync/wire"
)

// writeTimeout bounds one frame write, so a stalled relay cannot block
// the sync loop forever.
const writeTimeout = 30 * time.Second

// Dialer implements client.Dialer.
type Dialer struct{}

// Dial implements client.Dialer.
func (Dialer) Dial(ctx context.Context, url string) (client.Conn, error) {
	d := websocket.Dialer{HandshakeTimeout: 15 * time.Second}
	ws, resp, err := d.DialContext(ctx, url, nil)
	switch {
	case errors.Is(err, websocket.ErrBadHandshake) && resp != nil:
		return nil, fmt.Errorf("wstransport: %s responded with HTTP %d, not a WebSocket upgrade: check that the URL ends in /v1/sync", url, resp.StatusCode)
	case errors.Is(err, syscall.ECONNREFUSED):
		return nil, fmt.Errorf("wstransport: nothing is listening at %s: check that the relay is running at this address: %w", url, err)
	case err != nil:
		return nil, fmt.Errorf("wstransport: dial %s: %w", url, err)
	}
	ws.SetReadLimit(wire.MaxFrame)
	c := &conn{ws: ws, stop: make(chan struct{})}
	// Closing the socket is how a blocked read learns that ctx ended.
	go func() {
		select {
		case <-ctx.Done():
			ws.Close()
		case <-c.stop:
		}
	}()
	return c, nil
}

type conn struct {
	ws        *websocket.Conn
	stop      chan struct{}
	closeOnce sync.Once
}

func (c *conn) ReadFrame(ctx context.Context) ([]byte, error) {
	for {
		kind, b, err := c.ws.ReadMessage()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, err
		}
		if kind == websocket.BinaryMessage {
			return b, nil
		}
	}
}

func (c *conn) WriteFrame(_ context.Context, frame []byte) error {
	c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.ws.WriteMessage(websocket.BinaryMessage, frame)
}

// closeTimeout bounds the wait to send the close frame to a relay that
// may be gone.
const closeTimeout = time.Second

// Close sends the relay a normal close frame, so that it does not log an
// abnormal closure, and closes the connection.
func (c *conn) Close() error {
	c.closeOnce.Do(func() { close(c.stop) })
	// The relay may already be gone; the connection closes either way.
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(closeTimeout))
	return c.ws.Close()
}
