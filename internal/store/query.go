package store

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/chatprep/chatprep/internal/terms"
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
// message also stores its terms prefixed with a digest of its chat
// (chat_terms, whitespace tokenization), and the relevance search asks for
// those: every posting list it walks holds that chat's messages only.
//
// The terms are internal/terms': lowercased words without chat stop words,
// English-stemmed (terms.Index when stored, terms.Query when asked; a query
// also holds each word whose stem differs, which finds messages stored
// before terms were stemmed). Scores stay BM25: term frequency and length
// from the message, document frequency within the chat.

// scopeLen is the digest's length in hex digits: 48 bits, so that even
// millions of chats rarely share a prefix (and two that do only share
// posting lists: the chat_id filter still keeps them apart).
const scopeLen = 12

// chatScope is the prefix of chatID's terms.
func chatScope(chatID string) string {
	sum := sha256.Sum256([]byte(chatID))
	return hex.EncodeToString(sum[:])[:scopeLen] + ":"
}

// scoped joins ts, each with chatID's scope in front, by spaces.
func scoped(chatID string, ts []string) string {
	if len(ts) == 0 {
		return ""
	}
	scope := chatScope(chatID)
	var b strings.Builder
	for _, t := range ts {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(scope)
		b.WriteString(t)
	}
	return b.String()
}

// storedTerms are text's terms as chat_terms stores them (terms.Index).
func storedTerms(chatID, text string) string { return scoped(chatID, terms.Index(text)) }

// queryTerms are the chat_terms to search for text, from its first
// maxTerms words (terms.Query).
func queryTerms(chatID, text string, maxTerms int) string {
	return scoped(chatID, terms.Query(text, maxTerms))
}
