package corpus

import (
	"strings"
	"time"

	"github.com/chatprep/chatprep/internal/event"
)

// The friends kind: two people who keep in touch over months, in long
// sessions days or weeks apart, each turn a few sentences (15 to 45 words),
// the way people write to a friend rather than to a shop. Each tells the
// other what happened in their life: a class, a trip, a pet, a new job, a
// concert, what they like to eat. Questions about either of them come at
// the end, naming them in the third person, as someone reading the chat
// later would ask: a fact ("What breed is Nadia's puppy?"), when it
// happened ("When did Nadia adopt the puppy?" — the answer is the date the
// message was sent, with its "yesterday" or "last weekend"), the same in
// other words than the evidence's ("What did Nadia bring home from the
// animal rescue?"), and things told bit by bit in several sessions ("Which
// places has Tom travelled to?"). Both people may tell the same kind of
// story (both went to a concert), so a question's words also match the
// other's; names are in many turns, since friends greet each other by name.

// friend is one of the two people of a friends chat.
type friend struct {
	name string
	role event.Role
}

// lifeFact is something one person tells once: the telling, the other's
// echo of it (sometimes), a line the teller may add, and the questions it
// answers. Every text may hold {slot}s from one of opts (chosen once per
// telling, so the questions name what was told), {name} (the teller),
// {other} (the listener), {when} and {When} (a time phrase).
type lifeFact struct {
	opts []map[string]string
	say  []string // the telling: the evidence
	echo []string // the listener's first sentence, sometimes
	more []string // the teller's next line, sometimes
	ask  []string // a fact or a preference (kind friends_fact or friends_pref)
	pref bool     // ask is about a preference
	when []string // when it happened (friends_temporal)
	sad  bool     // bad news: the listener is sorry, not happy
	// other asks about the fact in words the telling does not use
	// (friends_paraphrase): no lexical search finds it.
	other []string
}

// whenPhrases are the time phrases of a telling.
var whenPhrases = []string{"yesterday", "last weekend", "on Saturday", "last week", "a few days ago", "this morning",
	"last Friday", "two weeks ago", "on Sunday afternoon"}

