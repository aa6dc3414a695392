package kumofix

import (
	"encoding/json"
	"strings"
	"sync"
	"time"
)

// attemptWindow is how long SQS answers a FIFO queue's ReceiveMessage
// retried with the same ReceiveRequestAttemptId with the same messages and
// receipt handles (its deduplication interval, 5 minutes).
const attemptWindow = 5 * time.Minute

// attempts restores ReceiveRequestAttemptId, which kumo ignores: a FIFO
// receive retried with the attempt id of one that took messages gets that
// answer again, where kumo would take new ones and leave the first
// answer's messages hidden for their visibility timeout — and their FIFO
// groups waiting behind them. The SDK retries a receive whose answer it
// could not read (aws-sdk-go-v2 retries a read on a connection net/http
// closed under it, #2737); the consumer and peek give every FIFO receive
// an attempt id so that such a retry loses nothing.
type attempts struct {
	mu sync.Mutex
	m  map[string]attempt
}

type attempt struct {
	ans *answer
	at  time.Time
}

// attemptKey is the queue and attempt id of a FIFO ReceiveMessage request
// body; "" when it names none or the queue is not FIFO.
func attemptKey(body []byte) string {
	var in struct{ QueueUrl, ReceiveRequestAttemptId string }
	if json.Unmarshal(body, &in) != nil || in.ReceiveRequestAttemptId == "" || !strings.HasSuffix(in.QueueUrl, ".fifo") {
		return ""
	}
	return in.QueueUrl + "\x00" + in.ReceiveRequestAttemptId
}

// get is the answer an earlier receive with body's attempt id gave within
// attemptWindow, or nil.
func (a *attempts) get(body []byte) *answer {
	key := attemptKey(body)
	if key == "" {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	at, ok := a.m[key]
	if !ok || time.Since(at.at) > attemptWindow {
		return nil
	}
	return at.ans
}

// put remembers ans, an answer with messages, for body's attempt id, and
// forgets attempts older than attemptWindow.
func (a *attempts) put(body []byte, ans *answer) {
	key := attemptKey(body)
	if key == "" {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[string]attempt{}
	}
	for k, at := range a.m {
		if time.Since(at.at) > attemptWindow {
			delete(a.m, k)
		}
	}
	a.m[key] = attempt{ans: ans, at: time.Now()}
}
