// Package sync is the root of the code that relay and client share: the
// envelope that carries one encrypted, signed update (package
// sync/envelope) and the WebSocket wire protocol (package sync/wire).
//
// Neither subpackage understands documents. They move opaque bytes, so the
// relay can link them without linking anything that could read a journal.
// The folder shares its name with the standard library's sync; the code
// lives in subpackages so that no file needs an import alias.
package sync
