package devstack_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/devstack"
)

func binDir(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := devstack.RepoRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "bin")
}

func ready(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url + "/v1/.well-known/ready")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestStackStartsAndStopsCleanly starts two stacks side by side (as two test
// binaries would), checks both answer on their own ports, and checks Stop
// leaves no process and no directory behind.
func TestStackStartsAndStopsCleanly(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	bin, err := devstack.EnsureWeaviateBinary(ctx, binDir(t), os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	// Started at the same moment, as two test binaries' stacks are.
	var ws [2]*devstack.Weaviate
	var errs [2]error
	var wg sync.WaitGroup
	for i := range ws {
		wg.Go(func() { ws[i], errs[i] = devstack.StartWeaviate(ctx, devstack.WeaviateOptions{Binary: bin}) })
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		for _, w := range ws {
			if w != nil {
				_ = w.Stop()
			}
		}
		t.Fatal(err)
	}
	if ws[0].URL == ws[1].URL {
		t.Fatalf("two servers share %s", ws[0].URL)
	}
	for _, w := range ws {
		if got := ready(t, w.URL); got != http.StatusOK {
			t.Fatalf("%s ready = %d, want 200", w.URL, got)
		}
	}
	for _, w := range ws {
		pid := w.Pid()
		dir := w.DataDir()
		if err := w.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("pid %d still running after Stop", pid)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("data directory %s left behind (stat: %v)", dir, err)
		}
	}
}

// TestWeaviateKillAndRestart is what the fault suite relies on: a killed
// server comes back on the same URL with its data.
func TestWeaviateKillAndRestart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	bin, err := devstack.EnsureWeaviateBinary(ctx, binDir(t), os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	w, err := devstack.StartWeaviate(ctx, devstack.WeaviateOptions{Binary: bin})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	w.Kill()
	if got := ready(t, w.URL); got == http.StatusOK {
		t.Fatal("killed server still answers")
	}
	if err := w.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ready(t, w.URL); got != http.StatusOK {
		t.Fatalf("restarted server ready = %d, want 200", got)
	}
}
