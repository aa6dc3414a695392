package kumofix

import (
	"cmp"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Fault is what the AWS proxy answers instead of forwarding a call, for fault
// tests. The zero Fault forwards.
type Fault struct {
	// Status and Code, when Status is not 0, are answered as an AWS JSON
	// error, e.g. 400 "ThrottlingException" or 503 "ServiceUnavailable".
	Status int
	Code   string
	// Drop closes the connection without an answer (a connection reset).
	Drop bool
	// Truncate forwards the call and sends the answer cut short: its
	// Content-Length promises more than the body holds, then the connection
	// closes (a connection lost while the client reads the rest of an answer
	// it has already parsed).
	Truncate bool
}

// Proxy sits between SQS's clients and kumo. It forwards every call and
// makes kumo answer like SQS; the package doc lists each behaviour it
// restores and where. It also counts calls by API (X-Amz-Target, the query
// Action, or the CBOR operation path) and can inject faults.
type Proxy struct {
	upstream string
	client   *http.Client
	srv      *http.Server
	ln       net.Listener
	// A second endpoint, never faulted: for a test's own producer and
	// readers while the workers' endpoint is made to fail.
	unfaultedSrv *http.Server
	unfaultedLn  net.Listener

	wake     wakeup       // long polls waiting for a message (see receive)
	stranded atomic.Int64 // messages given to long polls whose caller had gone
	orphans  sync.WaitGroup
	quit     chan struct{} // closed by close: orphaned polls end
	closed   bool          // guarded by mu: no new orphan
	sending  sync.RWMutex  // read-held by sends until their attributes are remembered
	dedup    dedup         // FIFO deduplication ids sent within DedupWindow
	released released      // messages given back early, for the queue counts
	attempts attempts      // FIFO receives' answers by ReceiveRequestAttemptId

	faults faultSlot // URL's (SetFault)

	mu        sync.Mutex
	sent      map[string]sentAttrs // SQS MessageId → the attributes kumo does not keep
	calls     map[string]*atomic.Int64
	endpoints []*Endpoint // made by NewEndpoint, closed by Close
}

// sentAttrs are the system attributes of a message sent that kumo does not
// keep: MessageGroupId and MessageDeduplicationId (FIFO), AWSTraceHeader.
type sentAttrs struct{ group, dedup, trace string }

// sentMessage is what rememberSend reads of a send or a batch entry.
type sentMessage struct {
	Id, MessageGroupId, MessageDeduplicationId string
	MessageSystemAttributes                    map[string]attrValueJSON
}

// attrs are m's attributes to remember; ok is false when there are none.
func (m sentMessage) attrs() (a sentAttrs, ok bool) {
	a = sentAttrs{group: m.MessageGroupId, dedup: m.MessageDeduplicationId}
	if t := m.MessageSystemAttributes["AWSTraceHeader"].StringValue; t != nil {
		a.trace = *t
	}
	return a, a.group != "" || a.trace != ""
}

// Start starts a proxy to the kumo at upstream (its URL) on two free
// loopback ports: URL, which SetFault affects, and UnfaultedURL.
func Start(upstream string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	uln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		ln.Close()
		return nil, err
	}
	p := &Proxy{
		upstream: upstream,
		client: &http.Client{Transport: &http.Transport{
			MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second,
		}},
		ln:          ln,
		unfaultedLn: uln,
		sent:        map[string]sentAttrs{},
		calls:       map[string]*atomic.Int64{},
		quit:        make(chan struct{}),
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	p.unfaultedSrv = &http.Server{ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.serve(w, r, nil) })}
	go p.srv.Serve(ln)           //nolint:errcheck // ends with Close
	go p.unfaultedSrv.Serve(uln) //nolint:errcheck // ends with Close
	return p, nil
}

// URL is the proxy's endpoint, http://127.0.0.1:PORT.
func (p *Proxy) URL() string { return "http://" + p.ln.Addr().String() }

// Close stops both endpoints and ends the orphaned long polls.
func (p *Proxy) Close() {
	p.srv.Close()
	p.unfaultedSrv.Close()
	p.mu.Lock()
	p.closed = true
	endpoints := p.endpoints
	p.mu.Unlock()
	for _, e := range endpoints {
		e.Close()
	}
	close(p.quit)
	p.orphans.Wait()
	p.client.CloseIdleConnections()
}

