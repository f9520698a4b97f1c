package client

import "context"

// Dialer opens a connection to a relay: gorilla/websocket natively
// (package client/wstransport), the browser's WebSocket in WebAssembly
// (package wasm/jsws).
type Dialer interface {
	Dial(ctx context.Context, url string) (Conn, error)
}

// Conn is one WebSocket connection carrying binary frames.
//
// ReadFrame is called from one goroutine and WriteFrame from one other
// goroutine at a time; Close may be called from any goroutine and makes
// a blocked ReadFrame return.
type Conn interface {
	ReadFrame(ctx context.Context) ([]byte, error)
	WriteFrame(ctx context.Context, frame []byte) error
	Close() error
}
