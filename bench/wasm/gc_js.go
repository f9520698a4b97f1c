package main

import "interlude/wasm/gcpolicy"

// The WebAssembly build measures the collector setting that the web app
// runs with; the native build keeps Go's default.
func init() { gcpolicy.Apply() }
