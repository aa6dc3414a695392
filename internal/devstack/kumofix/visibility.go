package kumofix

import (
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"github.com/chatprep/chatprep/internal/config"
)

// Queue counts as SQS gives them. kumo moves a message whose visibility
// timeout ended back among the queue's messages only when the queue is next
// received from; until then GetQueueAttributes counts it in
// ApproximateNumberOfMessagesNotVisible, not in ApproximateNumberOfMessages.
// So right after `worker results` or `worker dlq list` gave their messages
// back (visibility 0), kumo said the queue held none. The proxy remembers
// each message given back early (a ChangeMessageVisibility that succeeded),
// until it is deleted or the queue is received from, and counts those whose
// visibility ended as SQS does.
type released struct {
	mu      sync.Mutex
	byQueue map[string]map[string]time.Time // queue name → receipt handle → visible again at
}

// set records that the message of receipt is visible again at.
func (v *released) set(queue, receipt string, at time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.byQueue == nil {
		v.byQueue = map[string]map[string]time.Time{}
	}
	if v.byQueue[queue] == nil {
		v.byQueue[queue] = map[string]time.Time{}
	}
	v.byQueue[queue][receipt] = at
}

// drop forgets the message of receipt (deleted), or every message of the
// queue when receipt is "" (purged).
func (v *released) drop(queue, receipt string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if receipt == "" {
		delete(v.byQueue, queue)
		return
	}
	delete(v.byQueue[queue], receipt)
}

// received forgets the messages kumo took back into the queue when it was
// received from at before: those visible again by then.
func (v *released) received(queue string, before time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for r, at := range v.byQueue[queue] {
		if at.Before(before) {
			delete(v.byQueue[queue], r)
		}
	}
}

// visible is how many of the queue's messages kumo counts as not visible
// though their visibility ended.
func (v *released) visible(queue string, now time.Time) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for _, at := range v.byQueue[queue] {
		if !at.After(now) {
			n++
		}
	}
	return n
}

// track follows a call that succeeded, req and resp its JSON: visibility
// changes, deletes and purges.
func (v *released) track(api string, req, resp []byte, now time.Time) {
	var in struct {
		QueueUrl, ReceiptHandle string
		VisibilityTimeout       int
		Entries                 []struct {
			Id, ReceiptHandle string
			VisibilityTimeout int
		}
	}
	var out struct{ Successful []struct{ Id string } }
	if json.Unmarshal(req, &in) != nil {
		return
	}
	q := config.QueueName(in.QueueUrl)
	ok := map[string]bool{}
	if api == "SQS.ChangeMessageVisibilityBatch" || api == "SQS.DeleteMessageBatch" {
		if json.Unmarshal(resp, &out) != nil {
			return
		}
		for _, s := range out.Successful {
			ok[s.Id] = true
		}
	}
	switch api {
	case "SQS.ChangeMessageVisibility":
		v.set(q, in.ReceiptHandle, now.Add(time.Duration(in.VisibilityTimeout)*time.Second))
	case "SQS.ChangeMessageVisibilityBatch":
		for _, e := range in.Entries {
			if ok[e.Id] {
				v.set(q, e.ReceiptHandle, now.Add(time.Duration(e.VisibilityTimeout)*time.Second))
			}
		}
	case "SQS.DeleteMessage":
		v.drop(q, in.ReceiptHandle)
	case "SQS.DeleteMessageBatch":
		for _, e := range in.Entries {
			if ok[e.Id] {
				v.drop(q, e.ReceiptHandle)
			}
		}
	case "SQS.PurgeQueue", "SQS.DeleteQueue":
		v.drop(q, "")
	}
}

// counts corrects a GetQueueAttributes answer (req its request): the
// messages whose visibility ended count as visible, as at SQS.
func (v *released) counts(req, resp []byte, now time.Time) []byte {
	var in struct{ QueueUrl string }
	var out struct{ Attributes map[string]string }
	if json.Unmarshal(req, &in) != nil || json.Unmarshal(resp, &out) != nil {
		return resp
	}
	n := v.visible(config.QueueName(in.QueueUrl), now)
	if n == 0 {
		return resp
	}
	shift := func(k string, d int) {
		if s, ok := out.Attributes[k]; ok {
			if c, err := strconv.Atoi(s); err == nil {
				out.Attributes[k] = strconv.Itoa(max(c+d, 0))
			}
		}
	}
	shift("ApproximateNumberOfMessages", n)
	shift("ApproximateNumberOfMessagesNotVisible", -n)
	b, err := json.Marshal(out)
	if err != nil {
		return resp
	}
	return b
}
