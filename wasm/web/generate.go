package web

// Build interlude.wasm and copy wasm_exec.js into static/, so that FS
// serves a working app. The go command runs this in this folder.
//go:generate go run ./internal/build -out static
