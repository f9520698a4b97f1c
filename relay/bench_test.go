package relay_test

import (
	"testing"
)

// BenchmarkPushAck measures one push round trip on loopback: decode,
// signature check, a synchronous Badger commit and the Ack.
func BenchmarkPushAck(b *testing.B) {
	r := startRelay(b)
	alice := newDevice(b)
	c := connect(b, r, alice)
	doc := newDocID(b)
	mustOK(b, c.create(doc))
	envs := make([][]byte, b.N)
	for i := range envs {
		envs[i] = alice.sealedSize(b, doc, uint64(i+1), 256)
	}

	b.ResetTimer()
	for i := range b.N {
		c.mustPush(doc, envs[i])
	}
}

// BenchmarkDeliverBacklog measures reading a stored log of 1,000
// envelopes of 256 bytes through a new subscription.
func BenchmarkDeliverBacklog(b *testing.B) {
	const n = 1000
	r := startRelay(b)
	alice := newDevice(b)
	c := connect(b, r, alice)
	doc := newDocID(b)
	mustOK(b, c.create(doc))
	for seq := uint64(1); seq <= n; seq++ {
		c.mustPush(doc, alice.sealedSize(b, doc, seq, 256))
	}

	b.ResetTimer()
	for range b.N {
		mustOK(b, c.subscribe(doc, 0, true))
		if got, _ := c.readUntilCaughtUp(doc); len(got) != n {
			b.Fatalf("%d deliveries, want %d", len(got), n)
		}
	}
}
