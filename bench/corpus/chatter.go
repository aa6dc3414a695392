package corpus

import (
	"fmt"
	"strings"
)

// fillSlots replaces each {name} in t with a random choice of slots[name].
func (w *writer) fillSlots(t string, slots map[string][]string) string {
	for {
		i := strings.IndexByte(t, '{')
		if i < 0 {
			return t
		}
		j := strings.IndexByte(t[i:], '}') + i
		opts := slots[t[i+1:j]]
		t = t[:i] + opts[w.r.IntN(len(opts))] + t[j+1:]
	}
}

var casualSlots = map[string][]string{
	"pet":      {"dog", "puppy", "cat", "rabbit", "parrot"},
	"person":   {"my cousin", "my neighbour", "a colleague", "my brother", "my aunt", "an old school friend", "my boss"},
	"class":    {"yoga class", "cooking course", "evening class", "dance lesson", "photography course", "climbing session"},
	"day":      {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"},
	"event":    {"wedding", "birthday party", "baby shower", "graduation", "housewarming", "anniversary dinner"},
	"place":    {"Lisbon", "Berlin", "the coast", "the mountains", "Rome", "a tiny village", "Porto", "Kyoto"},
	"run":      {"5k", "10k", "half marathon", "trail run", "marathon on TV", "park run"},
	"job":      {"new project", "job interview", "team meeting", "performance review", "office move", "first day"},
	"colour":   {"green", "blue", "yellow", "white", "grey", "terracotta"},
	"room":     {"bathroom", "living room", "bedroom", "hallway", "balcony", "kitchen"},
	"book":     {"a crime novel", "a memoir", "a fantasy series", "a cookbook", "a poetry collection", "a biography"},
	"lang":     {"Spanish", "Italian", "French", "German", "Portuguese", "Japanese"},
	"food":     {"curry", "pizza", "ramen", "tacos", "lasagne", "a peanut stew", "sushi"},
	"feeling":  {"so happy about it", "a bit nervous", "honestly exhausted", "weirdly calm", "really excited", "not sure yet"},
	"time":     {"last weekend", "yesterday", "this morning", "a few days ago", "on Friday", "last night"},
	"comment":  {"Anyway, how are you?", "Life is busy haha.", "What do you think?", "Crazy, right?", "Tell me your news!", "Such a week."},
	"distance": {"two hours", "forty minutes", "an hour and a half", "three hours"},
}

var casualChatter = []string{
	"{person} got a {pet} {time} and now sends me photos every day, I'm {feeling}.",
	"The {pet} next door barked all night again, I barely slept. {comment}",
	"I went to a {class} with {person} {time}, it was every {day} for a month, {feeling}.",
	"{person} is planning a {event} in {place} and asked if I could help with the music. {comment}",
	"Watched the {run} {time}, I don't know how people run that long. {comment}",
	"{person} has a {job} on {day} and is {feeling}. {comment}",
	"We were thinking of painting the {room} {colour} but we can't decide. {comment}",
	"I'm reading {book} that {person} gave me, it's okay so far.",
	"{person} is learning {lang} and keeps practising on me, which is funny.",
	"We ordered {food} {time} and ate way too much. {comment}",
	"{person} is moving to a new flat near {place}, it's {distance} away from here.",
	"The {event} of {person} was {time}, lovely day but so long. {comment}",
	"I found old photos from our trip to {place}, we looked so young!",
	"My {class} got cancelled on {day} so I just stayed home with tea.",
	"Do you remember the {food} place we went to in {place}? It closed down.",
	"Thinking about a weekend in {place}, the train takes {distance}. {comment}",
	"{person} asked me to look after their {pet} while they're in {place}.",
	"I tried running a {run} {time}, my legs still hurt, {feeling}.",
	"{person} told me the {event} will be in {place}, everybody's invited.",
	"Our {room} is a mess since the {job}, I'll tidy up on {day}.",
}

var shopSlots = map[string][]string{
	"product": products,
	"unit":    units,
	"day":     weekdays,
	"month":   months,
	"pct":     {"5", "10", "15", "20"},
	"n":       {"2", "3", "4", "6", "8", "10", "12"},
}

var shopChatter = []string{
	"This week we have a promotion on {product}: {pct}% off per crate until {day}. Orders placed before 14:00 are delivered the next working day.",
	"Just so you know, our warehouse is doing inventory on {day}, so deliveries on that day may come in the afternoon.",
	"Our guests keep asking for {product}; the {product} sells slower, so we might change the order quantities next month.",
	"Reminder: empty kegs and crates can be returned with the driver at every delivery, the deposit is credited on the next invoice.",
	"From {month} on the price list changes slightly for {product}; you will receive the new pricelist by email.",
	"We are closed on public holidays; orders for the day after a holiday should be placed two days before.",
	"The football season starts in {month}, we expect to need a lot more {product} on match days.",
	"Our driver said the road in front of your bar is being repaired, could he deliver through the back entrance on {day}?",
	"Your account shows {n} open deliveries at the moment, everything is on schedule.",
	"We now also offer {product} in {unit}; ask me if you want to try some with your next order.",
	"Payments by bank transfer take one or two working days to show in our system, no need to worry.",
	"The invoices for last month went out by email on {day}, tell me if one is missing.",
	"We had a technical problem with the order portal on {day}, so please send orders by chat for now.",
	"Last {month} we sold out of {product} twice, so I ordered extra {unit} for the summer.",
}

func casualLine(w *writer) string {
	return w.fillSlots(casualChatter[w.r.IntN(len(casualChatter))], casualSlots)
}
func shopLine(w *writer) string {
	return w.fillSlots(shopChatter[w.r.IntN(len(shopChatter))], shopSlots)
}

var _ = fmt.Sprint
