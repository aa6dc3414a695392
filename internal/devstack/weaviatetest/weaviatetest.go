// Package weaviatetest starts the tests' Weaviate servers: the repository's
// bin/weaviate-server (built there first when missing), on the devstack's
// tuned memtable settings unless WEAVIATE_DEFAULTS=1 asks for Weaviate's own
// (testflags.WeaviateDefaults). It imports no chatprep package but devstack
// and testflags, so any package's tests can use it, internal/store's
// included (which cannot import stacktest: stacktest imports store).
package weaviatetest

import (
	"context"
	"io"
	"os"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/testflags"
)

// StartContext starts a server with o, its Binary found and Untuned as the
// tests' servers are unless o sets it; a build's progress goes to progress.
// The caller stops it: for a server a test binary shares (TestMain) or
// starts beside its tests.
func StartContext(ctx context.Context, o devstack.WeaviateOptions, progress io.Writer) (*devstack.Weaviate, error) {
	bin, err := devstack.RepoWeaviateBinary(ctx, progress)
	if err != nil {
		return nil, err
	}
	o.Binary = bin
	o.Untuned = o.Untuned || testflags.WeaviateDefaults()
	return devstack.StartWeaviate(ctx, o)
}

// Start starts a server of the test's own with o (StartContext; a build's
// progress shown under -v) and stops it by pid when the test ends: for a
// test that faults its server (kills it, puts a shard READONLY) or needs
// settings of its own while other tests use a shared one. It holds no
// collections; `worker setup` or store.EnsureSchema makes them.
func Start(t testing.TB, o devstack.WeaviateOptions) *devstack.Weaviate {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute) // a first build takes minutes
	defer cancel()
	progress := io.Discard
	if testing.Verbose() {
		progress = os.Stderr
	}
	w, err := StartContext(ctx, o, progress)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Stop(); err != nil {
			t.Error(err)
		}
	})
	return w
}
