package panics_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/chatprep/chatprep/internal/panics"
)

func TestRecover(t *testing.T) {
	t.Parallel()
	f := func() (err error) {
		defer panics.Recover(&err)
		panic("boom")
	}
	var pe *panics.Error
	err := f()
	if !errors.As(err, &pe) || pe.Value != "boom" || pe.Short() != "panic: boom" || pe.Transient() {
		t.Fatalf("err %v", err)
	}
	if !strings.Contains(err.Error(), "panics_test.TestRecover") {
		t.Errorf("no stack in %q", err)
	}
	ok := func() (err error) {
		defer panics.Recover(&err)
		return nil
	}
	if err := ok(); err != nil {
		t.Errorf("no panic: %v", err)
	}
}