var lifeFacts = []lifeFact{
	{ // a workshop
		opts: []map[string]string{
			{"class": "pottery", "thing": "a wonky little bowl", "para": "ceramics"},
			{"class": "watercolour painting", "thing": "a picture of the harbour at dusk", "para": "art"},
			{"class": "candle making", "thing": "three lavender candles", "para": "crafts"},
			{"class": "woodworking", "thing": "a small oak stool", "para": "carpentry"},
		},
		say: []string{"Guess what, {other}? {When} I finally went to that {class} workshop with my sister. I made {thing} and I'm ridiculously proud of it.",
			"{When} I tried a {class} workshop at the community centre, just for fun. I came home with {thing}, which is not bad for a beginner!"},
		echo:  []string{"A {class} workshop, how fun!", "{class}? That's so you."},
		more:  []string{"It was so calming, three hours went by like nothing. I'm thinking of signing up for the full course in spring."},
		ask:   []string{"What did {name} make at the {class} workshop?"},
		when:  []string{"When did {name} go to the {class} workshop?"},
		other: []string{"When did {name} get into {para}?"},
	},
	{ // a pet
		opts: []map[string]string{
			{"pet": "puppy", "pname": "Biscuit", "breed": "beagle", "para": "animal"},
			{"pet": "kitten", "pname": "Pepper", "breed": "tabby", "para": "animal"},
			{"pet": "puppy", "pname": "Luna", "breed": "border collie", "para": "animal"},
			{"pet": "rabbit", "pname": "Clover", "breed": "lop-eared", "para": "animal"},
		},
		say: []string{"We adopted a {pet} from the shelter {when}! {pname} is a little {breed} and has already taken over the whole sofa.",
			"Meet the newest member of the family: {pname}, a {breed} {pet} we brought home from the shelter {when}. Nobody in this house is getting any sleep."},
		echo:  []string{"A {pet}!! I need to meet {pname}.", "Oh my god, {pname} is such a cute name."},
		more:  []string{"The first night was chaos, honestly, but now we have a little routine going. Walks, food, naps, repeat."},
		ask:   []string{"What is the name of {name}'s {pet}?", "What breed is {name}'s {pet}?"},
		when:  []string{"When did {name} adopt the {pet}?"},
		other: []string{"What did {name} take in from the rescue centre?"},
	},
	{ // a new job
		opts: []map[string]string{
			{"job": "a junior architect", "place": "a small firm downtown"},
			{"job": "a nurse", "place": "the children's hospital"},
			{"job": "a data analyst", "place": "an insurance company"},
			{"job": "a sous-chef", "place": "an Italian restaurant on the square"},
		},
		say: []string{"Big news, {other}: I got the job! I start as {job} at {place} next month. I'm nervous but really, really excited.",
			"So the interview went well after all: they offered me the position of {job} at {place}! I said yes on the spot."},
		echo:  []string{"Congratulations!! I knew you'd get it.", "That's huge, {name}!"},
		more:  []string{"The pay is better too, and the commute is only twenty minutes. I still can't quite believe it."},
		ask:   []string{"What new job did {name} get?", "Where does {name} work now?"},
		when:  []string{"When did {name} get the new job?"},
		other: []string{"Which role was {name} hired for?"},
	},
	{ // a charity run
		opts: []map[string]string{
			{"run": "5K", "cause": "the children's hospital"},
			{"run": "10K", "cause": "the local food bank"},
			{"run": "half marathon", "cause": "cancer research"},
			{"run": "fun run", "cause": "an animal shelter"},
		},
		say: []string{"I ran a charity {run} {when} to raise money for {cause}. My legs are sore, but we raised way more than we expected!",
			"{When} I did the {run} for {cause} with a few people from work. I walked a bit at the end, no shame."},
		echo:  []string{"A {run}, wow!", "You're amazing, {name}."},
		more:  []string{"There were so many people cheering along the route, it was really moving. I might do it again next year."},
		ask:   []string{"What cause did {name} run the {run} for?"},
		when:  []string{"When did {name} run the charity {run}?"},
		other: []string{"Which fundraiser did {name} take part in?"},
	},
	{ // a trip with family
		opts: []map[string]string{
			{"city": "Lisbon", "rel": "mom"}, {"city": "Edinburgh", "rel": "brother"}, {"city": "Vienna", "rel": "grandma"},
			{"city": "Montreal", "rel": "dad"}, {"city": "Seville", "rel": "aunt"},
		},
		say: []string{"{When} I got back from a long weekend in {city} with my {rel}. We walked everywhere, ate way too much and I took about a thousand photos.",
			"Just back from {city}! My {rel} and I finally did the trip we'd been talking about for years, and it was perfect."},
		echo:  []string{"{city}! I've always wanted to go.", "Oh, how lovely, {name}."},
		more:  []string{"The old town was beautiful, all little streets and cafés. I'll show you the pictures when we see each other."},
		ask:   []string{"Who did {name} travel to {city} with?"},
		when:  []string{"When did {name} go to {city}?"},
		other: []string{"Which place did {name} visit with a relative?"},
	},
	{ // a new hobby
		opts: []map[string]string{
			{"hobby": "learning the guitar", "detail": "I can play three chords now and my neighbours hate me."},
			{"hobby": "rock climbing at the indoor gym", "detail": "My forearms have never been this sore."},
			{"hobby": "baking sourdough bread", "detail": "My starter is called Steve and he lives in the fridge."},
			{"hobby": "knitting", "detail": "I'm halfway through a very lumpy scarf."},
			{"hobby": "birdwatching", "detail": "I bought binoculars and a little notebook for it."},
		},
		say: []string{"{When} I started {hobby}! {detail} It's a nice way to switch off after work.",
			"So I have a new hobby since {when}: {hobby}. {detail}"},
		echo:  []string{"Ha, I love that.", "Look at you, {name}!"},
		more:  []string{"I do it almost every evening now. It's the only time my phone stays in the drawer."},
		ask:   []string{"What new hobby did {name} take up?"},
		when:  []string{"When did {name} start {hobby}?"},
		other: []string{"What does {name} do to unwind lately?"},
	},
	{ // camping
		opts: []map[string]string{{"where": "by the lake"}, {"where": "in the mountains"}, {"where": "at the national park"}, {"where": "on the coast"}},
		say: []string{"We went camping {where} {when}. It rained the whole first night, but watching the sunrise from the tent made it all worth it.",
			"{When} we packed the car and went camping {where}, no phones, no emails. I feel like a new person."},
		echo:  []string{"Camping {where} sounds dreamy.", "Brave of you, {name}!"},
		more:  []string{"We cooked everything on a tiny stove and it was the best food ever, obviously."},
		ask:   []string{"Where did {name} go camping?"},
		when:  []string{"When did {name} go camping?"},
		other: []string{"Where did {name} sleep under the stars?"},
	},
	{ // a child's birthday
		opts: []map[string]string{
			{"kid": "daughter", "kname": "Maya", "age": "six", "theme": "dinosaur"},
			{"kid": "son", "kname": "Leo", "age": "four", "theme": "pirate"},
			{"kid": "daughter", "kname": "Ella", "age": "eight", "theme": "space"},
			{"kid": "son", "kname": "Noah", "age": "five", "theme": "superhero"},
		},
		say: []string{"My {kid} {kname} turned {age} {when}! We threw a {theme} party in the garden and the kids ran around until they dropped.",
			"{When} was {kname}'s birthday, {age} already, can you believe it? {theme} cake, {theme} balloons, {theme} everything."},
		echo:  []string{"Happy birthday to {kname}!", "{age} already, wow."},
		more:  []string{"The cleanup took longer than the party, but seeing their faces was worth every minute."},
		ask:   []string{"How old did {name}'s {kid} turn?"},
		when:  []string{"When was {kname}'s birthday party?"},
		other: []string{"What was the theme of the celebration {name} organised for the child?"},
	},
	{ // a book
		opts: []map[string]string{{"title": "The Midnight Library"}, {"title": "Project Hail Mary"}, {"title": "Educated"}, {"title": "Little Fires Everywhere"}, {"title": "Pachinko"}},
		say: []string{"I just finished {title}, my coworker lent it to me {when}. I stayed up way too late to get to the end, it was so good.",
			"Have you read {title}? Someone at work gave it to me {when} and I've been reading it on the bus every day."},
		echo:  []string{"Oh, I've heard of {title}!", "Adding it to my list."},
		more:  []string{"The ending surprised me, I won't spoil it. I'll lend it to you next time."},
		ask:   []string{"Which book did {name} get from a coworker?"},
		other: []string{"What novel kept {name} awake at night?"},
	},
	{ // comfort food
		opts: []map[string]string{{"food": "ramen", "para": "dish"}, {"food": "my grandma's lasagne", "para": "dish"}, {"food": "mac and cheese", "para": "dish"},
			{"food": "a big bowl of pho", "para": "dish"}, {"food": "chicken curry", "para": "dish"}},
		say: []string{"Honestly, on a grey day like this nothing beats {food}. It's my ultimate comfort food, I could eat it every single week.",
			"I made {food} again tonight. Whenever I'm stressed it's the first thing I crave, it never fails."},
		echo:  []string{"Now I'm hungry, thanks.", "Ha, you and your {food}."},
		ask:   []string{"What is {name}'s favourite comfort food?"},
		pref:  true,
		other: []string{"Which meal does {name} want when feeling down?"},
	},
	{ // music while cooking
		opts: []map[string]string{{"genre": "old jazz records"}, {"genre": "80s synth-pop"}, {"genre": "classical piano"}, {"genre": "country music"}, {"genre": "K-pop"}},
		say: []string{"I always put on {genre} when I'm cooking or cleaning, it makes everything feel lighter. Weird taste, I know!",
			"Confession: my kitchen playlist is basically all {genre}. The neighbours must think I'm nuts."},
		echo:  []string{"{genre}, really? I would never have guessed.", "No judgement here."},
		ask:   []string{"What music does {name} listen to while cooking?"},
		pref:  true,
		other: []string{"What does {name} have on in the background during housework?"},
	},
	{ // volunteering
		opts: []map[string]string{{"place": "the animal shelter"}, {"place": "a food bank"}, {"place": "the library's reading club for kids"}, {"place": "a soup kitchen"}},
		say: []string{"I started volunteering at {place} on Saturday mornings {when}. It's hard work, but the people there are lovely and it feels meaningful.",
			"{When} I did my first shift as a volunteer at {place}. I'm going to do it every other Saturday from now on."},
		echo:  []string{"That's really kind of you, {name}.", "I love that you're doing that."},
		more:  []string{"Some of the regulars already know my name. It's the best part of my week, honestly."},
		ask:   []string{"Where does {name} volunteer?"},
		when:  []string{"When did {name} start volunteering?"},
		other: []string{"How does {name} give back to those in need?"},
	},
	{ // a sibling's engagement
		opts: []map[string]string{
			{"sib": "brother", "sname": "Sam", "partner": "his girlfriend Ana"},
			{"sib": "sister", "sname": "Leah", "partner": "her boyfriend Marco"},
			{"sib": "cousin", "sname": "Ravi", "partner": "his partner Jules"},
		},
		say: []string{"Family news: my {sib} {sname} got engaged to {partner} {when}! The proposal happened on a hike at sunset, so romantic.",
			"{When} {sname} called me screaming: my {sib} is engaged to {partner}! Mum is already planning the whole thing."},
		echo:  []string{"Oh, congratulations to {sname}!", "Aww, that's so sweet."},
		more:  []string{"They haven't picked a date yet, probably next summer. I'm already worried about my speech."},
		ask:   []string{"Who is {name}'s {sib} {sname} engaged to?"},
		when:  []string{"When did {sname} get engaged?"},
		other: []string{"Which relative of {name} is going to marry soon?"},
	},
	{ // moving
		opts: []map[string]string{{"home": "a small flat near the river"}, {"home": "a house with a garden outside town"}, {"home": "an apartment right downtown"}},
		say: []string{"We finally moved into {home} {when}! There are still boxes everywhere, but I love the light in the mornings.",
			"The move is done! Since {when} we live in {home}. Every muscle in my body hurts from carrying boxes."},
		echo:  []string{"Welcome home!", "Finally, {name}!"},
		more:  []string{"The kitchen is tiny but the view makes up for it. You have to come over when it's less of a mess."},
		ask:   []string{"Where did {name} move to?"},
		when:  []string{"When did {name} move?"},
		other: []string{"What kind of place is {name}'s new home?"},
	},
	{ // a talk
		opts: []map[string]string{{"topic": "climate policy"}, {"topic": "user experience design"}, {"topic": "early childhood education"}, {"topic": "renewable energy"}},
		say: []string{"{When} I gave my first talk at a conference, about {topic}. I was shaking before I started, but people asked great questions afterwards.",
			"My conference talk on {topic} was {when}. Thirty minutes on stage, and I didn't faint!"},
		echo:  []string{"I'm so proud of you.", "On stage, {name}? Wow."},
		more:  []string{"Someone from another university even asked for my slides. I'm still buzzing."},
		ask:   []string{"What was {name}'s conference talk about?"},
		when:  []string{"When did {name} give a talk at the conference?"},
		other: []string{"What subject did {name} present in public?"},
	},
	{ // a new ride
		opts: []map[string]string{{"ride": "road bike", "colour": "bright red"}, {"ride": "electric scooter", "colour": "mint green"}, {"ride": "car", "colour": "dark blue"}},
		say: []string{"I treated myself to a secondhand {ride} {when}, it's {colour}! Now I can stop waiting for the bus every morning.",
			"{When} I bought a {ride}, {colour}, barely used. Freedom!"},
		echo:  []string{"Nice, a {ride}!", "Ooh, {colour}, fancy."},
		ask:   []string{"What colour is {name}'s {ride}?"},
		when:  []string{"When did {name} buy the {ride}?"},
		other: []string{"How does {name} get around town?"},
	},
	{ // the garden
		opts: []map[string]string{{"plant": "tomatoes and basil"}, {"plant": "strawberries"}, {"plant": "sunflowers"}, {"plant": "chillies"}},
		say: []string{"I planted {plant} in the garden {when}. Fingers crossed the neighbour's cat doesn't dig everything up again!",
			"{When} I spent the whole day in the garden putting in {plant}. My back is killing me."},
		echo:  []string{"{plant}, yum.", "Green fingers, {name}!"},
		ask:   []string{"What did {name} plant in the garden?"},
		when:  []string{"When did {name} plant the {plant}?"},
		other: []string{"What is {name} growing outside?"},
	},
	{ // the driving test
		opts: []map[string]string{{"try": "second"}, {"try": "third"}, {"try": "first"}},
		say: []string{"I passed my driving test {when}, on the {try} try! The examiner even said my parallel parking was good, can you believe it?",
			"{When} I finally passed the driving test. {try} attempt, but who's counting."},
		echo:  []string{"YES! Congratulations!", "Watch out, roads."},
		ask:   []string{"On which attempt did {name} pass the driving test?"},
		when:  []string{"When did {name} pass the driving test?"},
		other: []string{"When did {name} get their licence?"},
	},
	{ // a film
		opts: []map[string]string{{"film": "a documentary about octopuses"}, {"film": "an old Hitchcock film"}, {"film": "the new Pixar movie"}, {"film": "a Korean thriller"}},
		say: []string{"We watched {film} at the cinema {when}, I can't stop thinking about it. Have you seen it yet?",
			"{When} we went to the cinema for {film}. Best evening out in ages, even the popcorn was good."},
		echo:  []string{"Ooh, was it good?", "I keep hearing about it."},
		ask:   []string{"What did {name} watch at the cinema?"},
		when:  []string{"When did {name} go to the cinema?"},
		other: []string{"What did {name} see on the big screen?"},
	},
	{ // a friend's wedding
		opts: []map[string]string{{"venue": "a vineyard in Tuscany"}, {"venue": "a barn in the countryside"}, {"venue": "a beach in Portugal"}, {"venue": "a castle in Scotland"}},
		say: []string{"I was at my college roommate's wedding {when}, at {venue}! I cried during the speeches and danced until two in the morning.",
			"{When} was my roommate's wedding at {venue}. Best party of the year, hands down."},
		echo:  []string{"{venue}, how romantic.", "Sounds magical, {name}."},
		ask:   []string{"Where was the wedding of {name}'s roommate?"},
		when:  []string{"When did {name} go to the roommate's wedding?"},
		other: []string{"Where did {name}'s old university friend tie the knot?"},
	},
	{ // an injury
		opts: []map[string]string{{"part": "ankle", "sport": "football"}, {"part": "wrist", "sport": "volleyball"}, {"part": "knee", "sport": "basketball"}, {"part": "ankle", "sport": "tennis"}},
		say: []string{"Ugh, I sprained my {part} playing {sport} {when}, so I'm stuck on the sofa with ice for a week.",
			"{When} I twisted my {part} during {sport}. The doctor says no sport for a month, I'm going crazy already."},
		echo: []string{"Oh no, your {part}!", "Poor you, {name}."},
		sad:  true,
		ask:  []string{"Which sport was {name} playing when the {part} got hurt?"},
		when: []string{"When did {name} hurt the {part}?"},
	},
	{ // an award
		opts: []map[string]string{{"project": "the new booking system"}, {"project": "the school's reading programme"}, {"project": "the night shift schedule"}},
		say: []string{"My team got an award at work {when} for {project}! My boss made a whole speech, it was a bit embarrassing but nice.",
			"{When} they gave our team the company award for {project}. All those late evenings finally paid off."},
		echo:  []string{"Well deserved!", "Look at you, {name}, award winner."},
		ask:   []string{"What did {name}'s team get an award for?"},
		when:  []string{"When did {name}'s team win an award?"},
		other: []string{"Which project earned {name} recognition?"},
	},
	{ // baking for dad
		opts: []map[string]string{{"cake": "a three-layer chocolate cake"}, {"cake": "a lemon tart"}, {"cake": "an apple pie with my grandma's recipe"}},
		say: []string{"I baked {cake} for my dad's birthday {when}. Half of it was gone in ten minutes, so I guess it worked!",
			"{When} was Dad's birthday, so I baked {cake}. He had three slices and pretended it was for his health."},
		echo:  []string{"Yum, save me a slice!", "Your dad is lucky, {name}."},
		ask:   []string{"What did {name} bake for the dad's birthday?"},
		when:  []string{"When was {name}'s dad's birthday?"},
		other: []string{"What dessert did {name} make for the father?"},
	},
	{ // the grandparents
		opts: []map[string]string{{"town": "a little village in the Alps"}, {"town": "a farm up north"}, {"town": "a seaside town in Wales"}},
		say: []string{"I spent a few days with my grandparents in {town} {when}. Grandpa still gets up at five every morning to feed the chickens.",
			"{When} I was at my grandparents' place in {town}. No internet, lots of card games, very good for the soul."},
		echo: []string{"That sounds so peaceful.", "Your grandparents sound adorable."},
		ask:  []string{"Where do {name}'s grandparents live?"},
		when: []string{"When did {name} stay with the grandparents?"},
	},
	{ // a dream trip
		opts: []map[string]string{{"plan": "Iceland to see the northern lights"}, {"plan": "Japan for the cherry blossoms"}, {"plan": "Peru to hike to Machu Picchu"}},
		say: []string{"We're saving up for a trip to {plan} next year. I've wanted to do that since I was a kid.",
			"Big plan for next year: {plan}. I already have a spreadsheet, don't laugh."},
		echo:  []string{"Oh, that's a dream!", "Take me with you, {name}."},
		ask:   []string{"Where is {name} planning to travel next year?"},
		other: []string{"What is {name}'s dream holiday?"},
	},
	{ // a language course
		opts: []map[string]string{{"lang": "Spanish"}, {"lang": "Korean"}, {"lang": "Italian"}, {"lang": "Dutch"}},
		say: []string{"I signed up for an evening {lang} course {when}, twice a week. My pronunciation is terrible but the teacher is very patient.",
			"{When} I had my first {lang} lesson! I can now order a coffee and say my name, that's about it."},
		echo:  []string{"{lang}! Say something.", "Good for you, {name}."},
		ask:   []string{"Which language is {name} learning?"},
		when:  []string{"When did {name} start the {lang} course?"},
		other: []string{"Which foreign tongue is {name} studying?"},
	},
}

