package crdt

import (
	"fmt"
	"unicode/utf8"
)

// JavaScript strings count UTF-16 code units, where a code point above
// U+FFFF takes two (a surrogate pair), while this package counts code
// points. These helpers convert positions at the boundary, such as the
// WebAssembly bindings, so that the core keeps one unit. Both walk s from
// the start. A byte of s that is not valid UTF-8 counts as one code point
// and one code unit, as U+FFFD, which is how Go converts such a string to
// runes and to JavaScript.

// UTF16ToCodePoint returns the number of code points in the first i
// UTF-16 code units of s. It returns an error wrapping ErrOutOfRange if i
// is outside [0, UTF-16 length of s], and one wrapping ErrSurrogateSplit
// if i falls between the two units of a surrogate pair, which no code
// point boundary matches.
func UTF16ToCodePoint(s string, i int) (int, error) {
	if i < 0 {
		return 0, fmt.Errorf("UTF-16 index %d: %w", i, ErrOutOfRange)
	}
	units, points := 0, 0
	for _, r := range s {
		if units == i {
			return points, nil
		}
		units += utf16Len(r)
		points++
		if units > i {
			return 0, fmt.Errorf("UTF-16 index %d splits the surrogate pair of U+%04X at code point %d: %w",
				i, r, points-1, ErrSurrogateSplit)
		}
	}
	if units == i {
		return points, nil
	}
	return 0, fmt.Errorf("UTF-16 index %d past the end of a string of %d UTF-16 units: %w", i, units, ErrOutOfRange)
}

// CodePointToUTF16 returns the number of UTF-16 code units in the first i
// code points of s. It returns an error wrapping ErrOutOfRange if i is
// outside [0, number of code points in s].
func CodePointToUTF16(s string, i int) (int, error) {
	if i < 0 {
		return 0, fmt.Errorf("code point index %d: %w", i, ErrOutOfRange)
	}
	units, points := 0, 0
	for _, r := range s {
		if points == i {
			return units, nil
		}
		units += utf16Len(r)
		points++
	}
	if points == i {
		return units, nil
	}
	return 0, fmt.Errorf("code point index %d past the end of a string of %d code points: %w",
		i, utf8.RuneCountInString(s), ErrOutOfRange)
}

// utf16Len returns the UTF-16 code units of r: 2 above U+FFFF, else 1.
func utf16Len(r rune) int {
	if r > 0xFFFF {
		return 2
	}
	return 1
}
