package store

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/devstack/weaviatetest"
	"github.com/chatprep/chatprep/internal/leakcheck"
	"github.com/chatprep/chatprep/internal/testflags"
)

// One Weaviate server for the whole test binary; tests that need their own
// (API key, outages) start one more.
var shared *devstack.Weaviate

func TestMain(m *testing.M) {
	// The tests wait on Weaviate servers (their own where they break one)
	// far more than they compute: 8 at once.
	if _, err := testflags.DefaultParallel(8); err != nil {
		panic(err)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// Goroutines started before the tests (package init of dependencies)
	// are not the tests' to end.
	current := goleak.IgnoreCurrent()
	return leakcheck.Check(runTests(m), current, leakcheck.WeaviateClientFinalizer)
}

func runTests(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var err error
	shared, err = weaviatetest.StartContext(ctx, devstack.WeaviateOptions{}, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := shared.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	// Create the schema once, so parallel tests do not race on it (the
	// schema tests race on purpose, on their own servers or collections).
	st, err := New(Config{URL: shared.URL, GRPCAddr: shared.GRPCAddr})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	err = st.EnsureSchema(ctx)
	st.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

var chatSeq atomic.Int64

// chatID returns a chat id no other test uses, so tests share the server and
// run in parallel.
func chatID(t testing.TB) string {
	name := strings.NewReplacer("/", "-", " ", "_").Replace(t.Name())
	return fmt.Sprintf("%s-%d-%d", name, os.Getpid(), chatSeq.Add(1))
}

// backends are the two read/write paths a Store can take.
var backends = []struct {
	name string
	grpc bool
}{
	{"grpc", true},
	{"graphql", false},
}

// newStore returns a Store on the shared server, closed when the test ends.
func newStore(t testing.TB, useGRPC bool) *Store {
	t.Helper()
	return newStoreAt(t, shared, useGRPC, nil)
}

func newStoreAt(t testing.TB, w *devstack.Weaviate, useGRPC bool, edit func(*Config)) *Store {
	t.Helper()
	cfg := Config{URL: w.URL}
	if useGRPC {
		cfg.GRPCAddr = w.GRPCAddr
	}
	if edit != nil {
		edit(&cfg)
	}
	st, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

// ctx returns the test's context bounded by d.
func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}