// lifeThread is something told bit by bit, in several sessions: one
// question needs every telling (friends_multi).
type lifeThread struct {
	tellings []string // each with {x}: one of xs, different each time
	xs       []string
	ask      []string
}

var lifeThreads = []lifeThread{
	{
		tellings: []string{"Just got back from {x}, the food alone was worth the trip. I'm already planning to go back.",
			"{x} was amazing, we spent four days just wandering around. My feet are destroyed but my heart is full.",
			"We squeezed in a quick trip to {x} last weekend, a bit rushed but so much fun."},
		xs:  []string{"Barcelona", "Copenhagen", "Prague", "Istanbul", "Dublin", "Marrakesh", "Krakow"},
		ask: []string{"Which cities has {name} travelled to?", "What places has {name} been to on trips?"},
	},
	{
		tellings: []string{"Took the kids to {x} today, they were completely wiped out afterwards. Quiet evening for once!",
			"We spent Sunday at {x} with the kids. The little one refused to leave, we had to carry her out.",
			"Rainy day, so I took the kids to {x}. Best idea I've had all month."},
		xs:  []string{"the zoo", "the science museum", "the aquarium", "a trampoline park", "the farm with the goats", "the planetarium"},
		ask: []string{"Where has {name} taken the kids?", "What outings did {name} do with the children?"},
	},
	{
		tellings: []string{"I saw {x} live last night, I'm still half deaf and completely happy.",
			"Went to the {x} concert with my cousin, we sang along to every single song.",
			"{x} played a tiny venue in town and I got a ticket at the last minute, what a night."},
		xs:  []string{"Coldplay", "a jazz quartet", "Taylor Swift", "the city orchestra", "an old punk band", "Arctic Monkeys"},
		ask: []string{"Which concerts has {name} been to?", "What live music has {name} seen?"},
	},
	{
		tellings: []string{"I joined a {x} group that meets on Thursday evenings, everyone is super friendly.",
			"Did my first {x} session this week, I'm sore in places I didn't know existed.",
			"Trying to stay active, so now I do {x} before work twice a week."},
		xs:  []string{"running", "yoga", "swimming", "salsa dancing", "cycling", "tennis"},
		ask: []string{"What sports and activities does {name} do?", "How does {name} stay active?"},
	},
}

