package store

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// keywordQuery turns user text into the BM25 query chatprep sends: the words
// of the text, lowercased and joined by single spaces, at most maxTerms of
// them.
//
// It splits exactly where Weaviate's `word` tokenization of the text property
// splits (on every rune that is neither a letter nor a number), so the search
// finds what sending the raw text would find. What it never sends is anything
// else: no quotes, backslashes, braces, control characters, invalid UTF-8 or
// emoji, so no text can change the query's syntax (GraphQL) or fail its
// encoding (protobuf strings must be valid UTF-8), and a 16 KB message does
// not make Weaviate look up thousands of terms. Invalid UTF-8 bytes decode as
// U+FFFD, which is not a letter, and so separate words as on the server.
//
// An empty result means the text has no searchable word.
func keywordQuery(text string, maxTerms int) string {
	var b strings.Builder
	terms := 0
	inWord := false
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		i += size
		if r == utf8.RuneError && size <= 1 || !unicode.IsLetter(r) && !unicode.IsNumber(r) {
			inWord = false
			continue
		}
		if !inWord {
			if terms == maxTerms {
				break
			}
			if terms > 0 {
				b.WriteByte(' ')
			}
			terms++
			inWord = true
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}