// apiName is "SQS.ReceiveMessage", "CloudWatch.PutMetricData", …
func apiName(r *http.Request) string {
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		svc, op, _ := strings.Cut(t, ".")
		switch svc {
		case "AmazonSQS":
			svc = "SQS"
		}
		return svc + "." + op
	}
	// Smithy RPC v2 CBOR: /service/GraniteServiceVersion20100801/operation/PutMetricData
	if i := strings.Index(r.URL.Path, "/operation/"); i >= 0 {
		op := r.URL.Path[i+len("/operation/"):]
		if strings.Contains(r.URL.Path, "Granite") {
			return "CloudWatch." + op
		}
		return op
	}
	return r.Method + " " + r.URL.Path
}

func (p *Proxy) count(api string) {
	p.mu.Lock()
	c, ok := p.calls[api]
	if !ok {
		c = new(atomic.Int64)
		p.calls[api] = c
	}
	p.mu.Unlock()
	c.Add(1)
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.serve(w, r, &p.faults) }

// sendTimeout bounds a send carried out after its caller went away.
const sendTimeout = 30 * time.Second

// serve forwards one call; with faults (an endpoint's), an injected fault
// may answer it. A
// call in SQS's query protocol is handled as the same call in JSON and
// answered in XML (see readQuery).
func (p *Proxy) serve(w http.ResponseWriter, r *http.Request, faults *faultSlot) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	query, jr, jbody, qerr := readQuery(r, body)
	switch {
	case qerr != nil:
		p.count("SQS." + cmp.Or(qerr.action, "query"))
		write(w, qerr.xml(""), false)
		return
	case query != nil:
		r, body = jr, jbody
	}
	api := apiName(r)
	p.count(api)
	start := time.Now()
	var f Fault
	if faultF := faults.get(); faultF != nil {
		f = faultF(api)
	}
	var resp *answer
	switch {
	case f.Drop:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		w.WriteHeader(http.StatusBadGateway)
		return
	case f.Status != 0:
		h := http.Header{}
		h.Set("Content-Type", "application/x-amz-json-1.0")
		h.Set("X-Amzn-Query-Error", f.Code+";Receiver")
		b, _ := json.Marshal(map[string]string{"__type": f.Code, "message": "injected by the devstack AWS proxy"})
		resp = &answer{StatusCode: f.Status, Header: h, body: append(b, '\n')}
	case api == "SQS.ReceiveMessage":
		resp, err = p.receive(r, body)
	case api == "SQS.SendMessage" || api == "SQS.SendMessageBatch":
		// A send that reached SQS is carried out, and its deduplication
		// ids count, whether or not its caller is still there for the
		// answer (a worker SIGKILLed mid-publish): kumo's answer is awaited
		// without the caller's cancellation, so that the proxy remembers
		// what kumo took. Cancelled, the send could be in kumo unremembered,
		// and the same result published again by the worker that takes the
		// redelivered event would be delivered twice. Bounded all the same:
		// a send kumo does not answer must not hold the proxy's sends.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), sendTimeout)
		defer cancel()
		r = r.WithContext(ctx)
		// Held until the send is remembered: a receive that got the message
		// meanwhile waits for its FIFO attributes (see receive).
		p.sending.RLock()
		if api == "SQS.SendMessage" {
			resp, err = p.sendChecked(r, body)
		} else {
			resp, err = p.sendBatchChecked(r, body)
		}
		if err == nil && resp.StatusCode == http.StatusOK && api == "SQS.SendMessage" {
			p.rememberSend(body, resp.body)
		} else if err == nil && resp.StatusCode == http.StatusOK {
			p.rememberBatch(body, resp.body)
		}
		p.sending.RUnlock()
		if err == nil && resp.StatusCode == http.StatusOK {
			resp.body = addSendMD5s(api, body, resp.body)
		}
	default:
		resp, err = p.forward(r, body)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if resp.StatusCode == http.StatusOK && f.Status == 0 {
		switch api {
		case "SQS.SendMessage", "SQS.SendMessageBatch", "SQS.DeleteMessage", "SQS.DeleteMessageBatch",
			"SQS.ChangeMessageVisibility", "SQS.ChangeMessageVisibilityBatch", "SQS.PurgeQueue", "SQS.DeleteQueue":
			p.released.track(api, body, resp.body, start)
			p.wake.broadcast() // a message may have become receivable
		case "SQS.GetQueueAttributes":
			resp.body = p.released.counts(body, resp.body, time.Now())
		}
	}
	if query != nil {
		resp = query.answer(resp)
	}
	write(w, resp, f.Truncate)
}

