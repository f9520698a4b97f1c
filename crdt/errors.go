package crdt

import "errors"

var (
	// ErrOutOfRange is returned by Text.Insert and Text.Delete when a
	// position is outside the text or a delete runs past its end. The text
	// is left unchanged and no update is made.
	ErrOutOfRange = errors.New("position out of range")

	// ErrInvalidUTF8 is returned when inserted text or a container name is
	// not valid UTF-8.
	ErrInvalidUTF8 = errors.New("invalid UTF-8")

	// ErrTypeMismatch is returned by Doc.Text when the name already belongs
	// to a root container of another type. Texts are the only type so far,
	// so it is reserved for the list, map and counter containers to come.
	ErrTypeMismatch = errors.New("container has another type")

	// ErrInvalidUpdate is returned by Doc.Apply when the bytes are not a
	// well-formed update or refer to operations that neither the document
	// nor the update's own dependencies contain. The document is left
	// unchanged.
	ErrInvalidUpdate = errors.New("invalid update")

	// ErrInvalidState is returned by Load when the bytes are not a saved
	// document or are internally inconsistent.
	ErrInvalidState = errors.New("invalid saved state")

	// ErrCounterOverflow is returned when a local edit would take a
	// replica past 2^62 operations. That is out of reach in practice, but
	// the limit is checked so that counters never wrap.
	ErrCounterOverflow = errors.New("operation counter overflow")
)
