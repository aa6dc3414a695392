package kumofix

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// SQS's query protocol, which the proxy speaks next to the JSON protocol:
// kumo speaks only JSON, and clients that speak query (aws-cli before
// 2.13, aws-sdk-go v1, the Java SDK v1, boto3 before 1.28.82, many tools)
// got "invalid XML" from it. The proxy translates a query call into the
// same call in JSON (the shapes in sqsquery_shapes.go), handles that like
// any other call (so every SQS fix of the proxy applies to both protocols),
// and answers in XML:
//
//	POST / Action=GetQueueUrl&Version=2012-11-05&QueueName=q
//	<GetQueueUrlResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/">
//	  <GetQueueUrlResult><QueueUrl>…</QueueUrl></GetQueueUrlResult>
//	  <ResponseMetadata><RequestId>…</RequestId></ResponseMetadata>
//	</GetQueueUrlResponse>
//
// Errors come as SQS sends them: <ErrorResponse><Error><Type>Sender</Type>
// <Code>AWS.SimpleQueueService.NonExistentQueue</Code>…, with the query
// protocol's codes.

const (
	sqsAPIVersion = "2012-11-05"
	sqsXMLNS      = "http://queue.amazonaws.com/doc/2012-11-05/"
)

// queryCall is an SQS call made in the query protocol.
type queryCall struct {
	action string
	op     queryOp
}

// queryError is a query call the proxy answers itself, with an error.
type queryError struct {
	status      int
	code, msg   string
	action, req string // the call's action, when known, and request id
}

// readQuery reads r (whose body is body) as a call in SQS's query protocol:
// form parameters in the body or the URL, with an Action of SQS's and
// Version 2012-11-05 (or none). It returns nil for any other call (the JSON
// protocol, another service's query call such as CloudWatch's), or the
// call and the same call as a JSON-protocol request and body, or an error
// to answer.
func readQuery(r *http.Request, body []byte) (*queryCall, *http.Request, []byte, *queryError) {
	if r.Header.Get("X-Amz-Target") != "" {
		return nil, nil, nil, nil
	}
	params := r.URL.Query()
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, nil, nil, &queryError{status: http.StatusBadRequest, code: "MalformedQueryString", msg: err.Error()}
		}
		for k, v := range form {
			params[k] = append(params[k], v...)
		}
	}
	action, version := params.Get("Action"), params.Get("Version")
	if action == "" || version != "" && version != sqsAPIVersion {
		return nil, nil, nil, nil
	}
	op, ok := sqsOps[action]
	if !ok {
		if version == "" {
			return nil, nil, nil, nil // not ours to answer
		}
		return nil, nil, nil, &queryError{status: http.StatusBadRequest, code: "InvalidAction", action: action,
			msg: fmt.Sprintf("The action %s is not valid for this endpoint.", action)}
	}
	in, _, err := op.in.decode(params, "")
	if err != nil {
		err.action = action
		return nil, nil, nil, err
	}
	m, _ := in.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	// Older clients (boto, the Java SDK v1) post to the queue's URL and
	// leave QueueUrl out; kumo finds a queue by its URL's path.
	if _, ok := m["QueueUrl"]; !ok && slices.ContainsFunc(op.in.fields, func(f field) bool { return f.name == "QueueUrl" }) &&
		strings.Count(strings.Trim(r.URL.Path, "/"), "/") == 1 {
		m["QueueUrl"] = "http://" + r.Host + r.URL.Path
	}
	jsonBody, jerr := json.Marshal(m)
	if jerr != nil {
		return nil, nil, nil, &queryError{status: http.StatusInternalServerError, code: "InternalFailure", action: action, msg: jerr.Error()}
	}
	req := r.Clone(r.Context())
	req.Method = http.MethodPost
	req.URL = &url.URL{Path: "/"}
	req.Header.Set("X-Amz-Target", "AmazonSQS."+action)
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.ContentLength = int64(len(jsonBody))
	return &queryCall{action: action, op: op}, req, jsonBody, nil
}

// decode reads the value at key (a parameter name, or a prefix of them) as
// s; it reports whether there is one.
func (s *shape) decode(p url.Values, key string) (any, bool, *queryError) {
	join := func(name string) string {
		if key == "" {
			return name
		}
		return key + "." + name
	}
	switch s.kind {
	case kStruct:
		out := map[string]any{}
		for _, fl := range s.fields {
			name := fl.xml
			if fl.shape.kind == kList {
				name = fl.shape.elemName // flattened: Entries → SendMessageBatchRequestEntry.N
			}
			v, ok, err := fl.shape.decode(p, join(name))
			if err != nil {
				return nil, false, err
			}
			if ok {
				out[fl.name] = v
			}
		}
		return out, len(out) > 0, nil
	case kList:
		var out []any
		for i := 1; ; i++ {
			v, ok, err := s.elem.decode(p, key+"."+strconv.Itoa(i))
			if err != nil {
				return nil, false, err
			}
			if !ok {
				return out, len(out) > 0, nil
			}
			out = append(out, v)
		}
	case kMap:
		out := map[string]any{}
		for i := 1; ; i++ {
			entry := key + "." + strconv.Itoa(i) + "."
			k, ok := p[entry+s.elemName]
			if !ok {
				return out, len(out) > 0, nil
			}
			v, _, err := s.elem.decode(p, entry+"Value")
			if err != nil {
				return nil, false, err
			}
			out[k[0]] = v
		}
	}
	vs, ok := p[key]
	if !ok {
		return nil, false, nil
	}
	v := vs[0]
	switch s.kind {
	case kInt:
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return nil, false, &queryError{status: http.StatusBadRequest, code: "InvalidParameterValue",
				msg: fmt.Sprintf("Value %s for parameter %s is invalid. Reason: must be an integer.", v, key)}
		}
		return n, true, nil
	case kBool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, false, &queryError{status: http.StatusBadRequest, code: "InvalidParameterValue",
				msg: fmt.Sprintf("Value %s for parameter %s is invalid. Reason: must be true or false.", v, key)}
		}
		return b, true, nil
	}
	return v, true, nil // strings, and blobs in base64 as JSON has them
}

