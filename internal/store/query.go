package store

import (
	"crypto/sha256"
	"encoding/hex"
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
	if maxTerms <= 0 {
		maxTerms = len(text) // every word
	}
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

// Chat-scoped terms. BM25 in Weaviate walks the posting list of every query
// term across the whole collection, keeping the documents the chat_id filter
// allows: its cost grows with everyone's messages, not the chat's, and is
// worst for a short chat, whose few matches never fill the limit, so no
// block of any posting list can be skipped (measured: bench row 3). So each
// message also stores its words prefixed with a digest of its chat
// (chat_terms, whitespace tokenization), and the relevance search asks for
// those: every posting list it walks holds that chat's messages only.
//
// The words are those of keywordQuery, lowercased, without Weaviate's
// English stopword preset (its BM25 drops those from a query on the text
// property, but cannot tell them behind a prefix). Scores stay BM25: term
// frequency and length from the message, document frequency within the
// chat.

// scopeLen is the digest's length in hex digits: 48 bits, so that even
// millions of chats rarely share a prefix (and two that do only share
// posting lists: the chat_id filter still keeps them apart).
const scopeLen = 12

// chatScope is the prefix of chatID's terms.
func chatScope(chatID string) string {
	sum := sha256.Sum256([]byte(chatID))
	return hex.EncodeToString(sum[:])[:scopeLen] + ":"
}

// scopedTerms are text's words as chat_terms stores them: each word of
// keywordQuery (at most maxTerms, 0 for all) that is not a stopword, with
// chatID's scope in front, joined by spaces.
func scopedTerms(chatID, text string, maxTerms int) string {
	words := keywordQuery(text, maxTerms)
	if words == "" {
		return ""
	}
	scope := chatScope(chatID)
	var b strings.Builder
	for w := range strings.FieldsSeq(words) {
		if stopwords[w] {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(scope)
		b.WriteString(w)
	}
	return b.String()
}

// stopwords is Weaviate's "en" stopword preset.
var stopwords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`a an and are as at be but by for if in into is it no not of on or such that
		the their then there these they this to was will with`) {
		m[w] = true
	}
	return m
}()
