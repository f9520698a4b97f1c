//go:build js && wasm

package main

import (
	"syscall/js"

	"interlude/client"
)

// documents is the JavaScript documents(). It resolves to [{docId, role,
// memberId}] for every document on this device, in document id order,
// where role is this device's: "admin", "writer", "reader", or "" once it
// is no longer a member, and memberId the public id this device is a
// member under there, which differs from document to document. It also refreshes each document's view, so text returns the
// text of every listed document once the Promise resolves.
func (a *app) documents([]js.Value) any {
	return a.withClient(false, nil, func(c *client.Client, _ client.Store) (any, error) {
		docs := c.Documents()
		list := make([]any, 0, len(docs))
		for _, doc := range docs {
			members, err := c.Members(doc)
			if err != nil {
				return nil, err
			}
			self, err := c.MemberID(doc)
			if err != nil {
				return nil, err
			}
			role := ""
			for _, m := range members {
				if m.Sign == [32]byte(self.Sign) {
					role = m.Role.String()
				}
			}
			a.refresh(c, doc)
			list = append(list, map[string]any{"docId": doc.String(), "role": role, "memberId": self.String()})
		}
		return list, nil
	})
}