// answer turns the JSON-protocol answer to the call into its XML answer.
func (q *queryCall) answer(resp *answer) *answer {
	id := resp.Header.Get("X-Amzn-Requestid")
	if id == "" {
		id = requestID()
	}
	if resp.StatusCode/100 != 2 {
		code, fault, msg := jsonError(resp)
		return (&queryError{status: resp.StatusCode, code: code, msg: msg, action: q.action, req: id}).xml(fault)
	}
	var v map[string]any
	if len(bytes.TrimSpace(resp.body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(resp.body))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return (&queryError{status: http.StatusBadGateway, code: "InternalFailure", action: q.action, req: id,
				msg: "the emulator's answer is not JSON: " + err.Error()}).xml("")
		}
	}
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0"?>`)
	fmt.Fprintf(&b, `<%sResponse xmlns="%s">`, q.action, sqsXMLNS)
	if q.op.out != nil {
		q.op.out.encode(&b, q.action+"Result", v)
	}
	fmt.Fprintf(&b, `<ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></%sResponse>`, id, q.action)
	return xmlAnswer(http.StatusOK, id, b.Bytes())
}

// encode writes v, a value of shape s decoded from JSON, as the element
// name.
func (s *shape) encode(b *bytes.Buffer, name string, v any) {
	switch s.kind {
	case kStruct:
		m, _ := v.(map[string]any)
		fmt.Fprintf(b, "<%s>", name)
		for _, fl := range s.fields {
			fv, ok := m[fl.name]
			if !ok || fv == nil {
				continue
			}
			switch fl.shape.kind {
			case kList: // flattened: each element under the element's name
				vs, _ := fv.([]any)
				for _, e := range vs {
					fl.shape.elem.encode(b, fl.shape.elemName, e)
				}
			case kMap: // flattened: each entry under the member's name
				entries, _ := fv.(map[string]any)
				for _, k := range slices.Sorted(maps.Keys(entries)) {
					fmt.Fprintf(b, "<%s><%s>", fl.xml, fl.shape.elemName)
					xml.EscapeText(b, []byte(k)) //nolint:errcheck // a bytes.Buffer
					fmt.Fprintf(b, "</%s>", fl.shape.elemName)
					fl.shape.elem.encode(b, "Value", entries[k])
					fmt.Fprintf(b, "</%s>", fl.xml)
				}
			default:
				fl.shape.encode(b, fl.xml, fv)
			}
		}
		fmt.Fprintf(b, "</%s>", name)
		return
	}
	fmt.Fprintf(b, "<%s>", name)
	switch v := v.(type) {
	case string:
		xml.EscapeText(b, []byte(v)) //nolint:errcheck // a bytes.Buffer
	case bool:
		b.WriteString(strconv.FormatBool(v))
	case json.Number:
		b.WriteString(v.String())
	}
	fmt.Fprintf(b, "</%s>", name)
}

// jsonError reads a JSON-protocol error answer: the query protocol's code
// (from the X-Amzn-Query-Error header SQS sends for query-compatible
// clients, or the error type), the fault ("Sender" or "Receiver", when the
// header says) and the message.
func jsonError(resp *answer) (code, fault, msg string) {
	var e struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
		Msg     string `json:"Message"`
	}
	if json.Unmarshal(resp.body, &e) != nil {
		e.Message = strings.TrimSpace(string(resp.body))
	}
	msg = e.Message + e.Msg
	if h := resp.Header.Get("X-Amzn-Query-Error"); h != "" {
		code, fault, _ = strings.Cut(h, ";")
		return code, fault, msg
	}
	// "com.amazonaws.sqs#QueueDoesNotExist", or kumo's bare name.
	code = e.Type[strings.LastIndexByte(e.Type, '#')+1:]
	code, _, _ = strings.Cut(code, ":")
	if c, ok := sqsErrorCodes[code]; ok {
		code = c
	}
	if code == "" {
		code = "InternalFailure"
	}
	return code, "", msg
}

// xml is the error's ErrorResponse; fault is "Sender" or "Receiver", or
// empty to tell it by the status.
func (e *queryError) xml(fault string) *answer {
	if fault == "" {
		fault = "Sender"
		if e.status >= 500 {
			fault = "Receiver"
		}
	}
	if e.req == "" {
		e.req = requestID()
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `<?xml version="1.0"?><ErrorResponse xmlns="%s"><Error><Type>%s</Type><Code>`, sqsXMLNS, fault)
	xml.EscapeText(&b, []byte(e.code)) //nolint:errcheck // a bytes.Buffer
	b.WriteString("</Code><Message>")
	xml.EscapeText(&b, []byte(e.msg)) //nolint:errcheck // a bytes.Buffer
	fmt.Fprintf(&b, "</Message><Detail/></Error><RequestId>%s</RequestId></ErrorResponse>", e.req)
	return xmlAnswer(e.status, e.req, b.Bytes())
}

func xmlAnswer(status int, id string, body []byte) *answer {
	h := http.Header{}
	h.Set("Content-Type", "text/xml")
	h.Set("X-Amzn-Requestid", id)
	return &answer{StatusCode: status, Header: h, body: body}
}

// requestID is a new request id in SQS's form (a UUID).
func requestID() string {
	var u [16]byte
	rand.Read(u[:]) //nolint:errcheck // never fails
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
}
