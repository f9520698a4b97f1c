//go:build js && wasm

package main

// This file runs the calls that need a relay session of their own beside
// the client's Run. The client counts its open sessions, so one ending
// beside Run's leaves the page connected and its documents synced.
//
// resync also covers a gap of Run. Within its session the client requests
// the responses to invitations made here only on a timer (relistInterval
// in package client) or when a local change is queued, and a document
// reaches it only after the relay has stored the entry that shares it.
// recover needs the new documents before its Promise resolves, and
// invite needs the relay to know the invitation before the link is
// shown, so both sync once instead of waiting.

import (
	"context"
	"errors"
	"time"

	"interlude/client"
)

// relayTimeout bounds each sync or request that an API call waits for. The
// call holds off a lock meanwhile, so a relay that accepts the connection
// but never replies must not hold it off for good.
const relayTimeout = time.Minute

var errNoRelay = named("InvalidStateError", errors.New("interlude: no relay is configured: start with a relay URL"))

// resync syncs once beside the client's Run and returns SyncOnce's error.
func (a *app) resync(c *client.Client) error {
	return a.withRelay(c.SyncOnce)
}

// withRelay calls fn with a context that ends after relayTimeout and
// returns fn's error. The caller must hold ops for reading (acquire), so
// that no lock closes the client meanwhile.
func (a *app) withRelay(fn func(ctx context.Context) error) error {
	a.mu.Lock()
	relay := a.cfg.relay
	a.mu.Unlock()
	if relay == "" {
		return errNoRelay
	}
	ctx, cancel := context.WithTimeout(context.Background(), relayTimeout)
	defer cancel()
	return fn(ctx)
}
