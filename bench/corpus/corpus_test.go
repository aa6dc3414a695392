package corpus

import (
	"github.com/chatprep/chatprep/internal/terms"
	"reflect"
	"strings"
	"testing"
)

// TestCorpus: the corpus is the same every time; every question's evidence
// is messages of its chat; chats are long, in time order, with valid ids;
// half of them are held out; the copy of a question is its chat, then its
// burst, then the question, in time order.
func TestCorpus(t *testing.T) {
	t.Parallel()
	a, b := Default(), Default()
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two generations differ: the corpus is not deterministic")
	}
	held, questions := 0, 0
	for _, c := range a {
		if c.Holdout {
			held++
		}
		if len(c.Messages) < 200 {
			t.Errorf("%s: %d messages, want a long chat", c.ID, len(c.Messages))
		}
		ids := map[string]bool{}
		for i, m := range c.Messages {
			if i > 0 && m.SentAt.Before(c.Messages[i-1].SentAt) {
				t.Fatalf("%s: %s sent before the message before it", c.ID, m.EventID)
			}
			if ids[m.EventID] {
				t.Fatalf("%s: %s twice", c.ID, m.EventID)
			}
			ids[m.EventID] = true
		}
		for _, q := range c.Questions {
			questions++
			if len(q.Evidence) == 0 || q.Text == "" {
				t.Errorf("%s: no evidence or no text", q.ID)
			}
			for _, e := range q.Evidence {
				if !ids[e] {
					t.Errorf("%s: evidence %s is not a message of %s", q.ID, e, c.ID)
				}
			}
			stored, ask := Copy(c, q, "copy:"+q.ID)
			if len(stored) != len(c.Messages)+len(q.Burst) || ask.EventID != q.ID || ask.ChatID != "copy:"+q.ID {
				t.Errorf("%s: copy of %d messages asking %+v", q.ID, len(stored), ask)
			}
			if last := stored[len(stored)-1]; !ask.SentAt.After(last.SentAt) || last.ChatID != ask.ChatID {
				t.Errorf("%s: the question is not after its copy's last message", q.ID)
			}
		}
	}
	if held != len(a)/2 || questions < 300 {
		t.Errorf("%d of %d chats held out, %d questions", held, len(a), questions)
	}
}

// TestFriendsParaphrases: a friends_paraphrase question shares no term
// (terms.Index: stems without stop words) with its telling, whatever the
// details and the time phrase: only small talk around it, or the names,
// may match it.
func TestFriendsParaphrases(t *testing.T) {
	t.Parallel()
	for i, f := range lifeFacts {
		for _, opts := range f.opts {
			for _, when := range whenPhrases {
				vals := map[string]string{"name": "Xname", "other": "Yname", "when": when, "When": when}
				for k, v := range opts {
					vals[k] = v
				}
				fill := func(s string) string {
					for k, v := range vals {
						s = strings.ReplaceAll(s, "{"+k+"}", v)
					}
					return s
				}
				told := map[string]bool{}
				for _, say := range f.say {
					for _, w := range terms.Index(fill(say)) {
						told[w] = true
					}
				}
				for _, q := range f.other {
					for _, w := range terms.Index(fill(q)) {
						// The names, and the s of a possessive, are in many messages.
						if told[w] && w != "xname" && w != "yname" && w != "s" {
							t.Errorf("fact %d: %q shares %q with its telling", i, fill(q), w)
						}
					}
				}
			}
		}
	}
}
