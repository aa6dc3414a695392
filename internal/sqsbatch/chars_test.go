package sqsbatch_test

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/chatprep/chatprep/internal/sqsbatch"
)

func TestJSONBodyEscapesWhatSQSRefuses(t *testing.T) {
	t.Parallel()
	for _, text := range []string{
		"plain", "", "\uffff", "\ufffe", "a\uffffb\ufffec", "\uffff\uffff", "é\uffff€\U0001F600\ufffd\uffef",
		strings.Repeat("x\uffff", 1000), "ends in \ufffe",
	} {
		doc, err := json.Marshal(map[string]string{"text": text, "k\uffff": "v"})
		if err != nil {
			t.Fatal(err)
		}
		body := sqsbatch.JSONBody(doc)
		for _, r := range string(body) {
			if !sqsbatch.Allowed(r) {
				t.Errorf("%q: body %q still holds %U", text, body, r)
			}
		}
		var back map[string]string
		if err := json.Unmarshal(body, &back); err != nil {
			t.Fatalf("%q: body %q is no JSON: %v", text, body, err)
		}
		if back["text"] != text || back["k\uffff"] != "v" {
			t.Errorf("%q: decodes to %q, want it unchanged", text, back)
		}
		if plain, _ := json.Marshal(text); !strings.ContainsAny(text, "\ufffe\uffff") && string(sqsbatch.JSONBody(plain)) != string(plain) {
			t.Errorf("%q: body changed though nothing needed escaping", text)
		}
		if !utf8.Valid(body) {
			t.Errorf("%q: body is not valid UTF-8", text)
		}
	}
}

func TestAllowed(t *testing.T) {
	t.Parallel()
	for r, want := range map[rune]bool{
		'\t': true, '\n': true, '\r': true, ' ': true, 'a': true, 0xD7FF: true, 0xE000: true, 0xFFFD: true,
		0x10000: true, 0x10FFFF: true,
		0: false, 0x08: false, 0x0B: false, 0x1F: false, 0xD800: false, 0xFFFE: false, 0xFFFF: false,
	} {
		if got := sqsbatch.Allowed(r); got != want {
			t.Errorf("Allowed(%U) = %v, want %v", r, got, want)
		}
	}
}

func BenchmarkJSONBody(b *testing.B) {
	doc, _ := json.Marshal(map[string]string{"text": strings.Repeat("Where is my order S00042? ", 200)})
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		sqsbatch.JSONBody(doc)
	}
}
