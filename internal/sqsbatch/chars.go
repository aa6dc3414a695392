package sqsbatch

import "bytes"

// Allowed tells whether SQS takes r in a message body or a String attribute
// value: #x9, #xA, #xD, #x20 to #xD7FF, #xE000 to #xFFFD and #x10000 to
// #x10FFFF (the XML 1.0 characters). A message holding any other is refused
// whole, with InvalidMessageContents.
func Allowed(r rune) bool {
	switch {
	case r == '\t' || r == '\n' || r == '\r',
		r >= 0x20 && r <= 0xD7FF,
		r >= 0xE000 && r <= 0xFFFD,
		r >= 0x10000 && r <= 0x10FFFF:
		return true
	}
	return false
}

// JSONBody makes a JSON document that is valid UTF-8 a body SQS takes: it
// writes U+FFFE and U+FFFF, which SQS refuses, as the JSON escapes \ufffe
// and \uffff, which any JSON reader decodes to the same characters. It is
// lossless: the body means the same.
//
// They are the only characters SQS refuses that valid JSON in valid UTF-8
// can hold raw, and only inside strings, which is where an escape is valid:
// a control character must be escaped there, and outside strings only
// whitespace is allowed. Go's encoding/json writes both raw. A document
// without them is returned as it is, without a copy.
func JSONBody(doc []byte) []byte {
	i := nonCharacter(doc)
	if i < 0 {
		return doc
	}
	out := make([]byte, 0, len(doc)+16)
	for ; i >= 0; i = nonCharacter(doc) {
		out = append(out, doc[:i]...)
		out = append(out, `\uffff`...)
		if doc[i+2] == 0xBE {
			out[len(out)-1] = 'e'
		}
		doc = doc[i+3:]
	}
	return append(out, doc...)
}

// nonCharacter is the index of the first U+FFFE or U+FFFF in doc (the bytes
// EF BF BE or EF BF BF), -1 if none.
func nonCharacter(doc []byte) int {
	for i := 0; ; {
		j := bytes.Index(doc[i:], []byte{0xEF, 0xBF})
		if j < 0 || i+j+2 >= len(doc) {
			return -1
		}
		if c := doc[i+j+2]; c == 0xBE || c == 0xBF {
			return i + j
		}
		i += j + 2
	}
}
