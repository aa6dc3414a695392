package corpus

import "fmt"

var (
	products = []string{"Pilsner", "Lager", "wheat beer", "pale ale", "dark lager", "cider", "alcohol-free Pilsner",
		"Radler", "sparkling water", "cola", "ginger beer", "stout"}
	units     = []string{"crates", "kegs", "cases", "pallets"}
	weekdays  = []string{"Monday", "Tuesday", "Wednesday", "Thursday", "Friday"}
	months    = []string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October"}
	managers  = []string{"Petra Lindqvist", "Jonas Becker", "Aylin Demir", "Marco Rossi", "Ingrid Olsen", "Tomasz Nowak"}
	streets   = []string{"Speicherstraße 12, 20457 Hamburg", "Hafenweg 3, 28195 Bremen", "Calle Mayor 41, 28013 Madrid", "Ringstraße 88, 1010 Wien", "Kanalgata 7, 0150 Oslo"}
	customers = []string{"Jonas from Brauhaus Nord", "Maria from Bar Central", "Ole from Kiosk am Hafen", "Sofia from Café Luna", "Piet from De Kroeg", "Ana from Taberna Sol"}
)

var shopSmallTalk = []string{
	"Good morning!", "Thanks a lot, have a nice day.", "Hello, how are you today?", "All good here, busy week.",
	"Great, thank you!", "The weather is terrible today, rain all day.", "Did you watch the match yesterday?",
	"Yes, what a game, we were lucky in the last minute.", "Perfect, talk to you soon.", "We had a very busy weekend at the bar.",
	"Glad to hear business is going well.", "Sorry for the late answer, we were at a trade fair.", "No problem at all.",
	"Our team is growing, we hired two new people.", "Congratulations!", "Could you call me back later today?",
	"Of course, I will call you after lunch.", "The new menu is a big success with our guests.", "Sounds great!",
	"We are planning a summer terrace this year.", "Nice, let us know if you need parasols or tables.", "Ok.",
	"Thanks for the quick help as always.", "You're welcome, happy to help.", "I'm on the road today, will reply later.",
	"Have a good weekend!", "You too!", "The last party was a lot of fun, the guests loved the beer garden.",
	"Please keep me updated.", "Will do.", "We got a great review in the local paper last week.",
	"Our football team sponsors asked about banners again.", "I will ask marketing about the banners.",
}

