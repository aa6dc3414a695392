package testflags_test

import (
	"flag"
	"os"
	"strconv"
	"testing"

	"github.com/chatprep/chatprep/internal/testflags"
)

var (
	fromMain int
	given    bool // -parallel was on the command line
)

func TestMain(m *testing.M) {
	n, err := testflags.DefaultParallel(7)
	if err != nil {
		panic(err)
	}
	fromMain = n
	// Looked at here, before the test sets the flag itself: flag.Set marks
	// it given for good, and -count=N runs the test again in this process.
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	os.Exit(m.Run())
}

// Without -parallel on the command line the default is set; with it, the
// command line's value stays.
func TestDefaultParallel(t *testing.T) {
	f := flag.Lookup("test.parallel")
	got := f.Value.String()
	t.Cleanup(func() { _ = f.Value.Set(got) }) // for the next run of -count=N
	switch {
	case !given && (got != "7" || fromMain != 7):
		t.Errorf("-parallel not given: flag %s, returned %d; want 7", got, fromMain)
	case given && strconv.Itoa(fromMain) != got:
		t.Errorf("-parallel %s given: returned %d; want the given value", got, fromMain)
	}
	// Given afterwards, a later call keeps it.
	if err := flag.Set("test.parallel", "3"); err != nil {
		t.Fatal(err)
	}
	if n, err := testflags.DefaultParallel(7); err != nil || n != 3 {
		t.Errorf("after -parallel 3: %d, %v; want 3", n, err)
	}
}
