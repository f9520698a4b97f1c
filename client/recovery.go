package client

import (
	"fmt"

	"interlude/client/keyring"
)

// A recovery phrase as one more device.
//
// A person who writes down a recovery phrase gets one more device whose
// keys the phrase derives and that no disk holds. The device that made
// the phrase links that recovery device like any other (LinkDevice), so
// it is a member of every document of the person, now and later. A person
// who loses every device types the phrase on a new one. A client then runs
// as the recovery device for a moment, on a store in memory, and links the
// new device, which syncs everything as usual. Losing every device and
// the phrase loses the documents, because no one else holds a key.

// RecoveryIdentity returns the identity of the recovery device that the
// phrase derives.
func RecoveryIdentity(p *keyring.RecoveryPhrase) (*Identity, error) {
	seed, boxKey, err := p.DeviceSeeds()
	if err != nil {
		return nil, fmt.Errorf("client: derive recovery device keys: %w", err)
	}
	defer clear(seed)
	defer clear(boxKey[:])
	return newIdentity(seed, boxKey)
}
