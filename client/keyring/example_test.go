package keyring_test

import (
	"fmt"

	"interlude/client/keyring"
)

// A person links a laptop to the phone they started on.
func ExampleChain_Link() {
	phone, _ := keyring.NewDevice()
	chain, userKey, _, _ := keyring.NewChain(phone)

	// The laptop shows a code; the person scans or types it on the phone.
	laptop, _ := keyring.NewDevice()
	req, _ := keyring.NewLinkRequest(laptop)
	onPhone, err := keyring.ParseLinkRequest(req.Code())
	if err != nil {
		fmt.Println(err)
		return
	}

	// The phone shows the comparison code; once the person has checked it
	// against the laptop's, the phone adds the laptop. The update goes to
	// the relay, the response to the laptop.
	phoneCode := onPhone.ComparisonCode(phone.Public())
	resp, _, err := chain.Link(phone, userKey, onPhone)
	if err != nil {
		fmt.Println(err)
		return
	}

	// The laptop shows the same code and opens the user key.
	laptopCode := req.ComparisonCode(resp.Existing)
	laptopKey, err := req.Finish(laptop, resp, chain)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("codes match:", phoneCode == laptopCode)
	fmt.Println("same user key:", laptopKey.Public() == userKey.Public())
	fmt.Println("devices:", len(chain.Devices()))
	// Output:
	// codes match: true
	// same user key: true
	// devices: 2
}
