package relay_test

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestRelayLinksNoDocumentCode keeps the relay zero-knowledge by build:
// it must not link the packages that decrypt or merge documents.
func TestRelayLinksNoDocumentCode(t *testing.T) {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(goBin, "list", "-deps", "-test=false", "interlude/relay").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps interlude/relay: %v\n%s", err, out)
	}

	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatal("go list printed no dependencies")
	}
	for _, dep := range deps {
		for _, forbidden := range []string{"interlude/crdt", "interlude/client"} {
			if dep == forbidden || strings.HasPrefix(dep, forbidden+"/") {
				t.Errorf("relay depends on %s", dep)
			}
		}
	}
	if !strings.Contains(string(out), "interlude/sync/envelope") {
		t.Errorf("dependency list lacks interlude/sync/envelope, so it is not the relay's:\n%s", out)
	}
}
