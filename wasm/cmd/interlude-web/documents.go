//go:build js && wasm

package main

import (
	"syscall/js"
)

// documents is the JavaScript documents(). It resolves to [{docId, role}]
// for every document on this device, in document id order, where role is
// this device's: "admin", "writer", "reader", or "" once it is no longer a
// member. It also refreshes each document's view, so text returns the
// text of every listed document once the Promise resolves.
func (a *app) documents([]js.Value) any {
	return promise(func() (any, error) {
		c, _, release, err := a.acquire()
		if err != nil {
			return nil, err
		}
		defer release()
		self := [32]byte(c.Identity().Public().Sign)
		docs := c.Documents()
		list := make([]any, 0, len(docs))
		for _, doc := range docs {
			members, err := c.Members(doc)
			if err != nil {
				return nil, err
			}
			role := ""
			for _, m := range members {
				if m.Sign == self {
					role = m.Role.String()
				}
			}
			a.refresh(c, doc)
			list = append(list, map[string]any{"docId": doc.String(), "role": role})
		}
		return list, nil
	})
}