// shopChat is chat i of the shop kind.
func shopChat(i int) Chat {
	w := newWriter("shop", i)
	w.chatter = shopLine
	r := w.r
	customer := customers[i%len(customers)]
	w.session()
	w.user(fmt.Sprintf("Hi, this is %s. We are a new customer and would like to start ordering from you.", customer))
	w.assistant("Welcome! I'm Lucía from customer service. I have set up your account; you can order here any time.")

	refNo := 100 + 37*i
	nextRef := func() string { refNo += 1 + r.IntN(9); return fmt.Sprintf("S%05d", refNo) }
	whNo, invNo, poNo := 10+13*i, 20+11*i, 5+7*i

	type order struct {
		ref, product, unit, day string
		qty                     int
		req, conf               string
	}
	var orders []order
	type issue struct{ wh, product, day, req, answer string }
	var issues []issue
	type invoice struct{ ref, amount, due, req, answer string }
	var invoices []invoice

	// The one-off facts, at random places in the chat.
	oneOffs := []func(){
		func() { // payment terms
			days, disc := []string{"30", "45", "14"}[r.IntN(3)], []string{"2", "3"}[r.IntN(2)]
			q := w.user(w.pick("What payment terms do we have in our contract?", "Quick question about the contract: what payment terms did we agree?"))
			a := w.assistant(fmt.Sprintf("Your framework contract has %s days net, with a %s%% discount if you pay within 10 days.", days, disc))
			w.ask("payment_terms", w.pick("What was the payment term on our contract again?", "Remind me, how many days do we have to pay a bill?",
				"How long do we have to settle invoices under the contract?"), a)
			_ = q
		},
		func() { // opening hours
			w.user(w.pick("Are you open on Saturdays?", "Can we pick up goods at the weekend?"))
			a := w.assistant("On Saturdays we are open from 9:00 to 13:00; on Sundays the shop is closed.")
			w.ask("opening_hours", w.pick("What time do you close on Saturday?", "Until when can I come by on a Saturday?", "Are you open Sunday?"), a)
		},
		func() { // warehouse manager, told once
			name := managers[r.IntN(len(managers))]
			u := w.user(fmt.Sprintf("By the way, our new warehouse manager is %s, who takes the deliveries from now on.", name))
			w.assistant("Noted, thank you for letting me know!")
			w.ask("personal", w.pick("Who is our warehouse manager again?", "Who did I say receives the goods at our warehouse?"), u)
		},
		func() { // company holidays
			m := months[5+r.IntN(3)]
			u := w.user(fmt.Sprintf("We close for our summer holidays from 3 to 17 %s, please don't deliver anything then.", m))
			a := w.assistant(fmt.Sprintf("Understood, no deliveries between 3 and 17 %s.", m))
			w.ask("personal", w.pick("When is our company vacation?", "Which weeks are we closed in the summer?"), u, a)
		},
		func() { // phone number
			phone := fmt.Sprintf("+49 170 %07d", 1000000+r.IntN(8999999))
			u := w.user(fmt.Sprintf("My mobile number changed, it is now %s.", phone))
			w.assistant("Updated, thank you.")
			w.ask("personal", w.pick("Which phone number do you have for me?", "What's my current mobile number in your records?"), u)
		},
		func() { // address
			addr := streets[r.IntN(len(streets))]
			u := w.user(fmt.Sprintf("Please send all deliveries to our new address from now on: %s.", addr))
			a := w.assistant(fmt.Sprintf("Done, the delivery address on your account is now %s.", addr))
			w.ask("personal", w.pick("Where do the deliveries go now?", "What address did I give you for shipping?"), u, a)
		},
		func() { // birthday
			day := fmt.Sprintf("%d %s", 1+r.IntN(28), months[r.IntN(len(months))])
			u := w.user(fmt.Sprintf("It's my birthday on %s and we're throwing a big party at the bar, so we will need extra kegs that week.", day))
			w.assistant("Happy early birthday! Just tell me how many kegs you need.")
			w.ask("personal", w.pick("When is my birthday?", "Which day was my birthday party again?"), u)
		},
		func() { // product question
			u := w.user(w.pick("Is the Radler gluten free?", "Do you have anything without gluten for a guest with coeliac disease?"))
			a := w.assistant("The Radler contains barley malt, so it is not gluten free; our cider and the sparkling water are.")
			w.ask("product", w.pick("Which of your drinks can someone with a gluten allergy have?", "What was the gluten-free option again?"), a)
			_ = u
		},
		func() { // deposit
			w.user("How much deposit do you charge on a keg?")
			a := w.assistant("The deposit is 30 EUR per keg and 3.10 EUR per crate; you get it back when you return them.")
			w.ask("product", w.pick("How much is the deposit for kegs?", "What do I get back when I return an empty keg?"), a)
		},
	}
	r.Shuffle(len(oneOffs), func(a, b int) { oneOffs[a], oneOffs[b] = oneOffs[b], oneOffs[a] })

	sessions := 70 + r.IntN(40)
	for s := range sessions {
		w.session()
		if s > 0 && s%9 == 4 && len(oneOffs) > 0 {
			oneOffs[0]()
			oneOffs = oneOffs[1:]
			continue
		}
		switch k := r.IntN(10); {
		case k < 3: // an order
			o := order{ref: nextRef(), product: products[r.IntN(len(products))], unit: units[r.IntN(2)],
				day: weekdays[r.IntN(len(weekdays))], qty: 2 + r.IntN(30)}
			o.req = w.user(w.pick(
				fmt.Sprintf("Hi Lucía, I'd like to order %d %s of %s for %s.", o.qty, o.unit, o.product, o.day),
				fmt.Sprintf("Hello, can you send us %d %s of %s, delivery on %s please?", o.qty, o.unit, o.product, o.day),
				fmt.Sprintf("We need %d %s of %s by %s.", o.qty, o.unit, o.product, o.day)))
			o.conf = w.assistant(fmt.Sprintf("Thanks! Order %s is confirmed: %d %s of %s, delivery on %s.", o.ref, o.qty, o.unit, o.product, o.day))
			if r.IntN(3) == 0 {
				w.user("Perfect, thanks.")
			}
			orders = append(orders, o)
		case k < 4 && len(orders) > 0: // a delivery issue
			o := orders[r.IntN(len(orders))]
			whNo += 1 + r.IntN(5)
			is := issue{wh: fmt.Sprintf("WH/OUT/%05d", whNo), product: o.product, day: weekdays[r.IntN(len(weekdays))]}
			n := 1 + r.IntN(4)
			is.req = w.user(w.pick(
				fmt.Sprintf("Delivery %s came with %d broken %s of %s.", is.wh, n, o.unit, o.product),
				fmt.Sprintf("Hi, in delivery %s %d %s of %s were damaged.", is.wh, n, o.unit, o.product)))
			is.answer = w.assistant(fmt.Sprintf("I'm so sorry! I have booked a replacement of %d %s of %s; it will arrive on %s.", n, o.unit, o.product, is.day))
			issues = append(issues, is)
		case k < 5: // an invoice
			invNo += 1 + r.IntN(6)
			inv := invoice{ref: fmt.Sprintf("INV/2026/%05d", invNo), amount: fmt.Sprintf("%d.%02d", 80+r.IntN(900), r.IntN(100)),
				due: fmt.Sprintf("%d %s", 1+r.IntN(28), months[r.IntN(len(months))])}
			inv.req = w.user(w.pick(fmt.Sprintf("Can you send me invoice %s again? I can't find it.", inv.ref),
				fmt.Sprintf("I think invoice %s is missing from our accounting.", inv.ref)))
			inv.answer = w.assistant(fmt.Sprintf("Sure, I have sent %s to your accounting email again. It is %s EUR, due on %s.", inv.ref, inv.amount, inv.due))
			invoices = append(invoices, inv)
		case k < 6 && len(orders) > 0: // a purchase order number
			o := orders[len(orders)-1]
			poNo += 1 + r.IntN(4)
			po := fmt.Sprintf("PO%05d", poNo)
			w.user(fmt.Sprintf("For our bookkeeping: our purchase order %s covers the %s order.", po, o.product))
			a := w.assistant(fmt.Sprintf("Thanks, I linked %s to order %s.", po, o.ref))
			if r.IntN(3) == 0 {
				w.ask("reference", fmt.Sprintf("Which purchase order number did we use for %s?", o.ref), a)
			}
		default:
			w.fill(shopSmallTalk, 2+r.IntN(6))
		}
	}
	for _, f := range oneOffs {
		w.session()
		f()
	}

	// Questions about the repeated facts: a random few of each.
	for _, o := range pickN(r, orders, 3) {
		w.ask("order", w.pick(
			fmt.Sprintf("How many %s were in order %s?", o.unit, o.ref),
			fmt.Sprintf("What did we get with %s again?", o.ref),
			fmt.Sprintf("Which product was order %s for?", o.ref)), o.conf)
	}
	for _, is := range pickN(r, issues, 2) {
		w.ask("delivery", w.pick(
			fmt.Sprintf("When does the replacement for the damaged %s arrive?", is.product),
			fmt.Sprintf("What did you promise about the broken %s in %s?", is.product, is.wh)), is.answer)
	}
	if len(issues) >= 2 {
		var ids []string
		for _, is := range issues {
			ids = append(ids, is.req)
		}
		w.ask("delivery_multi", w.pick("Which of our deliveries had problems so far?", "How often did something arrive broken?"), ids...)
	}
	for _, inv := range pickN(r, invoices, 2) {
		w.ask("invoice", w.pick(
			fmt.Sprintf("How much was invoice %s?", inv.ref),
			fmt.Sprintf("When is %s due?", inv.ref)), inv.answer)
	}

	// The last session: a follow-up on the last exchange.
	w.session()
	if len(orders) > 0 {
		o := orders[len(orders)-1]
		u := w.user(fmt.Sprintf("Where is my order %s?", o.ref))
		a := w.assistant(fmt.Sprintf("Order %s left the warehouse this morning and arrives tomorrow before noon.", o.ref))
		w.ask("follow_up", w.pick("Can I still add two more crates to it?", "Great, and will the driver call before?"), u, a)
	}

	w.burstSome(4, []string{"hi", "hello Lucía", "hey"}, []string{"quick question", "one more thing", "sorry to bother you"})
	return w.c
}

// pickN returns up to n distinct elements of xs.
func pickN[T any](r interface{ Perm(int) []int }, xs []T, n int) []T {
	var out []T
	for _, i := range r.Perm(len(xs)) {
		if len(out) == n {
			break
		}
		out = append(out, xs[i])
	}
	return out
}
