package pipeline

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/chatprep/chatprep/internal/terms"
)

// TestSameWords: two texts are the same exactly when their words are
// (terms.Words: lowercased, split on everything that is neither a letter
// nor a number, invalid bytes included), over random texts from a small
// alphabet, so that equal word lists come up often; a text without a word
// is never one.
func TestSameWords(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(5, 6))
	alphabet := []string{"a", "B", "é", "É", "1", " ", "  ", ",", "!", "\n", "🎉", "\xff", "ß", "Σ", "σ"}
	text := func() string {
		s := ""
		for range r.IntN(8) {
			s += alphabet[r.IntN(len(alphabet))]
		}
		return s
	}
	var s sameWords
	for range 20000 {
		a, b := text(), text()
		wa, wb := terms.Words(a, 0), terms.Words(b, 0)
		ka, oka := s.key(a)
		kb, okb := s.key(b)
		if oka != (len(wa) > 0) || okb != (len(wb) > 0) {
			t.Fatalf("%q: has words %v, key ok %v", a, wa, oka)
		}
		if same := slices.Equal(wa, wb); same != (ka == kb) && oka && okb {
			t.Fatalf("%q %v and %q %v: same words %v, same key %v", a, wa, b, wb, same, ka == kb)
		}
	}
}
