package consumer_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackageStaysSmall holds the consumer to the size its restructuring
// left it (issue 10): at most 1,200 lines of non-test code and no file over
// 400. What grows past that belongs in a package of its own (lease, fifo,
// sqsbatch, handler, middleware).
func TestPackageStaysSmall(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		n := bytes.Count(b, []byte("\n"))
		total += n
		if n > 400 {
			t.Errorf("%s has %d lines; at most 400", f, n)
		}
	}
	if total > 1200 {
		t.Errorf("the consumer has %d lines of non-test code; at most 1,200", total)
	}
}
