package relay

import (
	"testing"

	"interlude/sync/wire"
)

func grantsOf(docs ...byte) []wire.Grant {
	var gs []wire.Grant
	for _, d := range docs {
		doc := make([]byte, 16)
		doc[15] = d
		gs = append(gs, wire.Grant{Doc: doc})
	}
	return gs
}

func docsOf(gs []wire.Grant) []byte {
	var out []byte
	for _, g := range gs {
		out = append(out, g.Doc[15])
	}
	return out
}

// TestMergeGrants checks the page a connection's device grants and
// claimed grants make together: in document order, one per document, no
// claimed grant beyond the device's cut-off page, and More set whenever
// grants remain.
func TestMergeGrants(t *testing.T) {
	tests := []struct {
		name     string
		device   []byte
		more     bool
		claimed  []byte
		limit    int
		want     []byte
		wantMore bool
	}{
		{"claimed only", nil, false, []byte{2, 5}, 10, []byte{2, 5}, false},
		{"interleaved", []byte{1, 4}, false, []byte{2, 5}, 10, []byte{1, 2, 4, 5}, false},
		{"same document once", []byte{3}, false, []byte{3}, 10, []byte{3}, false},
		{"cut at limit", []byte{1, 4}, false, []byte{2, 5}, 3, []byte{1, 2, 4}, true},
		{"claimed past a full device page wait", []byte{1, 4}, true, []byte{2, 4, 9}, 2, []byte{1, 2}, true},
		{"claimed within a full device page", []byte{1, 4}, true, []byte{2, 4, 9}, 10, []byte{1, 2, 4}, true},
	}
	for _, tt := range tests {
		got, more := mergeGrants(grantsOf(tt.device...), tt.more, grantsOf(tt.claimed...), tt.limit)
		if string(docsOf(got)) != string(tt.want) || more != tt.wantMore {
			t.Errorf("%s: documents %v more %v, want %v more %v", tt.name, docsOf(got), more, tt.want, tt.wantMore)
		}
	}
}
