package crdt

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Plain values are the JSON values that map entries and list elements
// hold. Inside the package they have one canonical Go form, which Get and
// State return (as copies, so callers cannot change the document):
//
//	null    nil
//	boolean bool
//	number  int64 for integers in the int64 range, uint64 for integers
//	        above it, float64 for every other number
//	string  string (UTF-8)
//	array   []any
//	object  map[string]any
//
// A map entry or list element may instead hold a nested container, which
// is stored as a *container and returned as its handle.

// maxValueDepth bounds the nesting of arrays and objects in a plain value,
// so that decoding and copying never recurse without limit.
const maxValueDepth = 64

// normalizeValue checks that v is a JSON value and returns its canonical
// form. Besides the canonical types it accepts every Go integer and float
// type, json.Number, and slices, arrays and string-keyed maps of
// acceptable values.
func normalizeValue(v any, depth int) (any, error) {
	if depth > maxValueDepth {
		return nil, fmt.Errorf("value nested deeper than %d arrays and objects", maxValueDepth)
	}
	switch x := v.(type) {
	case nil:
		return nil, nil
	case bool:
		return x, nil
	case string:
		if !utf8.ValidString(x) {
			return nil, fmt.Errorf("string %q: %w", x, ErrInvalidUTF8)
		}
		return x, nil
	case int:
		return int64(x), nil
	case int8:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case int64:
		return x, nil
	case uint:
		return canonicalUint(uint64(x)), nil
	case uint8:
		return int64(x), nil
	case uint16:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case uint64:
		return canonicalUint(x), nil
	case float32:
		return canonicalFloat(float64(x))
	case float64:
		return canonicalFloat(x)
	case json.Number:
		return parseNumber(string(x))
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			n, err := normalizeValue(e, depth+1)
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
			out[i] = n
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if !utf8.ValidString(k) {
				return nil, fmt.Errorf("key %q: %w", k, ErrInvalidUTF8)
			}
			n, err := normalizeValue(e, depth+1)
			if err != nil {
				return nil, fmt.Errorf("key %q: %w", k, err)
			}
			out[k] = n
		}
		return out, nil
	case Container:
		return nil, errors.New("a container cannot be stored as a value; create a nested one with Map.SetNew or List.InsertNew")
	}
	return normalizeReflect(reflect.ValueOf(v), depth)
}

// normalizeReflect handles slices, arrays and maps of other element types,
// such as []string or map[string]int.
func normalizeReflect(rv reflect.Value, depth int) (any, error) {
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return nil, nil
		}
		out := make([]any, rv.Len())
		for i := range out {
			n, err := normalizeValue(rv.Index(i).Interface(), depth+1)
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
			out[i] = n
		}
		return out, nil
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			break
		}
		if rv.IsNil() {
			return nil, nil
		}
		out := make(map[string]any, rv.Len())
		iter := rv.MapRange()
		for iter.Next() {
			k := iter.Key().String()
			if !utf8.ValidString(k) {
				return nil, fmt.Errorf("key %q: %w", k, ErrInvalidUTF8)
			}
			n, err := normalizeValue(iter.Value().Interface(), depth+1)
			if err != nil {
				return nil, fmt.Errorf("key %q: %w", k, err)
			}
			out[k] = n
		}
		return out, nil
	}
	return nil, fmt.Errorf("%T is not a JSON value; use nil, bool, a number, string, []any or map[string]any", rv.Interface())
}

func canonicalUint(u uint64) any {
	if u <= math.MaxInt64 {
		return int64(u)
	}
	return u
}

func canonicalFloat(f float64) (any, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("number %v is not a JSON value", f)
	}
	return f, nil
}

// parseNumber reads a JSON number: an integer in the int64 or uint64 range
// stays exact, anything else becomes a float64.
func parseNumber(s string) (any, error) {
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, nil
	}
	if u, err := strconv.ParseUint(s, 10, 64); err == nil {
		return u, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("number %q: %w", s, err)
	}
	return canonicalFloat(f)
}

// cloneValue returns a deep copy of a canonical plain value, or the handle
// of a nested container.
func cloneValue(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = cloneValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = cloneValue(e)
		}
		return out
	case *container:
		return x.handle()
	}
	return v
}

// stateValue returns v for State: plain values copied, nested containers
// replaced by their values.
func stateValue(v any) any {
	if c, ok := v.(*container); ok {
		return c.value()
	}
	return cloneValue(v)
}

