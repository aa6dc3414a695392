package tokens

import (
	"strings"
	"sync"
	"testing"
)

func TestCount(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		enc, text string
		want      int
	}{
		// Figures from OpenAI's tiktoken.
		{O200kBase, "hello world", 2},
		{Cl100kBase, "hello world", 2},
		{O200kBase, "", 0},
		{Cl100kBase, "antidisestablishmentarianism", 6},
		{O200kBase, "antidisestablishmentarianism", 6},
	} {
		c, err := New(tc.enc)
		if err != nil {
			t.Fatal(err)
		}
		if c.Name() != tc.enc {
			t.Errorf("Name() = %q", c.Name())
		}
		if got := c.Count(tc.text); got != tc.want {
			t.Errorf("%s: Count(%q) = %d, want %d", tc.enc, tc.text, got, tc.want)
		}
	}
}

func TestUnknownEncoding(t *testing.T) {
	t.Parallel()
	if _, err := New("p50k_base"); err == nil || !strings.Contains(err.Error(), "o200k_base") {
		t.Fatalf("New(p50k_base) = %v, want an error naming the choices", err)
	}
}

// TestConcurrent: one Counter serves every goroutine of the pool.
func TestConcurrent(t *testing.T) {
	t.Parallel()
	c, err := New(O200kBase)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Repeat("Where is my order S00042? ", 20)
	want := c.Count(text)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				if got := c.Count(text); got != want {
					t.Errorf("Count = %d, want %d", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkCount(b *testing.B) {
	c, err := New(O200kBase)
	if err != nil {
		b.Fatal(err)
	}
	text := "Hello Lucía, where is my order S00042? It was due on Friday and the delivery WH/OUT/00005 hasn't arrived yet."
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		c.Count(text)
	}
}
