// Package workload is the benchmark's data: chat ids, the 50 older messages
// each chat holds before a run (its seed), and the user events of a run. Every
// text is made from a fixed seed, so two processes (the harness and a
// benchmark worker with its in-memory store) make the same chats, and two
// runs make the same events.
package workload

import (
	"bufio"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/chatprep/chatprep/internal/event"
)

// SeedBase is the sent_at of every chat's first seed message; seed message i
// is sent i minutes later. Events are sent after EventBase, well after every
// seed message.
var (
	SeedBase  = time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	EventBase = time.Date(2026, 2, 1, 8, 0, 0, 0, time.UTC)
)

// SeedMessages is how many messages each chat holds before a run.
const SeedMessages = 50

// ChatID is the id of chat i (0-based).
func ChatID(i int) string { return fmt.Sprintf("bench:chat-%04d", i) }

// words is the vocabulary: everyday chat and order words first (the most
// frequent ones, as in real messages), then made-up product and place
// names. Texts draw from it with a Zipf distribution, so a relevance search
// meets both long posting lists ("the", "order") and rare terms.
var words = func() []string {
	common := strings.Fields(`the a to and i you is for of my it in we can on your please
	order delivery invoice thanks hello when will be have this with what at our do not
	is there how much price stock quote quotation send need today tomorrow week address
	change new keg crate bottle beer pilsner lager ale wheat pale dark party event
	payment paid due reminder discount customer account number reference warehouse
	pickup available cancel confirm date time friday monday shipping cost total
	hi thank could would like get me us an are from about still yet did receive
	received missing wrong item items product products return refund open hours`)
	r := rand.New(rand.NewPCG(6, 1))
	const letters = "abcdefghijklmnopqrstuvwxyz"
	out := common
	for len(out) < 3000 {
		b := make([]byte, 4+r.IntN(7))
		for i := range b {
			b[i] = letters[r.IntN(len(letters))]
		}
		out = append(out, string(b))
	}
	return out
}()

// text is a message of 8 to 32 words; now and then (one in six) it names an
// Odoo document, as the odoo_erp route expects.
func text(r *rand.Rand) string {
	n := 8 + r.IntN(25)
	parts := make([]string, 0, n+2)
	for range n {
		// Zipf-like: rank ~ exp(u * ln(len)), so low ranks are frequent.
		rank := int(math.Exp(r.Float64()*math.Log(float64(len(words))))) - 1
		parts = append(parts, words[min(rank, len(words)-1)])
	}
	if r.IntN(6) == 0 {
		parts = append(parts, "order", fmt.Sprintf("S%05d", r.IntN(100000)))
	}
	return strings.Join(parts, " ")
}

func rngFor(s string, stream uint64) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(s))
	return rand.New(rand.NewPCG(h.Sum64(), stream))
}

// Seed returns chat's SeedMessages older messages, oldest first, user and
// assistant in turn.
func Seed(chat string) []event.Event { return SeedN(chat, SeedMessages) }

// SeedN returns n older messages of chat, oldest first, user and assistant
// in turn, one minute apart from SeedBase.
func SeedN(chat string, n int) []event.Event {
	r := rngFor(chat, 1)
	out := make([]event.Event, n)
	for i := range out {
		role := event.RoleUser
		if i%2 == 1 {
			role = event.RoleAssistant
		}
		out[i] = event.Event{
			EventID: fmt.Sprintf("seed-%04d", i), Type: event.TypeMessage, ChatID: chat, Role: role,
			Text: text(r), SentAt: SeedBase.Add(time.Duration(i) * time.Minute), Channel: "web",
		}
	}
	return out
}

// Event is one user event of a run and its body as sent to the input queue.
type Event struct {
	event.Event
	Body string
}

// Events returns perChat user events for each of chats chats, round by
// round (every chat's first event, then every chat's second, …), so that
// sending them in this order keeps each chat's order. Event ids start with
// prefix; a chat's events are one second apart from start on.
func Events(prefix string, chats, perChat int, start time.Time) []Event {
	ids := make([]string, chats)
	for c := range ids {
		ids[c] = ChatID(c)
	}
	return EventsFor(prefix, ids, perChat, start)
}

// EventsFor is Events for the chats named.
func EventsFor(prefix string, chats []string, perChat int, start time.Time) []Event {
	out := make([]Event, 0, len(chats)*perChat)
	rs := make([]*rand.Rand, len(chats))
	for c, chat := range chats {
		rs[c] = rngFor(prefix+chat, 2)
	}
	for round := range perChat {
		for c, chat := range chats {
			ev := event.Event{
				EventID: fmt.Sprintf("%s-%04d-%03d", prefix, c, round), Type: event.TypeMessage,
				ChatID: chat, Role: event.RoleUser, Text: text(rs[c]),
				SentAt: start.Add(time.Duration(round) * time.Second), Channel: "web",
			}
			out = append(out, Event{Event: ev, Body: Body(ev)})
		}
	}
	return out
}

// Body is ev as a chat event body (CONTRACT.md).
func Body(ev event.Event) string {
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err) // an Event of strings and a time always encodes
	}
	return string(b)
}

// FillerPerChat is how many messages each chat of the filler history
// holds: the scale rows grow the collection with many chats of this size.
const FillerPerChat = 100

// FillerBase is the sent_at of every filler chat's first message (message
// m is sent m minutes later): before SeedBase, so a filler message is never
// newer than the events of a run.
var FillerBase = time.Date(2025, 6, 2, 8, 0, 0, 0, time.UTC)

// FillerChatID is the id of filler chat c, never one of ChatID's.
func FillerChatID(c int) string { return fmt.Sprintf("bench:fill-%06d", c) }

// Filler returns message i (from 0) of the filler history as a chat event:
// chat i/FillerPerChat, user and assistant in turn, texts drawn like the
// seed's. The same i always gives the same message, so a history of any
// length can be generated, or continued, without keeping it.
func Filler(i int) event.Event {
	c, m := i/FillerPerChat, i%FillerPerChat
	chat := FillerChatID(c)
	role := event.RoleUser
	if m%2 == 1 {
		role = event.RoleAssistant
	}
	return event.Event{
		EventID: fmt.Sprintf("fill-%03d", m), Type: event.TypeMessage, ChatID: chat, Role: role,
		Text: text(rngFor(chat, 3+uint64(m))), SentAt: FillerBase.Add(time.Duration(m) * time.Minute), Channel: "web",
	}
}

// WriteFiller writes filler messages from, from+1, …, to-1 to w as JSON
// lines in the chat event format, as `worker import` reads them.
func WriteFiller(w io.Writer, from, to int) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	for i := from; i < to; i++ {
		bw.WriteString(Body(Filler(i)))
		if err := bw.WriteByte('\n'); err != nil {
			return err
		}
	}
	return bw.Flush()
}
