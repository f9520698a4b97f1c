package relay

import (
	"testing"

	"interlude/sync/wire"
)

// FuzzDecodeFrame feeds arbitrary client frames to the relay's decode
// path: it must never panic, and must return either a message or an
// Error with a protocol code.
func FuzzDecodeFrame(f *testing.F) {
	doc := make([]byte, 16)
	seeds := []wire.Message{
		&wire.Auth{Version: wire.Version, Device: make([]byte, 32), Signature: make([]byte, 64)},
		&wire.AppendEntry{Ref: 1, Doc: doc, Entry: []byte("k")},
		&wire.GetLog{Ref: 2, Doc: doc, From: 1},
		&wire.ListDocs{Ref: 3},
		&wire.Subscribe{Ref: 4, Doc: doc, After: 7, IncludeOwn: true},
		&wire.Push{Ref: 5, Doc: doc, Envelope: []byte{0x94}},
	}
	for _, m := range seeds {
		frame, err := wire.Encode(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(frame)
	}
	f.Add([]byte{})
	f.Add([]byte{0x92, 0xff, 0x00})
	f.Add([]byte{0x92, 0x0b, 0xdd, 0xff, 0xff, 0xff, 0xff})

	f.Fuzz(func(t *testing.T, frame []byte) {
		msg, perr := decodeFrame(frame)
		if (msg == nil) == (perr == nil) {
			t.Fatalf("decodeFrame returned message %v and error %v, want exactly one", msg, perr)
		}
		if perr != nil {
			if perr.Err.Code != wire.CodeMalformed && perr.Err.Code != wire.CodeTooLarge {
				t.Fatalf("decode error has code %s, want malformed or too_large", perr.Err.Code)
			}
			if perr.CloseCode == 0 {
				t.Fatal("decode error has no close code")
			}
			return
		}
		requestRef(msg) // must not panic on any decoded message
	})
}
