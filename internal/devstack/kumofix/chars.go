package kumofix

import (
	"encoding/json"
	"net/http"
	"strings"
	"unicode"
)

// sqsCharacters are the characters SQS takes in a message body (AWS: "A
// message can include only XML, JSON, and unformatted text. The following
// Unicode characters are allowed: #x9 | #xA | #xD | #x20 to #xD7FF | #xE000
// to #xFFFD | #x10000 to #x10FFFF"). kumo takes any; the proxy refuses the
// others as SQS does. (Written here from the documentation, not taken from
// the worker's own sqsbatch.Allowed, so that a mistake there shows against
// this.)
var sqsCharacters = &unicode.RangeTable{
	R16: []unicode.Range16{
		{Lo: 0x9, Hi: 0xA, Stride: 1},
		{Lo: 0xD, Hi: 0xD, Stride: 1},
		{Lo: 0x20, Hi: 0xD7FF, Stride: 1},
		{Lo: 0xE000, Hi: 0xFFFD, Stride: 1},
	},
	R32: []unicode.Range32{{Lo: 0x10000, Hi: 0x10FFFF, Stride: 1}},
}

// invalidContentsMessage is what SQS says with InvalidMessageContents.
const invalidContentsMessage = "Invalid binary character was found in the message body, the set of allowed characters is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF"

// refusedBody tells whether SQS would refuse body for its characters.
func refusedBody(body string) bool {
	return strings.IndexFunc(body, func(r rune) bool { return !unicode.Is(sqsCharacters, r) }) >= 0
}

// invalidContents is SQS's answer to a SendMessage whose body it refuses.
func invalidContents() *answer {
	h := http.Header{}
	h.Set("Content-Type", "application/x-amz-json-1.0")
	h.Set("X-Amzn-Query-Error", "InvalidMessageContents;Sender")
	b, _ := json.Marshal(map[string]string{"__type": "com.amazonaws.sqs#InvalidMessageContents", "message": invalidContentsMessage})
	return &answer{StatusCode: http.StatusBadRequest, Header: h, body: b}
}

// sendChecked is SendMessage as SQS answers it: a body with a character
// SQS refuses fails the call with InvalidMessageContents.
func (p *Proxy) sendChecked(r *http.Request, body []byte) (*answer, error) {
	var in struct{ MessageBody string }
	if json.Unmarshal(body, &in) == nil && refusedBody(in.MessageBody) {
		return invalidContents(), nil
	}
	return p.sendOne(r, body)
}

// sendBatchChecked is SendMessageBatch as SQS answers it: each entry whose
// body holds a character SQS refuses is in the answer's Failed list (code
// InvalidMessageContents, the sender's fault), and the others are sent.
func (p *Proxy) sendBatchChecked(r *http.Request, body []byte) (*answer, error) {
	var in map[string]json.RawMessage
	var raw []json.RawMessage
	if json.Unmarshal(body, &in) != nil || json.Unmarshal(in["Entries"], &raw) != nil {
		return p.sendBatch(r, body)
	}
	type failure struct {
		Id, Code, Message string
		SenderFault       bool
	}
	var failed []failure
	keep := raw[:0:0]
	for _, e := range raw {
		var be struct{ Id, MessageBody string }
		if json.Unmarshal(e, &be) == nil && refusedBody(be.MessageBody) {
			failed = append(failed, failure{be.Id, "InvalidMessageContents", invalidContentsMessage, true})
			continue
		}
		keep = append(keep, e)
	}
	if len(failed) == 0 {
		return p.sendBatch(r, body)
	}
	out := struct {
		Successful []json.RawMessage
		Failed     []any
	}{Successful: []json.RawMessage{}}
	for _, f := range failed {
		out.Failed = append(out.Failed, f)
	}
	if len(keep) > 0 {
		b, err := withEntries(in, keep)
		if err != nil {
			return nil, err
		}
		resp, err := p.sendBatch(r, b)
		if err != nil || resp.StatusCode != http.StatusOK {
			return resp, err
		}
		var sent struct {
			Successful []json.RawMessage
			Failed     []json.RawMessage
		}
		if err := json.Unmarshal(resp.body, &sent); err != nil {
			return resp, nil
		}
		out.Successful = append(out.Successful, sent.Successful...)
		for _, f := range sent.Failed {
			out.Failed = append(out.Failed, f)
		}
	}
	return jsonAnswer(out)
}
