package devstack_test

import (
	"os/exec"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/devstack"
)

// TestProcessMemory: a child's resident and peak memory come from its own
// /proc entry, and reading them after it has exited is an error.
func TestProcessMemory(t *testing.T) {
	t.Parallel()
	p, err := devstack.StartProcess(exec.Command("sleep", "60"))
	if err != nil {
		t.Fatal(err)
	}
	rss, peak, err := p.Memory()
	if err != nil {
		t.Fatal(err)
	}
	// sleep is small: well under the test binary's own size.
	if rss <= 0 || peak < rss || peak > 64<<20 {
		t.Errorf("rss %d, peak %d bytes; want 0 < rss <= peak, and sleep's own size", rss, peak)
	}
	if _, err := p.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Memory(); err == nil {
		t.Error("memory of an exited process: no error")
	}
}
