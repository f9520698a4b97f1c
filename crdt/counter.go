package crdt

import (
	"fmt"
	"math/big"
	"math/bits"
	"unicode/utf8"
)

// Counter is a counter container: an integer that replicas change by
// adding to it. Its value is the sum of every add, so concurrent adds all
// count.
type Counter container

// Counter returns the root counter called name, creating it if the
// document has none. Like Text, it returns ErrTypeMismatch if the name
// belongs to a root of another type and ErrInvalidUTF8 for a name that is
// not UTF-8.
func (d *Doc) Counter(name string) (*Counter, error) {
	if !utf8.ValidString(name) {
		return nil, fmt.Errorf("counter name %q: %w", name, ErrInvalidUTF8)
	}

	c, err := d.root(name, KindCounter)
	if err != nil {
		return nil, err
	}
	return (*Counter)(c), nil
}

func (c *Counter) base() *container { return (*container)(c) }

// Kind returns KindCounter.
func (c *Counter) Kind() Kind { return KindCounter }

// Value returns the sum as an int64, or as a *big.Int in the rare case
// that adds made concurrently on several replicas took it outside the
// int64 range.
func (c *Counter) Value() any {
	return c.base().value()
}

// Int returns the sum. It returns an error wrapping ErrCounterRange if
// adds made concurrently on several replicas took the sum outside the
// int64 range. Further adds can bring it back.
func (c *Counter) Int() (int64, error) {
	v, ok := c.sum.int64()
	if !ok {
		return 0, fmt.Errorf("counter %s is %s: %w", c.base().describe(), c.sum.big(), ErrCounterRange)
	}
	return v, nil
}

// Add adds n, which may be negative. Adding 0 is an operation too: it
// makes the counter appear in State. It returns an error wrapping
// ErrCounterRange, and changes nothing, if the sum would leave the int64
// range.
func (c *Counter) Add(n int64) error {
	if err := c.base().checkEditable(); err != nil {
		return err
	}
	if _, ok := c.sum.add(n).int64(); !ok {
		return fmt.Errorf("add %d to counter %s of %s: the sum would leave the int64 range: %w",
			n, c.base().describe(), c.sum.big(), ErrCounterRange)
	}
	if err := c.doc.checkOwnCounter(1); err != nil {
		return err
	}

	c.doc.applyLocalAtom(&atom{kind: opCounterAdd, owner: c.base(), amount: n})
	return nil
}

// int128 is a two's complement 128-bit integer. A counter's sum is kept in
// it so that adds from different replicas, each within int64, can never
// overflow: fewer than 2^62 operations of at most 2^63 each stay far
// below 2^127.
type int128 struct {
	hi int64
	lo uint64
}

func (a int128) add(n int64) int128 {
	lo, carry := bits.Add64(a.lo, uint64(n), 0)
	hi := a.hi + int64(carry)
	if n < 0 {
		hi-- // sign extension of n into the high word
	}
	return int128{hi: hi, lo: lo}
}

// int64 returns a as an int64 and whether it fits.
func (a int128) int64() (int64, bool) {
	v := int64(a.lo)
	return v, a.hi == v>>63
}

func (a int128) big() *big.Int {
	b := new(big.Int).SetInt64(a.hi)
	b.Lsh(b, 64)
	return b.Add(b, new(big.Int).SetUint64(a.lo))
}
