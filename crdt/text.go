package crdt

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Text is a text container: a root of a Doc or nested in a map or list.
// Positions and counts are Unicode code points. Its methods lock the
// document, so a Text is as safe for concurrent use as its Doc.
type Text container

// Text returns the root text container called name, creating it if the
// document has none. A text appears in State once it has been edited here
// or by an applied update, so that replicas holding the same updates
// always show the same state. It returns ErrInvalidUTF8 if name is not
// valid UTF-8, and ErrTypeMismatch if a root of another type has been
// edited under that name.
func (d *Doc) Text(name string) (*Text, error) {
	if !utf8.ValidString(name) {
		return nil, fmt.Errorf("text name %q: %w", name, ErrInvalidUTF8)
	}

	c, err := d.root(name, KindText)
	if err != nil {
		return nil, err
	}
	return (*Text)(c), nil
}

func (t *Text) base() *container { return (*container)(t) }

// Kind returns KindText.
func (t *Text) Kind() Kind { return KindText }

// Value returns the text as a string.
func (t *Text) Value() any { return t.String() }

// Name returns the name of a root text, or "" for a nested one.
func (t *Text) Name() string {
	return t.name
}

// Len returns the number of code points in the text.
func (t *Text) Len() int {
	return t.tree.root.visible
}

// String returns the text.
func (t *Text) String() string {
	var b strings.Builder
	b.Grow(t.tree.root.visible)
	t.tree.each(func(it *item) bool {
		for _, r := range it.content {
			b.WriteRune(r)
		}
		return true
	})
	return b.String()
}

// Insert inserts s before the code point at pos; pos equal to Len appends.
// It returns an error wrapping ErrOutOfRange if pos is outside [0, Len],
// or ErrInvalidUTF8 if s is not valid UTF-8, and then changes nothing.
func (t *Text) Insert(pos int, s string) error {
	d := t.doc
	length := t.tree.root.visible
	if pos < 0 || pos > length {
		return fmt.Errorf("insert at %d into %s of length %d: use a position from 0 to %d: %w",
			pos, t.base().describe(), length, length, ErrOutOfRange)
	}
	// A keystroke is mostly one ASCII character, which needs no scan.
	n, ok := 1, true
	if len(s) != 1 || s[0] >= utf8.RuneSelf {
		n, ok = countRunes(s)
	}
	if !ok {
		return fmt.Errorf("insert into %s: %w", t.base().describe(), ErrInvalidUTF8)
	}
	if n == 0 {
		return nil
	}
	if err := t.base().checkEditable(); err != nil {
		return err
	}
	if err := d.checkOwnCounter(n); err != nil {
		return err
	}

	t.base().insertLocal(pos, s, n, nil)
	d.touch(t.base())
	return nil
}

// Delete deletes count code points starting at pos. It returns an error
// wrapping ErrOutOfRange if pos or count is negative or pos+count is past
// the end, and then changes nothing.
func (t *Text) Delete(pos, count int) error {
	d := t.doc
	length := t.tree.root.visible
	if pos < 0 || count < 0 || pos > length || count > length-pos {
		return fmt.Errorf("delete %d code points at %d from %s of length %d: keep pos+count within the text: %w",
			count, pos, t.base().describe(), length, ErrOutOfRange)
	}
	if count == 0 {
		return nil
	}
	if err := t.base().checkEditable(); err != nil {
		return err
	}
	if err := d.checkOwnCounter(count); err != nil {
		return err
	}

	t.base().deleteLocal(pos, count)
	return nil
}

// Replace changes the text to newValue with at most one delete and one
// insert: it keeps the longest common prefix and suffix, in code points,
// and replaces what lies between. It suits callers that only have the old
// and new strings, such as a plain text field.
func (t *Text) Replace(newValue string) error {
	if !utf8.ValidString(newValue) {
		return fmt.Errorf("replace %s: %w", t.base().describe(), ErrInvalidUTF8)
	}

	old := []rune(t.String())
	repl := []rune(newValue)

	prefix := 0
	for prefix < len(old) && prefix < len(repl) && old[prefix] == repl[prefix] {
		prefix++
	}
	suffix := 0
	for suffix < len(old)-prefix && suffix < len(repl)-prefix &&
		old[len(old)-1-suffix] == repl[len(repl)-1-suffix] {
		suffix++
	}

	if n := len(old) - prefix - suffix; n > 0 {
		if err := t.Delete(prefix, n); err != nil {
			return err
		}
	}
	if inserted := repl[prefix : len(repl)-suffix]; len(inserted) > 0 {
		return t.Insert(prefix, string(inserted))
	}
	return nil
}
