package client

import (
	"context"

	"interlude/crdt"
	"interlude/sync/envelope"
)

// SetTextFrom replaces the journal body as an editor that started from
// base and now shows next. If other edits reached the document since base
// was read, the local change is applied around them instead of over them,
// so neither side's words are lost.
//
// An editor that has only its old and new text (a plain textarea) calls
// this on each save with the text it last loaded or saved as base.
func (c *Client) SetTextFrom(ctx context.Context, doc envelope.DocID, base, next string) error {
	return c.Edit(ctx, doc, func(t *crdt.Text) error {
		current := t.String()
		if current == base {
			return t.Replace(next)
		}
		local := diffSplice([]rune(base), []rune(next))
		remote := diffSplice([]rune(base), []rune(current))
		at, del := rebase(local, remote)
		if del > 0 {
			if err := t.Delete(at, del); err != nil {
				return err
			}
		}
		if local.insert != "" {
			return t.Insert(at, local.insert)
		}
		return nil
	})
}

// splice is one contiguous change: delete count code points at pos, then
// insert text there.
type splice struct {
	pos, count int
	insert     string
	inserted   int // code points in insert
}

// diffSplice returns the single splice that turns a into b, found by their
// common prefix and suffix.
func diffSplice(a, b []rune) splice {
	prefix := 0
	for prefix < len(a) && prefix < len(b) && a[prefix] == b[prefix] {
		prefix++
	}
	suffix := 0
	for suffix < len(a)-prefix && suffix < len(b)-prefix && a[len(a)-1-suffix] == b[len(b)-1-suffix] {
		suffix++
	}
	inserted := b[prefix : len(b)-suffix]
	return splice{pos: prefix, count: len(a) - suffix - prefix, insert: string(inserted), inserted: len(inserted)}
}

// rebase moves the local splice, made against base, onto the document
// after the remote splice, also made against base. It returns where to
// delete and insert, and how much to delete. When both changed the same
// stretch of text, the local text goes right after the remote text and
// deletes nothing, because deleting there would remove words the local
// editor never saw.
func rebase(local, remote splice) (pos, count int) {
	switch {
	case local.pos+local.count <= remote.pos:
		return local.pos, local.count
	case local.pos >= remote.pos+remote.count:
		return local.pos - remote.count + remote.inserted, local.count
	default:
		return remote.pos + remote.inserted, 0
	}
}
