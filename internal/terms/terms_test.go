package terms

import (
	"slices"
	"testing"
)

func TestWords(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		max  int
		want []string
	}{
		{"Where is order S00042?", 0, []string{"where", "is", "order", "s00042"}},
		{"Lucía's café, WH/OUT/00005", 0, []string{"lucía", "s", "café", "wh", "out", "00005"}},
		{"one two three", 2, []string{"one", "two"}},
		{"🎉 !! \xff", 0, nil},
	} {
		if got := Words(tc.in, tc.max); !slices.Equal(got, tc.want) {
			t.Errorf("Words(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

func TestStem(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"deliveries": "deliveri", "delivery": "deliveri", "ordered": "order", "orders": "order", "invoices": "invoic",
		"s00042": "s00042", // digits: kept whole
		"lucía":  "lucía",  // not plain ASCII: kept
		"пиво":   "пиво",
	} {
		if got := Stem(in); got != want {
			t.Errorf("Stem(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIndexAndQuery(t *testing.T) {
	t.Parallel()
	if got, want := Index("I ordered the invoices, my orders!"), []string{"order", "invoic", "order"}; !slices.Equal(got, want) {
		t.Errorf("Index = %q, want %q", got, want)
	}
	if got, want := Query("Where are my orders? orders, order", 0), []string{"where", "order", "orders"}; !slices.Equal(got, want) {
		t.Errorf("Query = %q, want %q", got, want)
	}
	if got := Query("I am not", 0); got != nil {
		t.Errorf("only stop words: %q", got)
	}
	if !IsStop("the") || IsStop("where") {
		t.Error("IsStop: the is a stop word, where is not")
	}
}