// friendsSmallTalk are the sentences the turns between the tellings are
// made of, two or three at a time: how the day went, work, family, the
// weather, plans, reactions. {other} is the one spoken to.
var friendsSmallTalk = []string{
	"Work has been absolutely crazy this week, I barely had time to breathe.",
	"I'm so tired today, I think I need a whole weekend of sleep.",
	"The weather finally turned nice, I sat outside with a coffee for an hour.",
	"It's been raining non-stop here, I'm starting to forget what the sun looks like.",
	"How are the kids doing?", "How's everything at work?", "How was your weekend?",
	"We had a quiet weekend at home, just cooking and watching movies.",
	"My mom called for two hours yesterday, she wanted to know everything about everything.",
	"I really need to start going to bed earlier, I keep saying that.",
	"Did you end up watching that series I told you about?",
	"I've been trying to read more and scroll less, with mixed results.",
	"That sounds like a lot, {other}. Make sure you take some time for yourself.",
	"Haha, that's exactly the kind of thing that would happen to me.",
	"I'm really happy for you, you deserve it.",
	"Oh no, I'm sorry to hear that. I hope things get better soon.",
	"We should really meet up soon, it's been way too long.",
	"Let me know when you're free and I'll make it work.",
	"Honestly, some days I just want to stay in bed with a book.",
	"My boss finally approved my holiday, so that's something to look forward to.",
	"The neighbours are renovating again, the drilling starts at seven every morning.",
	"I tried a new recipe last night and it was a total disaster, we ordered pizza in the end.",
	"The kids have a school play next week and I somehow ended up making costumes.",
	"I went for a long walk in the park to clear my head, it helped a lot.",
	"Thanks for asking, things are slowly getting better.",
	"I've been thinking about what you said last time, and you were right.",
	"Traffic this morning was unbelievable, it took me an hour to get to work.",
	"I finally cleaned out my closet and found clothes I forgot I had.",
	"I can't believe it's already almost the end of the month.",
	"My sister came over for dinner and we talked until midnight.",
	"Busy busy, but the good kind of busy for once.",
	"I'm trying to save money this month, so lots of pasta at home.",
	"The office is moving to a new building and nobody knows where anything is.",
	"Sorry I didn't answer earlier, my phone died in the middle of the day.",
	"I've been feeling a bit stressed lately, but talking to you always helps.",
	"We're thinking about what to do for the holidays, any ideas?",
	"Our car made a weird noise all week, so now it's at the mechanic's.",
	"I found a really nice café near my place, we have to go together.",
	"That's so funny, I was literally thinking about you today.",
	"I hope you're taking care of yourself, {other}.",
	"Nothing much new here, just the usual routine.",
	"My back hurts from sitting at the desk all day, I need a better chair.",
	"We had friends over on Friday and played board games until late.",
	"I've been trying to get up early and go for a run, it lasted three days.",
	"The kids are growing so fast, it's a little scary.",
	"Remember when we used to stay up all night talking? I miss that.",
	"I'm so glad you told me, that means a lot.",
	"Work is calmer now that the big project is over.",
	"What have you been up to lately, {other}?",
	"Any plans for the weekend?", "Tell me everything!",
}

