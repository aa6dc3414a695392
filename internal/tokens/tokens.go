// Package tokens counts the tokens of texts in the encodings of OpenAI's
// models, offline: the vocabularies are compiled into the binary
// (github.com/tiktoken-go/tokenizer), nothing is downloaded at run time.
//
// Counting is not cheap (about 6 MB/s, some 35 µs for a 200-byte message on
// this project's machines), so chatprep counts each message once, when it is
// stored, and keeps the count with it (internal/store); a result's budget is
// then a sum of stored counts.
package tokens

import (
	"fmt"
	"slices"

	"github.com/tiktoken-go/tokenizer"
)

// Encodings TOKEN_ENCODING may name.
const (
	O200kBase  = "o200k_base"  // GPT-4o, GPT-4.1, o-series, GPT-5
	Cl100kBase = "cl100k_base" // GPT-4, GPT-3.5
)

// DefaultEncoding is TOKEN_ENCODING's default.
const DefaultEncoding = O200kBase

// Encodings lists the encodings New accepts.
func Encodings() []string { return []string{O200kBase, Cl100kBase} }

// Counter counts tokens in one encoding. It is safe for concurrent use.
type Counter struct {
	name  string
	codec tokenizer.Codec
}

// New returns a Counter for the named encoding (one of Encodings).
func New(encoding string) (*Counter, error) {
	if !slices.Contains(Encodings(), encoding) {
		return nil, fmt.Errorf("token encoding %q: want one of %v", encoding, Encodings())
	}
	c, err := tokenizer.Get(tokenizer.Encoding(encoding))
	if err != nil {
		return nil, fmt.Errorf("token encoding %q: %w", encoding, err)
	}
	return &Counter{name: encoding, codec: c}, nil
}

// Name is the encoding's name, like "o200k_base".
func (c *Counter) Name() string { return c.name }

// Count is the number of tokens of text. Invalid UTF-8 is counted as it is
// (the codec's default); it never fails for a text chatprep accepts, and if
// the codec ever did, a conservative estimate (one token per byte) is
// returned, so that a budget is never exceeded by a miscount.
func (c *Counter) Count(text string) int {
	n, err := c.codec.Count(text)
	if err != nil {
		return len(text)
	}
	return n
}
