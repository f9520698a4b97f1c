package crdt

import "errors"

var (
	// ErrOutOfRange is returned by the edits and getters of texts and
	// lists when a position or index is outside the container or a delete
	// runs past its end. The container is left unchanged and no update is
	// made.
	ErrOutOfRange = errors.New("position out of range")

	// ErrInvalidUTF8 is returned when inserted text, a string value, a map
	// key or a container name is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("invalid UTF-8")

	// ErrTypeMismatch is returned by Doc.Text, Doc.List, Doc.Map and
	// Doc.Counter when a root container of another type has been edited
	// under the name, and by edits of a root whose name another type has
	// won since the handle was made.
	ErrTypeMismatch = errors.New("container has another type")

	// ErrInvalidValue is returned by Map.Set and List.Insert for a value
	// that is not a JSON value, and by Map.SetNew and List.InsertNew for an
	// unknown Kind.
	ErrInvalidValue = errors.New("invalid value")

	// ErrCounterRange is returned by Counter.Add when the sum would leave
	// the int64 range, and by Counter.Int when adds made concurrently on
	// several replicas took it there.
	ErrCounterRange = errors.New("counter sum out of int64 range")

	// ErrSurrogateSplit is returned by UTF16ToCodePoint for an index
	// between the two UTF-16 code units of a surrogate pair.
	ErrSurrogateSplit = errors.New("index inside a UTF-16 surrogate pair")

	// ErrInvalidUpdate is returned by Doc.Apply when the bytes are not a
	// well-formed update or refer to operations that neither the document
	// nor the update's own dependencies contain. The document is left
	// unchanged.
	ErrInvalidUpdate = errors.New("invalid update")

	// ErrInvalidState is returned by Load when the bytes are not a saved
	// document or are internally inconsistent.
	ErrInvalidState = errors.New("invalid saved state")

	// ErrCounterOverflow is returned when a local edit would take a
	// replica past 2^62 operations, or a map key past a Lamport time of
	// 2^62. That is out of reach in practice, but the limit is checked so
	// that operation counters never wrap.
	ErrCounterOverflow = errors.New("operation counter overflow")
)