// write sends the answer resp; truncate cuts it short (see Fault).
func write(w http.ResponseWriter, resp *answer, truncate bool) {
	for k, v := range resp.Header {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	if truncate {
		// net/http closes a connection whose answer is shorter than its
		// Content-Length once the handler returns.
		w.Header().Set("Content-Length", strconv.Itoa(len(resp.body)+512))
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(resp.body) //nolint:errcheck // the client went away
}

func (p *Proxy) rememberSend(req, resp []byte) {
	var in sentMessage
	var out struct{ MessageId string }
	if json.Unmarshal(req, &in) != nil || json.Unmarshal(resp, &out) != nil {
		return
	}
	if a, ok := in.attrs(); ok {
		p.mu.Lock()
		p.sent[out.MessageId] = a
		p.mu.Unlock()
	}
}

func (p *Proxy) rememberBatch(req, resp []byte) {
	var in struct{ Entries []sentMessage }
	var out struct {
		Successful []struct{ Id, MessageId string }
	}
	if json.Unmarshal(req, &in) != nil || json.Unmarshal(resp, &out) != nil {
		return
	}
	byID := make(map[string]sentAttrs, len(in.Entries))
	for _, e := range in.Entries {
		if a, ok := e.attrs(); ok {
			byID[e.Id] = a
		}
	}
	if len(byID) == 0 {
		return
	}
	p.mu.Lock()
	for _, s := range out.Successful {
		if a, ok := byID[s.Id]; ok {
			p.sent[s.MessageId] = a
		}
	}
	p.mu.Unlock()
}

// addSentAttributes gives the messages of an answer the system attributes
// SQS returns and kumo does not keep (MessageGroupId,
// MessageDeduplicationId, AWSTraceHeader); selectAttributes then leaves
// those asked for. p.mu is held.
func (p *Proxy) addSentAttributes(msgs []map[string]any) {
	for _, m := range msgs {
		id, _ := m["MessageId"].(string)
		a, ok := p.sent[id]
		if !ok {
			continue
		}
		attrs, _ := m["Attributes"].(map[string]any)
		if attrs == nil {
			attrs = map[string]any{}
			m["Attributes"] = attrs
		}
		for k, v := range map[string]string{"MessageGroupId": a.group, "MessageDeduplicationId": a.dedup, "AWSTraceHeader": a.trace} {
			if v != "" {
				attrs[k] = v
			}
		}
	}
}

// fixAnswer makes kumo's answer to the ReceiveMessage req what SQS would
// give: each FIFO group's messages in order, with the system attributes
// kumo does not keep, and with the attributes asked for and their MD5
// (selectAttributes); decoded and encoded once.
func (p *Proxy) fixAnswer(req, resp []byte) []byte {
	return editMessages(resp, func(msgs []map[string]any) bool {
		p.mu.Lock()
		p.groupOrder(msgs)
		p.addSentAttributes(msgs)
		p.mu.Unlock()
		selectAttributes(req, msgs)
		return true
	})
}

// editMessages lets edit change the messages of a ReceiveMessage answer in
// place (it reports whether it did) and returns the answer re-encoded, or
// resp as it was when nothing changed or it is not such an answer (one
// without messages included).
func editMessages(resp []byte, edit func(msgs []map[string]any) bool) []byte {
	var out map[string]json.RawMessage
	var msgs []map[string]any
	if json.Unmarshal(resp, &out) != nil || out["Messages"] == nil || json.Unmarshal(out["Messages"], &msgs) != nil {
		return resp
	}
	if !edit(msgs) {
		return resp
	}
	b, err := json.Marshal(msgs)
	if err != nil {
		return resp
	}
	out["Messages"] = b
	if b, err = json.Marshal(out); err != nil {
		return resp
	}
	return b
}

// Calls returns how many calls each API received, e.g.
// {"SQS.ReceiveMessage": 12, "CloudWatch.PutMetricData": 1}.
func (p *Proxy) Calls() map[string]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int64, len(p.calls))
	for k, v := range p.calls {
		out[k] = v.Load()
	}
	return out
}

// Stranded is the number of messages the proxy took for long polls whose
// caller had gone (see receive): they come back after their visibility
// timeout, one receive more.
func (p *Proxy) Stranded() int64 { return p.stranded.Load() }

// UnfaultedURL is a second endpoint to the same emulator (and the same
// proxy state) that SetFault never affects: a test's own producer and
// readers use it while the workers' endpoint, URL, fails. Its calls are
// counted in Calls too.
func (p *Proxy) UnfaultedURL() string { return "http://" + p.unfaultedLn.Addr().String() }

// SetFault makes the endpoint answer calls with f(api) instead of
// forwarding them (or, with Truncate, forward them and cut the answer
// short) while f returns a non-zero Fault; nil forwards everything.
func (p *Proxy) SetFault(f func(api string) Fault) { p.faults.set(f) }
