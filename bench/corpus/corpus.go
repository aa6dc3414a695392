// Package corpus is chatprep's labelled corpus for measuring what reaches
// the context: long chats, each with questions asked at its end and, for
// each question, the event ids of the earlier messages that hold its answer
// (the evidence). Everything is generated from fixed seeds: the same corpus
// on every machine and in every run, and nothing to download.
//
// Three kinds of chats, so that what is tuned on them is not fitted to one
// kind of conversation:
//
//   - shop: a customer of a drinks wholesaler and its assistant over months:
//     orders (S00042), deliveries (WH/OUT/00005), invoices (INV/2026/00017),
//     purchase orders, payment terms, opening hours, address changes,
//     personal details given once ("our new warehouse manager is Petra"),
//     product questions, and small talk between them;
//   - casual: two friends chatting over months (the user and the assistant
//     roles are the two people): pets, classes, trips, family events, jobs,
//     told once in passing, between sessions of everyday chit-chat;
//   - friends: two people keeping in touch over months in 20 to 30 long
//     sessions days or weeks apart, every turn a few sentences (15 to 45
//     words, as people write to a friend), each telling the other about
//     their life once (a class, a pet, a trip, a new job, what they like);
//     questions name either of them in the third person and ask what
//     happened, when it happened (the answer is the message's date and its
//     "yesterday"), the same in other words, or what was told bit by bit
//     over several sessions (see friends.go).
//
// Questions are paraphrased (other words than the evidence's: "how long do
// we have to pay" for "30 days net"), some are split into a burst of
// fragments, some follow up on the last exchange, and some need two
// messages. Facts repeat with other values (many orders, many invoices),
// so a question's words also match wrong messages. Each question is meant
// to be asked in its own copy of its chat (Copy), after every message.
//
// Half of the chats are held out (Chat.Holdout): tune on the others, report
// both.
package corpus

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/chatprep/chatprep/internal/event"
)

// Question is one question asked at the end of a chat.
type Question struct {
	ID       string   // unique in the corpus
	Kind     string   // what it asks about (for the per-kind table)
	Burst    []string // fragments sent just before Text, as user messages (a burst); may be empty
	Text     string   // the question itself: the event whose result is measured
	Evidence []string // event ids of the chat's messages that hold the answer
}

// Chat is one conversation and its questions.
type Chat struct {
	ID        string
	Kind      string // "shop", "casual" or "friends"
	Holdout   bool
	Messages  []event.Event // oldest first, both roles
	Questions []Question
}

// Base is when the first chat starts.
var Base = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// Generate returns the corpus: shop, casual and friends chats in turn, n
// of each, every second one of each kind held out. Each kind has its own
// random source: adding a kind changed none of the others' chats.
func Generate(n int) []Chat {
	var out []Chat
	for i := range n {
		out = append(out, shopChat(i), casualChat(i), friendsChat(i))
	}
	return out
}

// Default is the corpus the bench measures: 12 chats of each kind.
func Default() []Chat { return Generate(12) }

// CopyID is the chat of question q's copy of c in the bench's collection
// (row 7 stores every question in a copy of its own).
func CopyID(c Chat, q Question) string { return c.ID + "." + q.ID }

// Copy returns the events to store for question q of c, in order, in a
// chat of its own (chatID), and the event to ask: the chat's messages, then
// q's burst fragments (user messages 20 s apart), then q.Text 20 s after
// the last. Event ids stay those of c, so the evidence ids hold.
func Copy(c Chat, q Question, chatID string) (stored []event.Event, ask event.Event) {
	for _, m := range c.Messages {
		m.ChatID = chatID
		stored = append(stored, m)
	}
	at := c.Messages[len(c.Messages)-1].SentAt.Add(3 * time.Minute)
	for i, f := range q.Burst {
		stored = append(stored, event.Event{EventID: fmt.Sprintf("%s-b%d", q.ID, i), Type: event.TypeMessage,
			ChatID: chatID, Role: event.RoleUser, Text: f, SentAt: at})
		at = at.Add(20 * time.Second)
	}
	ask = event.Event{EventID: q.ID, Type: event.TypeMessage, ChatID: chatID, Role: event.RoleUser, Text: q.Text, SentAt: at}
	return stored, ask
}

// writer builds one chat: messages in sessions, each session a day or more
// after the last.
type writer struct {
	c   Chat
	r   *rand.Rand
	now time.Time
	seq int
	// chatter, when set, makes a longer line of small talk on the
	// chat's recurring topics (the words its questions use too).
	chatter func(*writer) string
}

func newWriter(kind string, i int) *writer {
	w := &writer{
		c: Chat{ID: fmt.Sprintf("corpus:%s-%02d", kind, i), Kind: kind, Holdout: i%2 == 1},
		r: rand.New(rand.NewPCG(uint64(i)+1, map[string]uint64{"shop": 17, "casual": 29, "friends": 41}[kind])),
	}
	w.now = Base.Add(time.Duration(i) * 7 * time.Hour)
	return w
}

// say adds a message and returns its event id.
func (w *writer) say(role event.Role, text string) string {
	w.seq++
	id := fmt.Sprintf("%s-m%04d", strings.TrimPrefix(w.c.ID, "corpus:"), w.seq)
	w.now = w.now.Add(time.Duration(20+w.r.IntN(160)) * time.Second)
	w.c.Messages = append(w.c.Messages, event.Event{EventID: id, Type: event.TypeMessage, ChatID: w.c.ID,
		Role: role, Text: text, SentAt: w.now, Channel: "whatsapp"})
	return id
}

func (w *writer) user(text string) string      { return w.say(event.RoleUser, text) }
func (w *writer) assistant(text string) string { return w.say(event.RoleAssistant, text) }

// session starts a new conversation: hours to days after the last one.
func (w *writer) session() {
	w.now = w.now.Add(time.Duration(6+w.r.IntN(60)) * time.Hour)
}

func (w *writer) ask(kind, text string, evidence ...string) {
	w.c.Questions = append(w.c.Questions, Question{
		ID: fmt.Sprintf("%s-q%02d", strings.TrimPrefix(w.c.ID, "corpus:"), len(w.c.Questions)), Kind: kind, Text: text, Evidence: evidence})
}

func (w *writer) pick(options ...string) string { return options[w.r.IntN(len(options))] }

// burstSome makes about one question in n (not a follow-up) come as a
// burst: a fragment of first, one of second, then the question.
func (w *writer) burstSome(n int, first, second []string) {
	for qi := range w.c.Questions {
		q := &w.c.Questions[qi]
		if w.r.IntN(n) == 0 && q.Kind != "follow_up" {
			q.Burst = []string{w.pick(first...), w.pick(second...)}
		}
	}
}

// fill adds n messages of small talk from bank, alternating roles: each one
// to three of its sentences, and now and then a longer line of chatter.
func (w *writer) fill(bank []string, n int) {
	role := event.RoleUser
	for range n {
		parts := []string{bank[w.r.IntN(len(bank))]}
		for w.r.IntN(3) == 0 && len(parts) < 3 {
			parts = append(parts, bank[w.r.IntN(len(bank))])
		}
		if w.chatter != nil && w.r.IntN(3) == 0 {
			parts = append(parts, w.chatter(w))
		}
		w.say(role, strings.Join(parts, " "))
		if role == event.RoleUser {
			role = event.RoleAssistant
		} else {
			role = event.RoleUser
		}
	}
}
