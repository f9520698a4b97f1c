package envelope_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log"

	"interlude/sync/envelope"
)

// Example seals two updates of one author as a chain, and opens them as a
// member who holds the document key would.
func Example() {
	_, signer, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	var key [envelope.KeySize]byte
	rand.Read(key[:])
	doc, err := envelope.NewDocID()
	if err != nil {
		log.Fatal(err)
	}

	first, err := envelope.Seal(envelope.Header{Kind: envelope.KindUpdate, Doc: doc, Seq: 1}, &key, signer, []byte("first update"))
	if err != nil {
		log.Fatal(err)
	}
	// The next envelope names the hash of the one before it.
	second, err := envelope.Seal(envelope.Header{Kind: envelope.KindUpdate, Doc: doc, Seq: 2, Prev: first.Hash()}, &key, signer, []byte("second update"))
	if err != nil {
		log.Fatal(err)
	}

	for _, e := range []*envelope.Envelope{first, second} {
		raw, err := e.Marshal()
		if err != nil {
			log.Fatal(err)
		}
		// A relay runs Unmarshal and Verify; members also Open.
		got, err := envelope.Unmarshal(raw)
		if err != nil {
			log.Fatal(err)
		}
		if err := got.Verify(); err != nil {
			log.Fatal(err)
		}
		plaintext, err := got.Open(&key)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("seq %d: %s\n", got.Seq, plaintext)
	}
	fmt.Println("chained:", second.Prev == first.Hash())
	// Output:
	// seq 1: first update
	// seq 2: second update
	// chained: true
}
