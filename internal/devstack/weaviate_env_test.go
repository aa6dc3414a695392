package devstack

import (
	"slices"
	"strings"
	"testing"
)

// TestWeaviateMemtableSettings: the stack's server gets TunedEnv, and with
// Untuned none of Weaviate's memtable variables, so it runs on its own
// defaults (make up WEAVIATE_DEFAULTS=1, the bench's latency row).
func TestWeaviateMemtableSettings(t *testing.T) {
	t.Parallel()
	ports := []int{1, 2, 3, 4, 5, 6, 7}
	for _, tc := range []struct {
		untuned bool
		want    []string
	}{
		{false, TunedEnv},
		{true, nil},
	} {
		w := &Weaviate{opts: WeaviateOptions{DataDir: t.TempDir(), Untuned: tc.untuned}}
		w.configure(ports)
		var got []string
		for _, kv := range w.env {
			if strings.HasPrefix(kv, "PERSISTENCE_MEMTABLES_") {
				got = append(got, kv)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("untuned %v: memtable settings %q, want %q", tc.untuned, got, tc.want)
		}
	}
}
