package kumofix

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/chatprep/chatprep/internal/config"
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
func (p *Proxy) forward(r *http.Request, body []byte) (*answer, error) {
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
// have sent them) is remembered, and each group's messages their order.
//
// A long poll whose caller goes away (its request cancelled, its process
// killed) stays open until its wait is over, as at SQS, which does not
// notice: what arrives meanwhile is delivered into it, to no one, and stays
// invisible for its visibility timeout (aws-sdk-go-v2#2068). So a worker
// that cancels its polls on SIGTERM strands messages here as on SQS.
func (p *Proxy) receive(r *http.Request, body []byte) (*answer, error) {
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
	if ans := p.attempts.get(body); ans != nil {
		return ans, nil // a retry of a FIFO receive that took messages (see attempts)
	}
	ctx := r.Context()
	deadline := time.Now().Add(time.Duration(wait) * time.Second)
	return p.poll(ctx, r, body, deadline, false)
}

// poll short-polls kumo for r until it finds messages, the deadline
// passes, or ctx ends; then, unless it is an orphan already, the poll goes
// on orphaned (see receive).
func (p *Proxy) poll(ctx context.Context, r *http.Request, body []byte, deadline time.Time, orphan bool) (*answer, error) {
	var in struct{ QueueUrl string }
	_ = json.Unmarshal(body, &in) // receive read it already
	queue := config.QueueName(in.QueueUrl)
	for {
		woken := p.wake.wait()
		sent := time.Now()
		resp, err := p.forward(r, body)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode == http.StatusOK {
			p.released.received(queue, sent) // kumo took them back into the queue
		}
		left := time.Until(deadline)
		if resp.StatusCode != http.StatusOK || left <= 0 || hasMessages(resp.body) {
			if resp.StatusCode == http.StatusOK {
				p.sending.Lock() // once the sends in flight are remembered
				resp.body = p.fixAnswer(body, resp.body)
				p.sending.Unlock()
				if hasMessages(resp.body) {
					p.attempts.put(body, resp)
				}
			}
			return resp, nil
		}
		t := time.NewTimer(min(pollEvery, left))
		select {
		case <-woken:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			if !orphan {
				p.orphan(r, body, deadline)
			}
			return nil, context.Cause(ctx)
		}
		t.Stop()
	}
}

// orphan keeps the abandoned poll r open until its deadline, as SQS does:
// messages it finds are received by no one.
func (p *Proxy) orphan(r *http.Request, body []byte, deadline time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	ctx, cancel := context.WithDeadline(context.WithoutCancel(r.Context()), deadline)
	p.orphans.Go(func() {
		defer cancel()
		go func() { // the proxy closing ends it too
			select {
			case <-p.quit:
				cancel()
			case <-ctx.Done():
			}
		}()
		resp, err := p.poll(ctx, r.WithContext(ctx), body, deadline, true)
		if err != nil || resp.StatusCode != http.StatusOK {
			return
		}
		var out struct{ Messages []json.RawMessage }
		if json.Unmarshal(resp.body, &out) == nil {
			p.stranded.Add(int64(len(out.Messages)))
		}
	})
}

// groupOrder puts the messages of each FIFO group in one answer in the
// order they were sent, as SQS hands them out. kumo puts messages whose
// visibility ended back in front of its queue in map order, so after a
// failed message's group was released (or a lease lost), its messages could
// come back shuffled. It reports whether it moved any; p.mu is held.
func (p *Proxy) groupOrder(msgs []map[string]any) bool {
	if len(msgs) < 2 {
		return false
	}
	slots := map[string][]int{} // group → its messages' places in the answer
	for i, m := range msgs {
		id, _ := m["MessageId"].(string)
		if a, ok := p.sent[id]; ok && a.group != "" {
			slots[a.group] = append(slots[a.group], i)
		}
	}
	changed := false
	orig := slices.Clone(msgs)
	for _, idx := range slots {
		group := make([]map[string]any, len(idx))
		for j, i := range idx {
			group[j] = orig[i]
		}
		slices.SortStableFunc(group, func(a, b map[string]any) int { return compareSeq(seq(a), seq(b)) })
		for j, i := range idx {
			if msgs[i]["MessageId"] != group[j]["MessageId"] {
				changed = true
			}
			msgs[i] = group[j]
		}
	}
	return changed
}

// seq is a FIFO message's sequence number (kumo answers it next to the
// message, SQS among its attributes).
func seq(m map[string]any) string {
	if s, ok := m["SequenceNumber"].(string); ok {
		return s
	}
	attrs, _ := m["Attributes"].(map[string]any)
	s, _ := attrs["SequenceNumber"].(string)
	return s
}

// compareSeq compares decimal sequence numbers of any length.
func compareSeq(a, b string) int {
	return cmp.Or(cmp.Compare(len(a), len(b)), strings.Compare(a, b))
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