// friendsChatter are longer lines of everyday life for the turns between
// the tellings, their {slots} filled from friendsSlots each time: the
// same topics as the tellings (trips, kids, food, music, work, the
// garden), so a question's words also match lines that do not answer it.
var friendsChatter = []string{
	"I went to {shop} {time} to get {item}, and of course I came back with way more than I needed.",
	"{person} is visiting next {day}, so I have to clean the whole {room} before then.",
	"We were thinking about {plan}, but honestly we're too tired to organise anything right now.",
	"Have you ever tried {food}? {person} made it for us {time} and I can't stop thinking about it.",
	"The kids want to go to {outing} again, they've been asking every single day.",
	"I keep meaning to call {person}, but every evening something comes up.",
	"I watched {show} {time}, {opinion}.",
	"{person} is thinking about {lifeplan}, and I'm not sure what to say about it.",
	"We had {weather} all week, so {weatheract}.",
	"I need new {clothing}, mine are falling apart.",
	"I read an article about {topic} {time}, it was really interesting.",
	"{person} sent me photos from {city}, it looks so beautiful there.",
	"Our {appliance} broke down {time}, so now we're {consequence}.",
	"I'm trying to {habit} every day this month, wish me luck.",
	"{person} has been listening to {music} nonstop, the whole flat is full of it.",
	"I saw a poster for {event} in town, we should totally go.",
	"My {relative} wants to start {hobby}, and I said go for it.",
	"At work we have {worknews}, so it's been a bit hectic.",
	"The dog next door got out again {time} and ran around the {room} of the people across the street.",
	"I finally booked the dentist, I'd been putting it off since {month}.",
	"We tried that new {food} place near the station, {opinion}.",
	"{time} I sorted old photos, there are so many of {city} from years ago.",
	"{person} asked me if I want to join {event}, I haven't decided yet.",
	"{outing} was packed {time}, we left after an hour.",
	"I've been playing {music} on repeat while working, it helps me focus.",
	"My {relative} is coming to stay for a week in {month}.",
	"We're repainting the {room} {colour}, or at least that's the plan.",
	"I found a great recipe for {food}, I'll send it to you.",
}

