// Package web holds the browser app: the page, its script and style, and,
// once generated, the WebAssembly client (interlude.wasm) with Go's
// wasm_exec.js loader. A relay serves FS to browsers.
//
// The two generated files are not in version control. Run
//
//	go generate ./wasm/web
//
// to build them into static/ before building a binary that embeds the app,
// or call Build to write the whole app into another folder.
package web

import (
	"embed"
	"io/fs"
)

// Names of the generated files, as index.html and app.js load them.
const (
	WASMFile   = "interlude.wasm"
	LoaderFile = "wasm_exec.js"
)

//go:embed static
var static embed.FS

// FS returns the app's files with the static folder as root, so
// "index.html" is at the top.
func FS() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		// fs.Sub fails only for an invalid path, and "static" is valid.
		panic(err)
	}
	return sub
}
