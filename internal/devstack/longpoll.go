package devstack

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"
)

// pollEvery is how often a long poll asks kumo again while nothing passing
// the proxy woke it: the bound on noticing a message whose visibility
// timeout ended.
const pollEvery = 100 * time.Millisecond

// answer is kumo's answer to one call.
type answer struct {
	StatusCode int
	Header     http.Header
	body       []byte
}

// forward sends the call r (with body) to kumo.
func (p *awsProxy) forward(r *http.Request, body []byte) (*answer, error) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.upstream+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = r.Header.Clone()
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &answer{StatusCode: resp.StatusCode, Header: resp.Header, body: out}, nil
}

// receive answers a ReceiveMessage. A long poll (WaitTimeSeconds > 0) is
// made here, as short polls to kumo, each after a send, delete or
// visibility change passed the proxy or pollEvery passed, until one finds
// messages or the wait is over: SQS answers a long poll as soon as a
// message is receivable, and kumo only when one is sent. The messages then
// get their FIFO attributes, once every send in flight (one of which may
// have sent them) is remembered.
func (p *awsProxy) receive(r *http.Request, body []byte) (*answer, error) {
	var in map[string]json.RawMessage
	var wait int
	if json.Unmarshal(body, &in) == nil && json.Unmarshal(in["WaitTimeSeconds"], &wait) == nil && wait > 0 {
		in["WaitTimeSeconds"] = json.RawMessage("0")
		if b, err := json.Marshal(in); err == nil {
			body = b
		} else {
			wait = 0
		}
	}
	ctx := r.Context()
	deadline := time.Now().Add(time.Duration(wait) * time.Second)
	for {
		woken := p.wake.wait()
		resp, err := p.forward(r, body)
		if err != nil {
			return nil, err
		}
		left := time.Until(deadline)
		if resp.StatusCode != http.StatusOK || left <= 0 || hasMessages(resp.body) {
			if resp.StatusCode == http.StatusOK {
				p.sending.Lock() // once the sends in flight are remembered
				resp.body = p.addFIFOAttributes(resp.body)
				p.sending.Unlock()
			}
			return resp, nil
		}
		t := time.NewTimer(min(pollEvery, left))
		select {
		case <-woken:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, context.Cause(ctx)
		}
		t.Stop()
	}
}

func hasMessages(resp []byte) bool {
	var out struct{ Messages []json.RawMessage }
	return json.Unmarshal(resp, &out) == nil && len(out.Messages) > 0
}

// wakeup wakes every waiter at once: a channel closed and replaced on each
// broadcast.
type wakeup struct {
	mu sync.Mutex
	ch chan struct{}
}

func (w *wakeup) wait() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch == nil {
		w.ch = make(chan struct{})
	}
	return w.ch
}

func (w *wakeup) broadcast() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch != nil {
		close(w.ch)
		w.ch = nil
	}
}
