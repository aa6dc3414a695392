package corpus

import "fmt"

var casualSmallTalk = []string{
	"Hey! How was your week?", "Pretty good, just busy with work.", "Same here, can't wait for the weekend.",
	"Did you see that new series everyone is talking about?", "Not yet, is it good?", "It's amazing, you have to watch it.",
	"I made pasta last night, turned out great.", "Yum, send me the recipe!", "Ugh, Monday again.", "Haha tell me about it.",
	"The weather has been so nice lately.", "I know, I went for a long walk yesterday.", "What are you up to tonight?",
	"Probably just relaxing at home.", "Sounds perfect.", "I'm so tired today.", "Get some rest!", "Miss you, we should meet soon.",
	"Definitely, let's plan something.", "Did you finish that book?", "Almost, only a few chapters left.", "Good night!",
	"Morning! Coffee first.", "Always coffee first haha.", "My neighbour is renovating again, so much noise.", "Oh no, that's annoying.",
	"I tried a new yoga video this morning.", "Nice, how was it?", "Hard but good.", "Work was chaos today.", "Hope tomorrow is calmer.",
	"Thanks for listening, really.", "Anytime, you know that.", "Look at this funny video lol.", "Hahaha that's so good.",
	"I need a holiday.", "Me too, somewhere warm.", "How's your family doing?", "Everyone's fine, thanks for asking.",
	"I'm thinking about changing my hair.", "Do it, you'll look great.", "The train was late again.", "Classic.",
	"I baked cookies for the office.", "You're the best colleague ever.", "Rainy Sunday, perfect for movies.", "Enjoy!",
}