var friendsSlots = map[string][]string{
	"shop":        {"the supermarket", "the hardware store", "the market", "the bookshop", "the garden centre", "IKEA"},
	"item":        {"milk", "a lamp", "some plants", "batteries", "a birthday present", "paint"},
	"time":        {"yesterday", "last weekend", "on Saturday", "this morning", "last night", "on Tuesday"},
	"day":         {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"},
	"month":       {"January", "March", "April", "June", "August", "October", "December"},
	"person":      {"my neighbour", "my cousin", "a friend from work", "my brother", "my mum", "my old flatmate", "my boss", "our babysitter"},
	"relative":    {"mum", "dad", "brother", "sister", "cousin", "aunt", "grandma"},
	"room":        {"kitchen", "living room", "bathroom", "garden", "hallway", "spare room"},
	"plan":        {"a weekend by the sea", "a trip to the mountains", "a city break", "renting a cabin", "a road trip"},
	"food":        {"Thai curry", "homemade pizza", "ramen", "tacos", "a lentil soup", "sushi", "banana bread", "dumplings"},
	"outing":      {"the zoo", "the swimming pool", "the playground", "the museum", "the cinema", "the park", "the farm"},
	"show":        {"a cooking show", "a documentary about whales", "the new crime series", "an old comedy", "a football match", "a dating show"},
	"opinion":     {"it was surprisingly good", "it was a bit boring", "I laughed the whole time", "not my thing", "we loved it"},
	"lifeplan":    {"changing jobs", "moving abroad", "going back to school", "buying a house", "getting a dog"},
	"weather":     {"nonstop rain", "a heatwave", "strong wind", "snow", "grey skies"},
	"weatheract":  {"we stayed in and played board games", "the kids were bouncing off the walls", "we barely left the house", "I finally sorted the garage"},
	"clothing":    {"running shoes", "winter boots", "jeans", "a raincoat"},
	"topic":       {"sleep", "the history of coffee", "bees", "space travel", "urban gardening", "dogs and their owners"},
	"city":        {"Rome", "Paris", "Amsterdam", "Berlin", "Lisbon", "Barcelona", "Prague", "Dublin"},
	"appliance":   {"washing machine", "fridge", "oven", "dishwasher", "boiler"},
	"consequence": {"eating takeaway every night", "doing laundry at my mum's", "waiting for a repairman who never comes"},
	"habit":       {"drink more water", "walk ten thousand steps", "read before bed", "stretch in the morning", "cook at home"},
	"music":       {"old Beatles albums", "jazz", "a Spanish pop song", "film soundtracks", "reggae", "the same Taylor Swift album"},
	"event":       {"a food festival", "a jazz concert in the park", "a pottery fair", "a charity run", "a book reading", "an open-air cinema night"},
	"hobby":       {"painting", "the guitar", "running", "gardening", "photography", "yoga"},
	"worknews":    {"a new manager", "a big deadline", "an office move", "a team outing", "a software update that broke everything"},
	"colour":      {"green", "white", "light blue", "yellow"},
}

var (
	friendsOpen = []string{"Hey {other}! It's been a while, how have you been?", "Hi {other}! Long time no talk, what's new with you?",
		"{other}! Sorry for disappearing, life has been a lot.", "Good morning {other}, how's your week going so far?"}
	friendsClose = []string{"Anyway, I should get some sleep. Talk soon, {other}!", "I have to run, but let's catch up again soon!",
		"Okay, dinner is ready, talk later!", "Good night {other}, so nice to catch up."}
	friendsReact = []string{"That's amazing, {other}, I'm so happy for you! How are you feeling about it?",
		"No way! You have to send me pictures next time.", "That sounds like so much fun. Tell me everything!",
		"Haha I love that. You always find time for the best things, I'm a little jealous honestly.",
		"Aww, that's lovely. It sounds like exactly what you needed after the last few weeks.",
		"Wow, I didn't expect that! Good for you, really.", "That's so cool, {other}. How did it go?"}
	friendsSorry = []string{"Oh no, that's awful! Take it easy and let me know if you need anything.",
		"I'm so sorry, {other}. That's the worst timing. How are you holding up?", "Ugh, poor you. Rest up and don't do anything silly!"}
	friendPairs = [][2]string{{"Nadia", "Tom"}, {"Priya", "Jonas"}, {"Lena", "Marcus"}, {"Sofia", "Daniel"}, {"Hana", "Ben"}, {"Mara", "Oliver"}}
)

// friendsChat is chat i of the friends kind: two people (the user and the
// assistant roles) over 20 to 30 sessions days or weeks apart.
func friendsChat(i int) Chat {
	w := newWriter("friends", i)
	r := w.r
	pair := friendPairs[i%len(friendPairs)]
	people := [2]friend{{name: pair[0], role: event.RoleUser}, {name: pair[1], role: event.RoleAssistant}}

	subst := func(t string, vals map[string]string) string {
		for k, v := range vals {
			t = strings.ReplaceAll(t, "{"+k+"}", v)
		}
		return t
	}
	sentence := func(t string) string { return strings.ToUpper(t[:1]) + t[1:] }
	talk := func(who, to friend) string {
		return subst(w.pick(friendsSmallTalk...), map[string]string{"other": to.name})
	}
	// filler is one turn of small talk: a line of everyday life and one
	// or two short sentences, in some order.
	filler := func(who, to friend) {
		parts := []string{sentence(w.fillSlots(w.pick(friendsChatter...), friendsSlots)), talk(who, to)}
		switch r.IntN(4) {
		case 0:
			parts = append(parts, talk(who, to))
		case 1:
			parts = append(parts, sentence(w.fillSlots(w.pick(friendsChatter...), friendsSlots)))
		}
		r.Shuffle(len(parts), func(a, b int) { parts[a], parts[b] = parts[b], parts[a] })
		w.say(who.role, strings.Join(parts, " "))
	}

	// What each person will tell: most of the facts, shuffled; each
	// person's own choice of details. Questions are kept in a pool and a
	// few of them asked at the end.
	type pending struct {
		kind, text string
		evidence   []string
	}
	var pool [][]pending // per telling: its questions, the fact first
	type telling struct {
		who  int
		fact lifeFact
	}
	var tellings []telling
	for p := range people {
		order := r.Perm(len(lifeFacts))
		for _, k := range order[:9+r.IntN(3)] {
			tellings = append(tellings, telling{p, lifeFacts[k]})
		}
	}
	r.Shuffle(len(tellings), func(a, b int) { tellings[a], tellings[b] = tellings[b], tellings[a] })
	tell := func(t telling) {
		who, to := people[t.who], people[1-t.who]
		f := t.fact
		when := whenPhrases[r.IntN(len(whenPhrases))]
		vals := map[string]string{"name": who.name, "other": to.name, "when": when, "When": sentence(when)}
		for k, v := range f.opts[r.IntN(len(f.opts))] {
			vals[k] = v
		}
		say := w.pick(f.say...)
		if r.IntN(2) == 0 { // a line of small talk first, in the same turn
			say = talk(who, to) + " " + say
		}
		id := w.say(who.role, sentence(subst(say, vals)))
		reactions := friendsReact
		if f.sad {
			reactions = friendsSorry
		}
		react := subst(w.pick(reactions...), map[string]string{"other": who.name})
		if len(f.echo) > 0 && r.IntN(2) == 0 {
			react = sentence(subst(w.pick(f.echo...), vals)) + " " + react
		}
		w.say(to.role, react)
		if len(f.more) > 0 && r.IntN(2) == 0 {
			w.say(who.role, subst(w.pick(f.more...), vals))
			w.say(to.role, subst(w.pick(friendsReact...), map[string]string{"other": who.name}))
		}
		kind := "friends_fact"
		if f.pref {
			kind = "friends_pref"
		}
		qs := []pending{{kind, subst(w.pick(f.ask...), vals), []string{id}}}
		if len(f.when) > 0 {
			qs = append(qs, pending{"friends_temporal", subst(w.pick(f.when...), vals), []string{id}})
		}
		if len(f.other) > 0 {
			qs = append(qs, pending{"friends_paraphrase", subst(w.pick(f.other...), vals), []string{id}})
		}
		pool = append(pool, qs)
	}

	// Two things each told bit by bit, by one of them.
	type thread struct {
		who  int
		t    lifeThread
		xs   []int
		told []string
	}
	var threads []*thread
	for _, k := range r.Perm(len(lifeThreads))[:2] {
		threads = append(threads, &thread{who: r.IntN(2), t: lifeThreads[k], xs: r.Perm(len(lifeThreads[k].xs))})
	}

	sessions := 20 + r.IntN(11)
	perSession := (len(tellings) + sessions - 1) / sessions
	for range sessions {
		// Days to weeks after the last session, in the evening.
		day := w.now.Add(time.Duration(2+r.IntN(14)) * 24 * time.Hour).Truncate(24 * time.Hour)
		w.now = day.Add(time.Duration(17*60+r.IntN(4*60)) * time.Minute)
		first := r.IntN(2)
		w.say(people[first].role, subst(w.pick(friendsOpen...), map[string]string{"other": people[1-first].name}))
		turn := 1 - first
		n := 10 + r.IntN(13)
		events := map[int]func(){}
		// at is a free place for one more event among the session's turns.
		at := func() int {
			for {
				if k := 1 + r.IntN(n-2); events[k] == nil {
					return k
				}
			}
		}
		for k := 0; k < perSession+r.IntN(2) && len(tellings) > 0; k++ {
			t := tellings[0]
			tellings = tellings[1:]
			events[at()] = func() { tell(t) }
		}
		for _, th := range threads {
			if len(th.told) < len(th.t.tellings) && r.IntN(4) == 0 {
				events[at()] = func() {
					x := th.t.xs[th.xs[len(th.told)]]
					text := strings.ReplaceAll(th.t.tellings[len(th.told)], "{x}", x)
					th.told = append(th.told, w.say(people[th.who].role, sentence(text)))
					w.say(people[1-th.who].role, subst(w.pick(friendsReact...), map[string]string{"other": people[th.who].name}))
				}
			}
		}
		for k := 1; k < n; k++ {
			if f, ok := events[k]; ok {
				f()
				continue
			}
			filler(people[turn], people[1-turn])
			turn = 1 - turn
		}
		w.say(people[turn].role, subst(w.pick(friendsClose...), map[string]string{"other": people[1-turn].name}))
		w.say(people[1-turn].role, subst(w.pick("Bye! Talk soon.", "Night night!", "Take care, {other}!", "Speak soon!"), map[string]string{"other": people[turn].name}))
	}
	// What is left untold, in one more session each.
	for len(tellings) > 0 {
		w.now = w.now.Add(time.Duration(3+r.IntN(10)) * 24 * time.Hour)
		filler(people[0], people[1])
		tell(tellings[0])
		tellings = tellings[1:]
	}
	var multi []pending
	for _, th := range threads {
		for len(th.told) < len(th.t.tellings) {
			w.now = w.now.Add(time.Duration(3+r.IntN(10)) * 24 * time.Hour)
			x := th.t.xs[th.xs[len(th.told)]]
			th.told = append(th.told, w.say(people[th.who].role, sentence(strings.ReplaceAll(th.t.tellings[len(th.told)], "{x}", x))))
			filler(people[1-th.who], people[th.who])
		}
		multi = append(multi, pending{"friends_multi", strings.ReplaceAll(w.pick(th.t.ask...), "{name}", people[th.who].name), th.told})
	}

	// The questions: twelve of the tellings, each asked about one way —
	// what (two in five), when (one in three) or in other words (the
	// rest), as far as the telling has such a question — then the
	// threads.
	for _, k := range r.Perm(len(pool))[:min(12, len(pool))] {
		qs, pick := pool[k], 0
		switch x := r.IntN(20); {
		case x < 8:
		case x < 15 && len(qs) > 1 && qs[1].kind == "friends_temporal":
			pick = 1
		case x >= 15 && qs[len(qs)-1].kind == "friends_paraphrase":
			pick = len(qs) - 1
		}
		w.ask(qs[pick].kind, qs[pick].text, qs[pick].evidence...)
	}
	for _, q := range multi {
		w.ask(q.kind, q.text, q.evidence...)
	}
	return w.c
}
