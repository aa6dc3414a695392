// Package testflags holds what a test binary's TestMain decides about go
// test's own flags, and the environment variables that switch how the tests
// run. It has no dependencies, so any package's tests can use
// it, internal ones included.
package testflags

import (
	"flag"
	"os"
	"strconv"
	"strings"
)

// DefaultParallel makes n of the package's parallel tests (t.Parallel) run
// at once unless the -parallel flag was given, and reports the number in
// force. go test's default is GOMAXPROCS, right for tests that compute;
// tests that mostly wait — on worker processes, kumo, a Weaviate server —
// overlap their waits when more run at once (on 2 cores the default left a
// package's wall time about the sum of its tests halved). Call it from
// TestMain before m.Run; it parses the command line if nothing has yet.
func DefaultParallel(n int) (int, error) {
	if !flag.Parsed() {
		flag.Parse()
	}
	f := flag.Lookup("test.parallel")
	if f == nil {
		return 0, nil // not a test binary
	}
	given := false
	flag.Visit(func(v *flag.Flag) { given = given || v == f })
	if !given {
		if err := f.Value.Set(strconv.Itoa(n)); err != nil {
			return 0, err
		}
	}
	return strconv.Atoi(f.Value.String())
}

// WeaviateDefaultsVar, set to 1 or true (`make test WEAVIATE_DEFAULTS=1`),
// runs every Weaviate server the tests start with Weaviate's own memtable
// settings (devstack.WeaviateOptions.Untuned), as Weaviate Cloud does,
// instead of the devstack's tuned ones; internal/devstack's own tests and
// the bench choose their servers' settings themselves.
const WeaviateDefaultsVar = "WEAVIATE_DEFAULTS"

// WeaviateDefaults reports whether WeaviateDefaultsVar asks for Weaviate's
// own settings.
func WeaviateDefaults() bool {
	v := strings.ToLower(os.Getenv(WeaviateDefaultsVar))
	return v == "1" || v == "true"
}