// Value tags of the binary formats.
const (
	valNull      = 0
	valFalse     = 1
	valTrue      = 2
	valInt       = 3 // zigzag varint
	valUint      = 4 // uvarint, only for values above the int64 range
	valFloat     = 5 // 8 bytes, IEEE 754, little-endian
	valString    = 6 // length-prefixed UTF-8
	valArray     = 7 // count, then values
	valObject    = 8 // count, then (key, value) pairs in ascending key order
	valContainer = 9 // a nested container, followed by its kind byte
	valDropped   = 10
)

// dropped stands for the value of a map entry that was overwritten or
// removed, or of a deleted list element, which updates and saved states
// carry without content.
type droppedValue struct{}

var dropped any = droppedValue{}

// kindMarker is a decoded nested container that does not exist yet: the
// operation that holds it creates it when applied.
type kindMarker Kind

// value encodes v, a canonical plain value, a *container, a
// kindMarker or dropped.
func (e *encoder) value(v any) {
	switch x := v.(type) {
	case nil:
		e.byte(valNull)
	case bool:
		e.byte(valFalse + boolByte(x))
	case int64:
		e.byte(valInt)
		e.varint(x)
	case uint64:
		e.byte(valUint)
		e.uvarint(x)
	case float64:
		e.byte(valFloat)
		e.buf = binary.LittleEndian.AppendUint64(e.buf, math.Float64bits(x))
	case string:
		e.byte(valString)
		e.string(x)
	case []any:
		e.byte(valArray)
		e.uvarint(uint64(len(x)))
		for _, el := range x {
			e.value(el)
		}
	case map[string]any:
		e.byte(valObject)
		e.uvarint(uint64(len(x)))
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			e.string(k)
			e.value(x[k])
		}
	case *container:
		e.byte(valContainer)
		e.byte(byte(x.kind))
	case kindMarker:
		e.byte(valContainer)
		e.byte(byte(x))
	case droppedValue:
		e.byte(valDropped)
	default:
		panic(fmt.Sprintf("crdt: encode value of type %T", v))
	}
}

// value decodes one value in canonical form and rejects every encoding
// that the encoder would not produce, so that decode then encode gives
// the same bytes. At depth 0, the value of a map entry or list element, it
// may also be a kindMarker or dropped.
func (d *decoder) value(depth int) any {
	if depth > maxValueDepth {
		d.fail(fmt.Errorf("value nested deeper than %d", maxValueDepth))
		return nil
	}
	switch tag := d.byte(); tag {
	case valNull:
		return nil
	case valFalse:
		return false
	case valTrue:
		return true
	case valInt:
		return d.varint()
	case valUint:
		u := d.uvarint()
		if d.err == nil && u <= math.MaxInt64 {
			d.fail(fmt.Errorf("unsigned integer %d is in the int64 range", u))
		}
		return u
	case valFloat:
		if d.err != nil || d.remaining() < 8 {
			d.fail(errTruncated)
			return nil
		}
		f := math.Float64frombits(binary.LittleEndian.Uint64(d.buf[d.pos:]))
		d.pos += 8
		if math.IsNaN(f) || math.IsInf(f, 0) {
			d.fail(fmt.Errorf("number %v is not a JSON value", f))
		}
		return f
	case valString:
		s := d.bytes()
		if d.err == nil && !utf8.Valid(s) {
			d.fail(fmt.Errorf("string: %w", ErrInvalidUTF8))
		}
		return string(s)
	case valArray:
		n := d.count(1)
		out := make([]any, n)
		for i := range out {
			out[i] = d.value(depth + 1)
		}
		return out
	case valObject:
		n := d.count(2)
		out := make(map[string]any, n)
		prev := ""
		for i := range n {
			k := d.bytes()
			if d.err != nil {
				return nil
			}
			if !utf8.Valid(k) || (i > 0 && string(k) <= prev) {
				d.fail(fmt.Errorf("object key %q is not UTF-8 or not in ascending order", k))
				return nil
			}
			prev = string(k)
			out[prev] = d.value(depth + 1)
		}
		return out
	case valContainer:
		if depth > 0 {
			d.fail(errors.New("nested container inside a plain value"))
			return nil
		}
		k := Kind(d.byte())
		if d.err == nil && !k.valid() {
			d.fail(fmt.Errorf("nested container of unknown kind %d", k))
		}
		return kindMarker(k)
	case valDropped:
		if depth > 0 {
			d.fail(errors.New("dropped value inside a plain value"))
			return nil
		}
		return dropped
	default:
		d.fail(fmt.Errorf("unknown value tag %d", tag))
		return nil
	}
}
