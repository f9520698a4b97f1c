package crdt

import (
	"errors"
	"testing"
	"unicode/utf16"
)

func TestUTF16ToCodePoint(t *testing.T) {
	s := "a\u00e9\U0001F600b\U0001F601" // UTF-16 units: a é [hi lo] b [hi lo]
	cases := []struct {
		units, points int
		err           error
	}{
		{0, 0, nil},
		{1, 1, nil},
		{2, 2, nil},
		{3, 0, ErrSurrogateSplit},
		{4, 3, nil},
		{5, 4, nil},
		{6, 0, ErrSurrogateSplit},
		{7, 5, nil},
		{8, 0, ErrOutOfRange},
		{-1, 0, ErrOutOfRange},
	}
	for _, c := range cases {
		got, err := UTF16ToCodePoint(s, c.units)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("UTF16ToCodePoint(%d): error = %v, want %v", c.units, err, c.err)
			}
			continue
		}
		if err != nil || got != c.points {
			t.Errorf("UTF16ToCodePoint(%d) = %d, %v; want %d", c.units, got, err, c.points)
		}
	}
}

func TestCodePointToUTF16(t *testing.T) {
	s := "a\u00e9\U0001F600b\U0001F601"
	want := []int{0, 1, 2, 4, 5, 7}
	for points, units := range want {
		got, err := CodePointToUTF16(s, points)
		if err != nil || got != units {
			t.Errorf("CodePointToUTF16(%d) = %d, %v; want %d", points, got, err, units)
		}
	}
	for _, i := range []int{-1, 6} {
		if _, err := CodePointToUTF16(s, i); !errors.Is(err, ErrOutOfRange) {
			t.Errorf("CodePointToUTF16(%d): error = %v, want ErrOutOfRange", i, err)
		}
	}
	if got, err := CodePointToUTF16("", 0); err != nil || got != 0 {
		t.Errorf("CodePointToUTF16 of the empty string = %d, %v; want 0", got, err)
	}
}

// TestUTF16RoundTrip checks both helpers against the standard library's
// UTF-16 encoder at every code point boundary, invalid UTF-8 included.
func TestUTF16RoundTrip(t *testing.T) {
	for _, s := range []string{"", "plain", "h\u00e9llo \U0001F600 w\U0001F30Dorld", "bad\xffbyte\xc3", "\U0001F600\U0001F600"} {
		runes := []rune(s)
		for i := range len(runes) + 1 {
			units := len(utf16.Encode(runes[:i]))
			got, err := CodePointToUTF16(s, i)
			if err != nil || got != units {
				t.Fatalf("%q: CodePointToUTF16(%d) = %d, %v; want %d", s, i, got, err, units)
			}
			back, err := UTF16ToCodePoint(s, units)
			if err != nil || back != i {
				t.Fatalf("%q: UTF16ToCodePoint(%d) = %d, %v; want %d", s, units, back, err, i)
			}
		}
	}
}
