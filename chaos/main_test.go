package chaos_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/devstack/stacktest"
	"github.com/chatprep/chatprep/internal/testflags"
)

var (
	full = flag.Bool("chaos.full", false,
		"run the long form of the fault suite (make chaos): more events, 3 workers everywhere, repeated kills, a 30 s Weaviate outage, the scale-out figures")
	soak    = flag.Bool("chaos.soak", false, "run the soak test (make soak): a steady rate for -chaos.soak-for")
	soakFor = flag.Duration("chaos.soak-for", 10*time.Minute, "how long the soak test runs")
	logDir  = flag.String("chaos.logdir", "", "keep every worker's log in this directory (default: a temporary directory, removed)")
)

// workerBin is the worker binary the suite drives, built once per test
// binary: with -race in the short form (it runs in make test), without it in
// the long forms, whose figures should be the worker's own.
var (
	binDir    string
	workerBin string
)

// lanes is how many of the short form's tests and scenarios run at once
// (go test's -parallel, unless given): they mostly wait (for loads sent at
// a fixed rate, drains, a worker's last long poll), and each faults only
// parts of its own. Four on two cores: the waits overlap, and the -race
// workers of four lanes (with other packages' tests beside them in make
// test) still finish their messages within the drain bounds.
const lanes = 4

func TestMain(m *testing.M) {
	flag.Parse()
	if parallelForm() {
		if _, err := testflags.DefaultParallel(lanes); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	var err error
	binDir, err = os.MkdirTemp("", "chatprep-chaos-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	workerBin = filepath.Join(binDir, "worker")
	if err := devstack.BuildRepoPackage(workerBin, "./worker", raceBuilt()); err != nil {
		os.RemoveAll(binDir)
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// The image runs the worker as user 65532; TestSampleRunIsClean does too.
	if err := os.Chmod(binDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	stacktest.Main(m, stopKeyedWeaviate, func() { os.RemoveAll(binDir) })
}

// parallelForm tells whether the tests run in parallel lanes: in the short
// form. The long forms run one test and one scenario at a time: their drain
// times and resource samples are measurements.
func parallelForm() bool { return !*full && !*soak }

// parallel marks t as one to run in a lane (t.Parallel) in the short form.
func parallel(t *testing.T) {
	if parallelForm() {
		t.Parallel()
	}
}

// benchWorker is the benchmark's worker (bench/cmd/benchworker), whose
// `-store memory` replaces Weaviate with the benchmark-only in-memory
// stand-in: the scale-out test's "store that is not the bottleneck". Built
// on first use, without -race.
var benchWorker = sync.OnceValues(func() (string, error) {
	bin := filepath.Join(binDir, "benchworker")
	return bin, devstack.BuildRepoPackage(bin, "./bench/cmd/benchworker", false)
})