// casualChat is chat i of the casual kind: the user and the assistant roles
// are two friends.
func casualChat(i int) Chat {
	w := newWriter("casual", i)
	w.chatter = casualLine
	r := w.r
	names := []string{"Biscuit", "Pepper", "Luna", "Milo", "Nala", "Oscar"}
	dog := names[i%len(names)]
	breeds := []string{"beagle", "corgi", "golden retriever", "dachshund", "border collie"}
	breed := breeds[r.IntN(len(breeds))]
	cities := []string{"Lisbon", "Porto", "Kyoto", "Reykjavik", "Naples", "Tallinn"}
	city := cities[r.IntN(len(cities))]
	sister := []string{"Emma", "Clara", "Hanna", "Julia"}[r.IntN(4)]
	day := weekdays[r.IntN(len(weekdays))]

	facts := []func(){
		func() { // the dog, told over two turns
			w.user("Guess what, we finally got a puppy!")
			w.assistant("No way!! What's his name?")
			u := w.user(fmt.Sprintf("%s! He's a little %s and he already chewed my shoes.", dog, breed))
			w.assistant("Haha that's adorable, I need to meet him.")
			w.ask("casual_fact", w.pick("What's the name of the dog?", "What did they call the puppy?"), u)
			w.ask("casual_fact", w.pick("What breed is the dog?", "Which kind of dog did they get?"), u)
		},
		func() { // pottery class
			u := w.user(fmt.Sprintf("I signed up for a pottery class, it's every %s evening.", day))
			w.assistant("That sounds so relaxing! Send pictures of what you make.")
			w.ask("casual_fact", w.pick("On which day is the ceramics course?", "When is the pottery class?"), u)
		},
		func() { // the sister's wedding
			u := w.user(fmt.Sprintf("My sister %s is getting married in %s next summer!", sister, city))
			w.assistant("Congratulations to her! A wedding abroad, how exciting.")
			w.ask("casual_fact", w.pick("Where is the sister's wedding?", fmt.Sprintf("Which city is %s getting married in?", sister)), u)
		},
		func() { // the half marathon
			t := fmt.Sprintf("2 hours %d minutes", 1+r.IntN(40))
			w.user("I did it, I ran my first half marathon today!")
			w.assistant("Amazing!! What was your time?")
			u := w.user(fmt.Sprintf("%s, I'm so proud, my legs hate me though.", t))
			w.ask("casual_fact", w.pick("How long did the half marathon take?", "What was the finishing time of the race?"), u)
		},
		func() { // new job
			jobs := []string{"a small design studio", "the city library", "a bike repair shop", "a hospital in the north of town"}
			job := jobs[r.IntN(len(jobs))]
			u := w.user(fmt.Sprintf("Big news: I got the job at %s! I start in two weeks.", job))
			a := w.assistant("I knew you'd get it, congratulations! We have to celebrate.")
			w.ask("casual_fact", w.pick("Where is the new job?", "Which place hired them?"), u)
			_ = a
		},
		func() { // the kitchen
			colours := []string{"yellow", "sage green", "light blue", "terracotta"}
			c := colours[r.IntN(len(colours))]
			u := w.user(fmt.Sprintf("We painted the kitchen %s this weekend, it looks so fresh now.", c))
			w.assistant("Ooh I love that, show me a photo!")
			w.ask("casual_fact", w.pick("What colour is the kitchen now?", "Which colour did they paint the kitchen?"), u)
		},
		func() { // the book
			books := []string{"The Night Circus", "Pachinko", "Circe", "The Remains of the Day"}
			b := books[r.IntN(len(books))]
			w.assistant("Are you reading anything good at the moment?")
			u := w.user(fmt.Sprintf("Yes, %s, I can't put it down.", b))
			w.ask("casual_fact", w.pick("Which novel was she reading?", "What book couldn't they put down?"), u)
		},
		func() { // learning a language for the trip
			langs := map[string]string{"Lisbon": "Portuguese", "Porto": "Portuguese", "Kyoto": "Japanese", "Reykjavik": "Icelandic", "Naples": "Italian", "Tallinn": "Estonian"}
			u := w.user(fmt.Sprintf("I started learning %s with an app, for the trip to the wedding.", langs[city]))
			w.assistant("Good luck, say something to me in it next time!")
			w.ask("casual_fact", w.pick("Which language are they learning?", "What language app course did they start?"), u)
		},
		func() { // allergy, told in passing
			u := w.user("Oh and remember I'm allergic to peanuts, so no satay when you cook for us.")
			w.assistant("Noted! No peanuts, promise.")
			w.ask("casual_fact", w.pick("What is she allergic to?", "Which food must be avoided when cooking for them?"), u)
		},
		func() { // the assistant's fact (the other person)
			a := w.assistant("I have news too: I'm moving to a flat by the river next month.")
			w.user("Whoa, that's a big step! Need help carrying boxes?")
			w.ask("casual_fact", w.pick("Where is the friend moving?", "Where's the new flat?"), a)
		},
	}
	r.Shuffle(len(facts), func(a, b int) { facts[a], facts[b] = facts[b], facts[a] })

	// Things told bit by bit over the months: one question needs them all.
	hobbies := []string{
		"I went bouldering with the climbing group from work, my arms are dead.",
		"Swam forty lengths at the pool before work today, felt great.",
		"I joined a choir! We sing on Wednesday nights in the old church.",
		"Tried a salsa evening with Marta, I stepped on everyone's feet.",
	}
	trips := []string{
		fmt.Sprintf("Just back from a long weekend in %s, the food was incredible.", cities[(i+1)%len(cities)]),
		"We drove up to the lake for two days, no phone signal at all.",
		fmt.Sprintf("I booked flights to %s for October, finally!", cities[(i+3)%len(cities)]),
	}
	friendNews := []string{
		"Oh, my sister had her baby, a little girl called Ida!",
		"I got promoted to team lead, still can't believe it.",
		"We adopted an old cat from the shelter, she sleeps all day.",
	}
	type told struct {
		role  string
		lines []string
		ids   []string
		kind  string
		ask   []string
	}
	multi := []*told{
		{role: "user", lines: hobbies, kind: "casual_multi", ask: []string{"What hobbies has she picked up this year?", "Which sports and activities does she do now?"}},
		{role: "user", lines: trips, kind: "casual_multi", ask: []string{"Where has she travelled recently?", "Which trips did she mention?"}},
		{role: "assistant", lines: friendNews, kind: "casual_multi", ask: []string{"What big news did the friend share?", "What happened in the friend's life lately?"}},
	}

	sessions := 60 + r.IntN(30)
	for s := range sessions {
		w.session()
		w.fill(casualSmallTalk, 3+r.IntN(10))
		if s%5 == 2 {
			for _, m := range multi {
				if len(m.ids) < len(m.lines) && r.IntN(3) == 0 {
					line := m.lines[len(m.ids)]
					if m.role == "user" {
						m.ids = append(m.ids, w.user(line))
					} else {
						m.ids = append(m.ids, w.assistant(line))
					}
					w.fill(casualSmallTalk, 1+r.IntN(3))
				}
			}
		}
		if s%7 == 3 && len(facts) > 0 {
			facts[0]()
			facts = facts[1:]
			w.fill(casualSmallTalk, 1+r.IntN(4))
		}
	}
	for _, f := range facts {
		w.session()
		f()
	}

	for _, m := range multi {
		for len(m.ids) < len(m.lines) {
			w.session()
			line := m.lines[len(m.ids)]
			if m.role == "user" {
				m.ids = append(m.ids, w.user(line))
			} else {
				m.ids = append(m.ids, w.assistant(line))
			}
		}
		w.ask(m.kind, w.pick(m.ask...), m.ids...)
	}

	// A last session that the final question follows up on.
	w.session()
	u := w.user(w.pick("Are we still on for dinner on Saturday at the Thai place?", "Is the picnic in the park still happening on Sunday?"))
	a := w.assistant("Yes! 7 pm, I booked a table for four.")
	w.ask("follow_up", w.pick("Great, who else is coming?", "Should I bring anything?"), u, a)

	w.burstSome(5, []string{"hey", "omg", "wait"}, []string{"random question", "I forgot something", "sorry brain fog"})
	return w.c
}
