// Package trace reads editing traces in the format of the public
// editing-traces collection: gzipped JSON with a final text and a list of
// transactions, each a list of patches [position, delete count, insert
// text] with positions in Unicode code points.
package trace

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Patch is one edit: delete Delete code points at Pos, then insert Insert
// there.
type Patch struct {
	Pos    int
	Delete int
	Insert string
}

// UnmarshalJSON reads the [pos, delete, insert] array form.
func (p *Patch) UnmarshalJSON(b []byte) error {
	var raw [3]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("trace: patch %s: want [pos, delete, insert]: %w", clip(b), err)
	}
	if err := json.Unmarshal(raw[0], &p.Pos); err != nil {
		return fmt.Errorf("trace: patch position %s: %w", raw[0], err)
	}
	if err := json.Unmarshal(raw[1], &p.Delete); err != nil {
		return fmt.Errorf("trace: patch delete count %s: %w", raw[1], err)
	}
	if err := json.Unmarshal(raw[2], &p.Insert); err != nil {
		return fmt.Errorf("trace: patch insert text %s: %w", clip(raw[2]), err)
	}
	return nil
}

func clip(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

// Txn is one transaction. Agent and Parents are set in concurrent traces
// only.
type Txn struct {
	Agent   int     `json:"agent"`
	Parents []int   `json:"parents"`
	Patches []Patch `json:"patches"`
}

// Trace is a whole editing trace.
type Trace struct {
	Name         string `json:"-"`
	Kind         string `json:"kind"`
	NumAgents    int    `json:"numAgents"`
	StartContent string `json:"startContent"`
	EndContent   string `json:"endContent"`
	Txns         []Txn  `json:"txns"`
}

// Edits returns the number of patches in the trace.
func (t *Trace) Edits() int {
	n := 0
	for _, txn := range t.Txns {
		n += len(txn.Patches)
	}
	return n
}

// Load reads a gzipped trace file.
func Load(path string) (*Trace, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("trace: %s is not gzip: %w", path, err)
	}
	t, err := Read(zr)
	if err != nil {
		return nil, fmt.Errorf("trace: %s: %w", path, err)
	}
	t.Name = strings.TrimSuffix(filepath.Base(path), ".json.gz")
	return t, nil
}

// Read decodes an uncompressed trace.
func Read(r io.Reader) (*Trace, error) {
	var t Trace
	if err := json.NewDecoder(r).Decode(&t); err != nil {
		return nil, err
	}
	return &t, nil
}

// Patches returns every patch of the trace in order.
func (t *Trace) Patches() []Patch {
	patches := make([]Patch, 0, t.Edits())
	for _, txn := range t.Txns {
		patches = append(patches, txn.Patches...)
	}
	return patches
}
