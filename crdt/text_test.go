package crdt

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

func newText(t testing.TB, replica ReplicaID) (*Doc, *Text) {
	t.Helper()
	d := NewDoc(replica)
	text, err := d.Text("body")
	if err != nil {
		t.Fatal(err)
	}
	return d, text
}

func mustInsert(t testing.TB, text *Text, pos int, s string) {
	t.Helper()
	if err := text.Insert(pos, s); err != nil {
		t.Fatalf("Insert(%d, %q): %v", pos, s, err)
	}
}

func mustDelete(t testing.TB, text *Text, pos, count int) {
	t.Helper()
	if err := text.Delete(pos, count); err != nil {
		t.Fatalf("Delete(%d, %d): %v", pos, count, err)
	}
}

func TestTextInsertDelete(t *testing.T) {
	_, text := newText(t, 1)
	mustInsert(t, text, 0, "Hello")
	mustInsert(t, text, 5, " world")
	mustInsert(t, text, 5, ",")
	mustDelete(t, text, 0, 1)
	mustInsert(t, text, 0, "J")
	if got, want := text.String(), "Jello, world"; got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
	if got := text.Len(); got != 12 {
		t.Errorf("Len = %d, want 12", got)
	}
	mustDelete(t, text, 0, text.Len())
	if got := text.String(); got != "" {
		t.Errorf("after deleting everything String = %q, want empty", got)
	}
	mustInsert(t, text, 0, "again")
	if got := text.String(); got != "again" {
		t.Errorf("String = %q, want %q", got, "again")
	}
}

func TestTextCodePoints(t *testing.T) {
	_, text := newText(t, 1)
	mustInsert(t, text, 0, "h\u00e9llo \U0001F600!")
	if got := text.Len(); got != 8 {
		t.Fatalf("Len = %d, want 8", got)
	}
	mustDelete(t, text, 6, 1) // the emoji is one code point
	mustInsert(t, text, 1, "e\u0301")
	if got, want := text.String(), "he\u0301\u00e9llo !"; got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
	if got := text.Len(); got != 9 {
		t.Errorf("Len = %d, want 9: a combining mark is its own code point", got)
	}
}

func TestTextOutOfRange(t *testing.T) {
	d, text := newText(t, 1)
	mustInsert(t, text, 0, "abc")
	d.Commit()

	cases := []struct {
		name string
		edit func() error
	}{
		{"insert past end", func() error { return text.Insert(4, "x") }},
		{"insert negative", func() error { return text.Insert(-1, "x") }},
		{"delete past end", func() error { return text.Delete(2, 5) }},
		{"delete at end", func() error { return text.Delete(3, 1) }},
		{"delete negative position", func() error { return text.Delete(-1, 1) }},
		{"delete negative count", func() error { return text.Delete(1, -1) }},
		{"delete from past end", func() error { return text.Delete(4, 0) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.edit()
			if !errors.Is(err, ErrOutOfRange) {
				t.Fatalf("error = %v, want ErrOutOfRange", err)
			}
			if got := text.String(); got != "abc" {
				t.Errorf("text changed to %q", got)
			}
			if u := d.Commit(); u != nil {
				t.Errorf("rejected edit made an update of %d bytes", len(u))
			}
		})
	}
}

func TestTextInvalidUTF8(t *testing.T) {
	d, text := newText(t, 1)
	if err := text.Insert(0, "a\xffb"); !errors.Is(err, ErrInvalidUTF8) {
		t.Fatalf("Insert of invalid UTF-8: error = %v, want ErrInvalidUTF8", err)
	}
	if text.Len() != 0 || d.Commit() != nil {
		t.Errorf("rejected insert changed the document")
	}
	if _, err := d.Text("\xff"); !errors.Is(err, ErrInvalidUTF8) {
		t.Errorf("Text with an invalid name: error = %v, want ErrInvalidUTF8", err)
	}
}

func TestTextEmptyEditsMakeNoUpdate(t *testing.T) {
	d, text := newText(t, 1)
	mustInsert(t, text, 0, "")
	mustDelete(t, text, 0, 0)
	if u := d.Commit(); u != nil {
		t.Errorf("empty edits made an update of %d bytes", len(u))
	}
	if _, ok := d.State()["body"]; ok {
		t.Errorf("an untouched text appears in State: %v", d.State())
	}
}

func TestTextReplace(t *testing.T) {
	cases := []struct{ from, to string }{
		{"", "hello"},
		{"hello", ""},
		{"hello world", "hello there world"},
		{"hello world", "help world"},
		{"aaa", "aa"},
		{"ab\U0001F600cd", "ab\U0001F601cd"},
		{"same", "same"},
	}
	for _, c := range cases {
		d, text := newText(t, 1)
		mustInsert(t, text, 0, c.from)
		d.Commit()
		if err := text.Replace(c.to); err != nil {
			t.Fatalf("Replace(%q -> %q): %v", c.from, c.to, err)
		}
		if got := text.String(); got != c.to {
			t.Errorf("Replace(%q -> %q) gave %q", c.from, c.to, got)
		}

		// The update must carry the change to a replica that had the old text.
		peer := NewDoc(2)
		for _, u := range d.UpdatesSince(nil) {
			if err := peer.Apply(u); err != nil {
				t.Fatal(err)
			}
		}
		if got := peer.State()["body"]; c.to != "" && got != c.to {
			t.Errorf("peer after Replace(%q -> %q) has %q", c.from, c.to, got)
		}
	}
}

// TestTextMatchesSplice checks random local edits against plain slice
// splicing, including edits that split and merge runs.
func TestTextMatchesSplice(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	_, text := newText(t, 1)
	var model []rune
	alphabet := []rune("ab\u00e9\U0001F600")
	for i := range 5000 {
		if len(model) > 0 && rng.IntN(3) == 0 {
			pos := rng.IntN(len(model))
			n := 1 + rng.IntN(min(len(model)-pos, 5))
			mustDelete(t, text, pos, n)
			model = slices.Delete(model, pos, pos+n)
		} else {
			pos := rng.IntN(len(model) + 1)
			s := make([]rune, 1+rng.IntN(4))
			for j := range s {
				s[j] = alphabet[rng.IntN(len(alphabet))]
			}
			mustInsert(t, text, pos, string(s))
			model = slices.Insert(model, pos, s...)
		}
		if i%500 == 0 || i == 4999 {
			if got := text.String(); got != string(model) {
				t.Fatalf("after %d edits text = %q, want %q", i+1, got, string(model))
			}
			if text.Len() != len(model) {
				t.Fatalf("after %d edits Len = %d, want %d", i+1, text.Len(), len(model))
			}
		}
	}
}
