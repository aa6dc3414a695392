package kumofix

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/chatprep/chatprep/internal/config"
)

// DedupWindow is how long SQS remembers a FIFO queue's deduplication ids: a
// message sent again with the same id within it is accepted and dropped.
const DedupWindow = 5 * time.Minute

// dedup is SQS's FIFO deduplication as the proxy keeps it. kumo forgets an
// id as soon as its message is deleted, so a result published again for a
// redelivered event (same event_id) reached the reader twice through kumo,
// never through SQS. The proxy answers such a send itself, as SQS does: the
// first copy's MessageId, the MD5 of the body just sent, nothing queued.
// Only explicit MessageDeduplicationIds are handled (chatprep sets them on
// every FIFO send); content-based deduplication is left to kumo.
type dedup struct {
	mu     sync.Mutex
	ids    map[string]firstSend // queue name + "\x00" + deduplication id
	pruned time.Time
}

type firstSend struct {
	messageID, sequence string
	at                  time.Time
}

func dedupKey(queueURL, id string) string {
	name := config.QueueName(queueURL)
	if id == "" || !config.IsFIFO(name) {
		return ""
	}
	return name + "\x00" + id
}

// seen returns the first send of key within the window.
func (d *dedup) seen(key string, now time.Time) (firstSend, bool) {
	if key == "" {
		return firstSend{}, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	s, ok := d.ids[key]
	return s, ok && now.Sub(s.at) < DedupWindow
}

// remember records the first send of key (a later one within the window
// does not move its start, as at SQS).
func (d *dedup) remember(key string, s firstSend) {
	if key == "" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ids == nil {
		d.ids = map[string]firstSend{}
	}
	if old, ok := d.ids[key]; !ok || s.at.Sub(old.at) >= DedupWindow {
		d.ids[key] = s
	}
	if s.at.Sub(d.pruned) > time.Minute {
		for k, v := range d.ids {
			if s.at.Sub(v.at) >= DedupWindow {
				delete(d.ids, k)
			}
		}
		d.pruned = s.at
	}
}

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func jsonAnswer(v any) (*answer, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("Content-Type", "application/x-amz-json-1.0")
	return &answer{StatusCode: http.StatusOK, Header: h, body: b}, nil
}

// sendOne is SendMessage with SQS's deduplication window.
func (p *Proxy) sendOne(r *http.Request, body []byte) (*answer, error) {
	var in struct{ QueueUrl, MessageBody, MessageDeduplicationId string }
	if json.Unmarshal(body, &in) != nil {
		return p.forward(r, body)
	}
	key := dedupKey(in.QueueUrl, in.MessageDeduplicationId)
	now := time.Now()
	if s, ok := p.dedup.seen(key, now); ok {
		return jsonAnswer(map[string]string{"MessageId": s.messageID, "MD5OfMessageBody": md5Hex(in.MessageBody), "SequenceNumber": s.sequence})
	}
	resp, err := p.forward(r, body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	var out struct{ MessageId, SequenceNumber string }
	if json.Unmarshal(resp.body, &out) == nil && out.MessageId != "" {
		p.dedup.remember(key, firstSend{out.MessageId, out.SequenceNumber, now})
	}
	return resp, nil
}

// batchEntry is what the proxy reads of a SendMessageBatch entry.
type batchEntry struct{ Id, MessageBody, MessageDeduplicationId string }

// batchSuccess is a SendMessageBatch answer's successful entry.
type batchSuccess struct {
	Id               string
	MessageId        string
	MD5OfMessageBody string
	SequenceNumber   string `json:",omitempty"`
}

// sendBatch is SendMessageBatch with SQS's deduplication window: the
// entries already sent within it are answered here, the others forwarded.
func (p *Proxy) sendBatch(r *http.Request, body []byte) (*answer, error) {
	var in map[string]json.RawMessage
	var queueURL string
	var raw []json.RawMessage
	if json.Unmarshal(body, &in) != nil || json.Unmarshal(in["QueueUrl"], &queueURL) != nil || json.Unmarshal(in["Entries"], &raw) != nil {
		return p.forward(r, body)
	}
	now := time.Now()
	var dups []batchSuccess
	var keep []json.RawMessage
	keys := map[string]string{} // entry id → deduplication key
	for _, e := range raw {
		var be batchEntry
		if json.Unmarshal(e, &be) != nil {
			return p.forward(r, body)
		}
		key := dedupKey(queueURL, be.MessageDeduplicationId)
		if s, ok := p.dedup.seen(key, now); ok {
			dups = append(dups, batchSuccess{be.Id, s.messageID, md5Hex(be.MessageBody), s.sequence})
			continue
		}
		keys[be.Id] = key
		keep = append(keep, e)
	}
	out := struct {
		Successful []batchSuccess
		Failed     []json.RawMessage
	}{Successful: []batchSuccess{}, Failed: []json.RawMessage{}}
	if len(keep) > 0 {
		fwd := body
		if len(dups) > 0 {
			var err error
			if fwd, err = withEntries(in, keep); err != nil {
				return nil, err
			}
		}
		resp, err := p.forward(r, fwd)
		if err != nil || resp.StatusCode != http.StatusOK {
			return resp, err
		}
		if len(dups) == 0 {
			p.rememberBatchIDs(resp.body, keys, now)
			return resp, nil
		}
		if err := json.Unmarshal(resp.body, &out); err != nil {
			return resp, nil // not understood: kumo's answer as it is
		}
		p.rememberBatchIDs(resp.body, keys, now)
	}
	out.Successful = append(out.Successful, dups...)
	return jsonAnswer(out)
}

// withEntries is a SendMessageBatch request in with only entries.
func withEntries(in map[string]json.RawMessage, entries []json.RawMessage) ([]byte, error) {
	b, err := json.Marshal(entries)
	if err != nil {
		return nil, err
	}
	in["Entries"] = b
	return json.Marshal(in)
}

func (p *Proxy) rememberBatchIDs(resp []byte, keys map[string]string, now time.Time) {
	var out struct{ Successful []batchSuccess }
	if json.Unmarshal(resp, &out) != nil {
		return
	}
	for _, s := range out.Successful {
		p.dedup.remember(keys[s.Id], firstSend{s.MessageId, s.SequenceNumber, now})
	}
}
