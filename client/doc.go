// Package client is the local-first client of Interlude: a device's
// identity, its local store of documents, the outbox of updates the relay
// has not yet acknowledged, and the sync loop that pushes the outbox and
// pulls what others wrote.
//
// Every edit is applied to the local CRDT document and written to the
// Store, together with its sealed envelope in the outbox, in one atomic
// write. Once that write returns, the edit is saved on this device and
// survives a closed tab or a killed process. The sync loop delivers it when
// a relay is reachable, and removes it from the outbox only when the relay
// acknowledges it.
//
// The package runs natively and in WebAssembly. The store and the
// connection are interfaces: client/badgerstore and client/wstransport
// implement them natively, wasm/idbstore and wasm/jsws in the browser.
package client
