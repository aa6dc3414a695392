package kumofix

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"strings"
)

// Message attributes as SQS returns them, for both protocols. kumo
//
//   - returns every system attribute and every message attribute on
//     ReceiveMessage, whatever was asked for; SQS returns only those named in
//     AttributeNames / MessageSystemAttributeNames and MessageAttributeNames
//     ("All", ".*", a "prefix.*" or a name), so a client that reads an
//     attribute it did not ask for works against kumo and not against SQS;
//   - puts a FIFO message's SequenceNumber next to the message; SQS has it
//     among the system attributes, when asked for;
//   - never answers MD5OfMessageAttributes (on SendMessage, its batch, or
//     ReceiveMessage), which clients such as the Java SDK v1 and aws-sdk-go
//     v1 check against the attributes they sent or received;
//   - drops MessageSystemAttributes (AWSTraceHeader, X-Ray's trace header)
//     on send; the proxy remembers it with the FIFO attributes (see
//     rememberSend), returns it on receive and answers its
//     MD5OfMessageSystemAttributes.

// attrValueJSON is a message attribute (or message system attribute) in JSON.
type attrValueJSON struct {
	DataType         string
	StringValue      *string
	BinaryValue      []byte
	StringListValues []string
	BinaryListValues [][]byte
}

// md5OfAttributes is SQS's MD5 of message attributes: per attribute, in the
// order of their names, the name, the data type, a transport byte (1 a
// string value, 2 a binary one, 3 and 4 their lists) and the value, each
// string and value preceded by its length (4 bytes, big-endian).
func md5OfAttributes(attrs map[string]attrValueJSON) string {
	h := md5.New()
	put := func(b []byte) {
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(b))))
		h.Write(b)
	}
	for _, name := range slices.Sorted(maps.Keys(attrs)) {
		a := attrs[name]
		put([]byte(name))
		put([]byte(a.DataType))
		switch {
		case a.StringValue != nil:
			h.Write([]byte{1})
			put([]byte(*a.StringValue))
		case a.BinaryValue != nil:
			h.Write([]byte{2})
			put(a.BinaryValue)
		case len(a.StringListValues) > 0:
			h.Write([]byte{3})
			for _, s := range a.StringListValues {
				put([]byte(s))
			}
		case len(a.BinaryListValues) > 0:
			h.Write([]byte{4})
			for _, b := range a.BinaryListValues {
				put(b)
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// sentAttributes is what the proxy reads of a send (or a batch entry) to
// answer its MD5s.
type sentAttributes struct {
	Id                      string
	MessageAttributes       map[string]attrValueJSON
	MessageSystemAttributes map[string]attrValueJSON
}

// md5s sets the MD5s of the attributes s sent on out, a send's answer (or
// its batch entry's).
func (s sentAttributes) md5s(out map[string]any) {
	if len(s.MessageAttributes) > 0 {
		out["MD5OfMessageAttributes"] = md5OfAttributes(s.MessageAttributes)
	}
	if len(s.MessageSystemAttributes) > 0 {
		out["MD5OfMessageSystemAttributes"] = md5OfAttributes(s.MessageSystemAttributes)
	}
}

// addSendMD5s gives a SendMessage or SendMessageBatch answer the MD5s of
// the attributes its request sent (see above); it returns resp as it was
// when there is nothing to add or it cannot read them.
func addSendMD5s(api string, req, resp []byte) []byte {
	var out map[string]any
	if json.Unmarshal(resp, &out) != nil {
		return resp
	}
	if api == "SQS.SendMessage" {
		var in sentAttributes
		if json.Unmarshal(req, &in) != nil || len(in.MessageAttributes)+len(in.MessageSystemAttributes) == 0 {
			return resp
		}
		in.md5s(out)
	} else {
		var in struct{ Entries []sentAttributes }
		if json.Unmarshal(req, &in) != nil {
			return resp
		}
		byID := map[string]sentAttributes{}
		for _, e := range in.Entries {
			if len(e.MessageAttributes)+len(e.MessageSystemAttributes) > 0 {
				byID[e.Id] = e
			}
		}
		if len(byID) == 0 {
			return resp
		}
		successful, _ := out["Successful"].([]any)
		for _, s := range successful {
			if entry, ok := s.(map[string]any); ok {
				id, _ := entry["Id"].(string)
				byID[id].md5s(entry) // the zero sentAttributes adds none
			}
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return resp
	}
	return b
}

// wanted is what a ReceiveMessage asked for.
type wanted struct {
	AttributeNames, MessageSystemAttributeNames, MessageAttributeNames []string
}

// system tells whether the system attribute name was asked for.
func (w wanted) system(name string) bool {
	return slices.Contains(w.AttributeNames, "All") || slices.Contains(w.MessageSystemAttributeNames, "All") ||
		slices.Contains(w.AttributeNames, name) || slices.Contains(w.MessageSystemAttributeNames, name)
}

// message tells whether the message attribute name was asked for.
func (w wanted) message(name string) bool {
	for _, n := range w.MessageAttributeNames {
		if n == "All" || n == ".*" || n == name {
			return true
		}
		if prefix, ok := strings.CutSuffix(n, ".*"); ok && strings.HasPrefix(name, prefix+".") {
			return true
		}
	}
	return false
}

// selectAttributes leaves on each message of a ReceiveMessage answer the
// attributes req asked for, as SQS returns them, with their MD5 (see
// above).
func selectAttributes(req []byte, msgs []map[string]any) {
	var w wanted
	_ = json.Unmarshal(req, &w) // unreadable: nothing was asked for
	for _, m := range msgs {
		attrs, _ := m["Attributes"].(map[string]any)
		if s, ok := m["SequenceNumber"]; ok {
			delete(m, "SequenceNumber")
			if attrs == nil {
				attrs = map[string]any{}
			}
			attrs["SequenceNumber"] = s
		}
		for k := range attrs {
			if !w.system(k) {
				delete(attrs, k)
			}
		}
		if len(attrs) == 0 {
			delete(m, "Attributes")
		} else {
			m["Attributes"] = attrs
		}

		raw, _ := m["MessageAttributes"].(map[string]any)
		kept := map[string]attrValueJSON{}
		for k, v := range raw {
			if !w.message(k) {
				delete(raw, k)
				continue
			}
			var a attrValueJSON
			if b, err := json.Marshal(v); err == nil && json.Unmarshal(b, &a) == nil {
				kept[k] = a
			}
		}
		delete(m, "MD5OfMessageAttributes")
		if len(raw) == 0 {
			delete(m, "MessageAttributes")
		} else {
			m["MD5OfMessageAttributes"] = md5OfAttributes(kept)
		}
	}
}
