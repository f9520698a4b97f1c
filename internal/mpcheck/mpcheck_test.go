package mpcheck

import (
	"errors"
	"io"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

var limits = Limits{MaxDepth: 8, MaxElements: 1000}

func TestCheckAcceptsEncodedValues(t *testing.T) {
	values := []any{
		nil, true, 1, -1, 300, -40000, uint64(1) << 40, 1.5, float32(2.5), "hi",
		string(make([]byte, 300)), make([]byte, 70000),
		[]any{1, "a", []byte{1}, map[string]any{"k": []any{}}},
		map[string]any{"a": 1, "b": map[string]any{"c": nil}},
	}
	for _, v := range values {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := Check(b, limits); err != nil {
			t.Errorf("Check(%T): %v", v, err)
		}
	}
}

func TestCheckRejects(t *testing.T) {
	cases := map[string][]byte{
		"empty":                   {},
		"array32 of 4 billion":    {0xdd, 0xff, 0xff, 0xff, 0xff},
		"map16 past end":          {0xde, 0x00, 0x10, 0x01},
		"bin32 past end":          {0xc6, 0x00, 0x00, 0x10, 0x00, 0x01},
		"truncated uint64":        {0xcf, 0x01},
		"unused type byte":        {0xc1},
		"trailing byte":           {0x01, 0x02},
		"fixarray missing values": {0x93, 0x01},
	}
	for name, b := range cases {
		if err := Check(b, limits); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

func TestCheckLimits(t *testing.T) {
	deep := []byte{}
	for range 10 {
		deep = append(deep, 0x91)
	}
	deep = append(deep, 0x01)
	if err := Check(deep, limits); !errors.Is(err, ErrInvalid) {
		t.Errorf("10 levels deep: err = %v, want ErrInvalid", err)
	}
	wide, err := msgpack.Marshal(make([]int, 2000))
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(wide, limits); !errors.Is(err, ErrInvalid) {
		t.Errorf("2000 elements: err = %v, want ErrInvalid", err)
	}
}

func FuzzCheck(f *testing.F) {
	f.Add([]byte{0x92, 0x01, 0xa1, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) {
		if Check(b, limits) != nil {
			return
		}
		// Whatever passes must never make the decoder run out of input.
		// It may still reject a value for its type, such as a map with
		// integer keys decoded into an interface.
		var v any
		err := msgpack.Unmarshal(b, &v)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("checked bytes %x ran out while decoding: %v", b, err)
		}
	})
}
