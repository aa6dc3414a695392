// Package terms turns message text into the terms chatprep's BM25 search
// indexes and asks for: the words of the text, lowercased, without stop
// words, stemmed. The store writes a message's terms (Index) and searches
// with a question's (Query); the bench's recall measurement uses the same
// functions, so what it measures is what the worker does.
//
// Words split exactly where Weaviate's `word` tokenization splits: on every
// rune that is neither a letter nor a number. Invalid UTF-8 bytes separate
// words.
//
// Stemming is English Snowball (github.com/kljensen/snowball), applied only
// to words of plain ASCII letters: "deliveries", "delivered" and "delivery"
// all become "deliv". A word with any other letter (ñ, é, ü, Cyrillic, CJK…)
// or a digit is kept as it is: the English rules would mangle other
// languages' words, and a reference like s00042 must stay whole. Spanish or
// French words written in plain ASCII are stemmed by the English rules,
// which mostly strips plural endings; both the stored message and the
// question go through the same rules, so they still meet.
package terms

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kljensen/snowball/english"
)

// Words returns the words of text, lowercased, in order, at most max of
// them (all when max <= 0).
func Words(text string, max int) []string {
	var out []string
	var b strings.Builder
	flush := func() bool {
		if b.Len() == 0 {
			return true
		}
		out = append(out, b.String())
		b.Reset()
		return max <= 0 || len(out) < max
	}
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		i += size
		if r == utf8.RuneError && size <= 1 || !unicode.IsLetter(r) && !unicode.IsNumber(r) {
			if !flush() {
				return out
			}
			continue
		}
		b.WriteRune(unicode.ToLower(r))
	}
	flush()
	return out
}

// Stem is the search form of one lowercased word (see the package doc).
func Stem(w string) string {
	for i := 0; i < len(w); i++ {
		if c := w[i]; c < 'a' || c > 'z' {
			return w
		}
	}
	return english.Stem(w, true)
}

// IsStop tells whether a lowercased word is a stop word: too common in chat
// to say what a message is about (see stopwords).
func IsStop(w string) bool { return stopwords[w] }

// Index returns the terms of text as stored for BM25: the stem of every word
// that is not a stop word, each occurrence (term frequency counts).
func Index(text string) []string {
	words := Words(text, 0)
	out := words[:0]
	for _, w := range words {
		if !stopwords[w] {
			out = append(out, Stem(w))
		}
	}
	return out
}

// Query returns the terms to search for text: the distinct stems of its
// first max words (all when max <= 0) that are not stop words, and after
// each stem that differs from its word the word itself. The words match
// messages stored before their terms were stemmed (their terms are the
// plain words); a message stored since holds only stems and never the
// plain form of a word whose stem differs, so each word of the question
// still counts once.
func Query(text string, max int) []string {
	var out []string
	seen := map[string]bool{}
	add := func(t string) {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	for _, w := range Words(text, max) {
		if stopwords[w] {
			continue
		}
		s := Stem(w)
		add(s)
		if s != w {
			add(w)
		}
	}
	return out
}

// stopwords are Weaviate's "en" preset (what chatprep dropped before) and
// the pronouns, auxiliaries and fillers of everyday chat, which are in most
// messages of a chat and so say nothing about one: each is a long posting
// list for BM25 to walk for almost no score. Question words (what, when,
// where, who, how) stay searchable: "where is it" and "when does it open"
// name what was asked before.
var stopwords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`a an and are as at be but by for if in into is it no not of on or such that
		the their then there these they this to was will with
		i me my mine myself you your yours yourself we us our ours he him his she her hers its them
		am been being were has have had having do does did doing done would could should shall can may might must
		so too very just also than from up down out off over about again
		oh ok okay yes yeah hi hey hello um uh lol haha`) {
		m[w] = true
	}
	return m
}()
