// Package gcpolicy sets the garbage collector for the WebAssembly client.
//
// In a browser the Go program runs on one thread, so the collector cannot
// mark on another core as it does natively. Marking then runs in
// allocation assists between the program's own steps, and the write
// barrier stays on for as long as a cycle lasts. A replay of the
// automerge-paper trace spent about 40% of its time in the collector
// with Go's default setting, and none of it with Apply's (see "WebAssembly
// in Node" in docs/benchmarks.md). A homework document takes a few MiB,
// so collecting less often costs little memory. The soft limit makes the
// collector work harder long before a tab would run out.
//
// The web app calls Apply first thing, and the WebAssembly benchmark calls
// it too, so that the figures show what the browser runs.
package gcpolicy

import "runtime/debug"

const (
	// Percent lets the heap grow to five times what survived the last
	// collection before the next one starts, where Go's default is twice.
	Percent = 400
	// MemoryLimit is the soft limit of the Go heap in bytes.
	MemoryLimit = 256 << 20
)

// Apply sets Percent and MemoryLimit for the running program.
func Apply() {
	debug.SetGCPercent(Percent)
	debug.SetMemoryLimit(MemoryLimit)
}
