// Package leakcheck is the tests' one check that no goroutine outlived them:
// goleak, with the time a loaded machine needs and the goroutines of
// dependencies that are not the tests' to end named once.
//
//	func TestMain(m *testing.M) { leakcheck.Main(m) }
package leakcheck

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Grace is how long Find lets goroutines that are ending (a connection's
// read loop after its server closed, a batcher's last flush) finish before
// it names them. goleak alone waits about 0.4 s, which a goroutine on a
// loaded 2-core machine running -race can overrun; a goroutine blocked for
// good is still reported, 5 s later. (A goroutine that ends on its own
// within the grace, after the last test, is not reported.)
const Grace = 5 * time.Second

// Dependencies' goroutines that live as long as the process.
var (
	// KumoReaper is the process-wide reaper kumo's DynamoDB emulator
	// starts at package init.
	KumoReaper = goleak.IgnoreTopFunction("github.com/sivchari/kumo/internal/service/dynamodb.(*MemoryStorage).ttlReaper")
	// WeaviateClientFinalizer: the Weaviate client's Connection has a
	// finalizer that sends on an unbuffered channel nobody reads
	// (weaviate-go-client v4.16.1, connection/rest.go), so once a dropped
	// client is collected the finalizer goroutine blocks there for good.
	// Only tests make and drop clients; a worker keeps its one for its life.
	WeaviateClientFinalizer = goleak.IgnoreTopFunction("github.com/weaviate/weaviate-go-client/v4/weaviate/connection.finalizer")
)

// Find returns goleak's report of the goroutines other than opts ignore
// that are still running after Grace, or nil as soon as none is.
func Find(opts ...goleak.Option) error { return find(Grace, opts...) }

func find(grace time.Duration, opts ...goleak.Option) error {
	deadline := time.Now().Add(grace)
	for {
		err := goleak.Find(opts...)
		if err == nil || time.Now().After(deadline) {
			return err
		}
	}
}

// Main runs the tests and exits; it fails a run whose tests passed when
// Find names a goroutine that outlived them.
func Main(m *testing.M, opts ...goleak.Option) {
	os.Exit(Check(m.Run(), opts...))
}

// Check returns code, or 1 when code is 0 and Find names a goroutine that
// outlived the tests (and says so on stderr): for a TestMain that ends the
// run its own way.
func Check(code int, opts ...goleak.Option) int {
	if code != 0 {
		return code
	}
	if err := Find(opts...); err != nil {
		fmt.Fprintln(os.Stderr, "goroutines outlived the tests:", err)
		return 1
	}
	return 0
}
