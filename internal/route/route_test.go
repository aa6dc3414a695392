package route_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chatprep/chatprep/internal/leakcheck"
	"github.com/chatprep/chatprep/internal/route"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// TestBuiltinRules: realistic wording of ERP questions goes to odoo_erp,
// everything else (including words that merely contain an ERP word, and
// idioms that use one) to general.
func TestBuiltinRules(t *testing.T) {
	t.Parallel()
	r := route.Builtin()
	for _, tc := range []struct {
		text, want string
	}{
		// orders and purchases
		{"Where is my order?", route.OdooERP},
		{"I ORDERED 3 chairs last week", route.OdooERP},
		{"can you check the status of my orders", route.OdooERP},
		{"Please reorder the blue mugs", route.OdooERP},
		{"we need to purchase more cable ties", route.OdooERP},
		{"is there a backorder for this?", route.OdooERP},
		// quotations
		{"Can you send me a quote for 200 units?", route.OdooERP},
		{"The quotation expired yesterday", route.OdooERP},
		{"Please resend both quotations", route.OdooERP},
		{"any news on the RFQ?", route.OdooERP},
		// invoices and payments
		{"I haven't received the invoice", route.OdooERP},
		{"Invoices for March please", route.OdooERP},
		{"were we invoiced twice?", route.OdooERP},
		{"Who handles invoicing here?", route.OdooERP},
		{"has my payment arrived", route.OdooERP},
		{"I need a credit note for the damaged box", route.OdooERP},
		// deliveries
		{"When will the delivery arrive?", route.OdooERP},
		{"deliveries to Lyon are late", route.OdooERP},
		{"has it shipped yet", route.OdooERP},
		{"what's the tracking number", route.OdooERP},
		// stock
		{"Is the desk lamp in stock?", route.OdooERP},
		{"stock-out on item 4", route.OdooERP},
		{"How many are on hand in the main warehouse?", route.OdooERP},
		{"when do you restock", route.OdooERP},
		{"inventory count for Friday", route.OdooERP},
		// products
		{"Do you have this product in red?", route.OdooERP},
		{"list all products under 20 euros", route.OdooERP},
		{"What is the SKU of the large box", route.OdooERP},
		{"update the price list", route.OdooERP},
		// Odoo references, with no keyword at all
		{"S00042", route.OdooERP},
		{"any update on s00042?", route.OdooERP},
		{"INV/2026/00017 looks wrong", route.OdooERP},
		{"see inv/2026/00017", route.OdooERP},
		{"BILL/2026/03/0004 is missing", route.OdooERP},
		{"WH/OUT/00005 left?", route.OdooERP},
		{"what about WH/IN/00012", route.OdooERP},
		{"PO00012 from the supplier", route.OdooERP},
		{"P00012", route.OdooERP},
		{"about (S00042).", route.OdooERP},
		{"odoo keeps logging me out", route.OdooERP},
		// general
		{"Hello! How are you today?", route.General},
		{"What's the weather in Stockholm?", route.General},
		{"livestock farming tips", route.General},
		{"I study in order to pass the exam", route.General},
		{"Put these in alphabetical order", route.General},
		{"The lift is out of order again", route.General},
		{"The stock market fell today", route.General},
		{"Stock prices are volatile", route.General},
		{"add chicken stock to the soup", route.General},
		{"that's my favourite quote", route.General},
		{"orders of magnitude faster", route.General},
		{"Let's take stock of the year", route.General},
		{"Reorganize the ordinal numbers", route.General},
		{"productive meeting today", route.General},
		{"S0004 is too short to be a reference", route.General},
		{"XS00042", route.General},
		{"2026/00017", route.General},
		{"", route.General},
		{"   ", route.General},
		// an idiom does not hide a real keyword elsewhere in the text
		{"In order to pay, I need the invoice", route.OdooERP},
		{"in order to help, check my order", route.OdooERP},
	} {
		if got := r.Detect(tc.text, ""); got != tc.want {
			t.Errorf("Detect(%q) = %s, want %s", tc.text, got, tc.want)
		}
	}
}

func TestHintWins(t *testing.T) {
	t.Parallel()
	r := route.Builtin()
	for _, tc := range []struct{ text, hint, want string }{
		{"hello", "odoo_erp", route.OdooERP},
		{"where is my invoice", "general", route.General},
		{"where is my invoice", " ODOO_ERP ", route.OdooERP},
		{"where is my invoice", "sales", route.OdooERP}, // unknown hint: rules decide
		{"hello", "other", route.General},
	} {
		if got := r.Detect(tc.text, tc.hint); got != tc.want {
			t.Errorf("Detect(%q, hint %q) = %s, want %s", tc.text, tc.hint, got, tc.want)
		}
	}
}

func TestNamesKnownFold(t *testing.T) {
	t.Parallel()
	r := route.Builtin()
	if got := r.Names(); !slices.Equal(got, []string{route.OdooERP, route.General}) {
		t.Errorf("Names = %v", got)
	}
	if !r.Known(route.General) || r.Known("sales") || r.Known("ODOO_ERP") {
		t.Error("Known is wrong")
	}
	for in, want := range map[string]string{"odoo_erp": "odoo_erp", "general": "general", "sales": route.Other, "": route.Other} {
		if got := r.Fold(in); got != want {
			t.Errorf("Fold(%q) = %q, want %q", in, got, want)
		}
	}
	names := r.Names()
	names[0] = "changed"
	if r.Names()[0] != route.OdooERP {
		t.Error("Names exposes the router's own slice")
	}
}

// TestExampleFile: the documented example file loads and its first match
// wins.
func TestExampleFile(t *testing.T) {
	t.Parallel()
	r, err := route.Load(filepath.Join("testdata", "routes.example.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Names(); !slices.Equal(got, []string{"support_urgent", "odoo_erp", "billing", "general"}) {
		t.Errorf("Names = %v", got)
	}
	for _, tc := range []struct{ text, want string }{
		{"urgent: invoice INV/2026/00017 is wrong", "support_urgent"}, // first match wins
		{"invoice INV/2026/00017 is wrong", "odoo_erp"},
		{"I was charged twice for my plan", "billing"},
		{"this is a P1", "support_urgent"},
		{"how's the stock market", "general"},
		{"hi", "general"},
	} {
		if got := r.Detect(tc.text, ""); got != tc.want {
			t.Errorf("Detect(%q) = %s, want %s", tc.text, got, tc.want)
		}
	}
}

// TestBadFilesNameTheFileAndTheRule: every error names the file, and the
// rule and field at fault.
func TestBadFilesNameTheFileAndTheRule(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, json string
		want       []string
	}{
		{"unknown top field", `{"route": []}`, []string{`unknown field "route"`}},
		{"unknown rule field", `{"routes": [{"name": "a", "keywords": ["x"], "keyword": ["y"]}]}`, []string{"routes[0]", `unknown field "keyword"`}},
		{"no routes", `{"default": "general"}`, []string{"at least one route"}},
		{"two values", `{"routes": [{"name": "a", "keywords": ["x"]}]} {}`, []string{"more than one JSON value"}},
		{"not JSON", `routes:`, []string{"invalid JSON"}},
		{"bad name", `{"routes": [{"name": "Sales", "keywords": ["x"]}]}`, []string{`routes[0] "Sales"`, "a-z"}},
		{"reserved name", `{"routes": [{"name": "other", "keywords": ["x"]}]}`, []string{`routes[0] "other"`, "reserved"}},
		{"duplicate name", `{"routes": [{"name": "a", "keywords": ["x"]}, {"name": "a", "keywords": ["y"]}]}`, []string{`routes[1] "a"`, "earlier route"}},
		{"empty rule", `{"routes": [{"name": "a"}]}`, []string{`routes[0] "a"`, "at least one keyword or pattern"}},
		{"bad regexp", `{"routes": [{"name": "a", "keywords": ["x"]}, {"name": "b", "patterns": ["ok", "([0-9]"]}]}`, []string{`routes[1] "b"`, `patterns[1] "([0-9]"`, "missing closing )"}},
		{"pattern matching everything", `{"routes": [{"name": "a", "patterns": ["x*"]}]}`, []string{`patterns[0] "x*"`, "empty text"}},
		{"star inside a keyword", `{"routes": [{"name": "a", "keywords": ["in*voice"]}]}`, []string{`keywords[0] "in*voice"`, "only at the end"}},
		{"lone star", `{"routes": [{"name": "a", "keywords": ["*"]}]}`, []string{`keywords[0] "*"`}},
		{"keyword of punctuation", `{"routes": [{"name": "a", "keywords": ["x", "--"]}]}`, []string{`keywords[1] "--"`, "letter or digit"}},
		{"bad except", `{"routes": [{"name": "a", "keywords": ["x"], "except": [""]}]}`, []string{`except[0]`}},
		{"bad default", `{"default": "", "routes": [{"name": "a", "keywords": ["x"]}]}`, []string{`default ""`}},
		{"wrong type", `{"routes": [{"name": "a", "keywords": "x"}]}`, []string{"routes[0]", "keywords"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := route.Parse("/etc/chatprep/routes.json", []byte(tc.json))
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			for _, w := range append([]string{"routes file /etc/chatprep/routes.json"}, tc.want...) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
		})
	}
}

func TestLoadNamesAMissingFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nope.json")
	if _, err := route.Load(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("err = %v", err)
	}
	if _, err := route.Load(filepath.Join("testdata", "bad-regexp.json")); err == nil || !strings.Contains(err.Error(), "bad-regexp.json") {
		t.Errorf("err = %v", err)
	}
}

func TestKeywordSyntax(t *testing.T) {
	t.Parallel()
	r, err := route.New(route.File{Default: "rest", Routes: []route.Rule{
		{Name: "a", Keywords: []string{"sales order", "invoic*", "Café"}, Except: []string{"sales order form"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ text, want string }{
		{"the SALES\n  order", "a"},
		{"sales-order 5", "a"},
		{"sales", "rest"},
		{"order sales", "rest"},
		{"fill in the sales order form", "rest"},
		{"fill in the sales order form for sales order 5", "a"},
		{"INVOICING", "a"},
		{"reinvoice", "rest"},
		{"un café, s'il vous plaît", "a"},
		{"CAFÉ", "a"},
		{"cafés", "rest"},
	} {
		if got := r.Detect(tc.text, ""); got != tc.want {
			t.Errorf("Detect(%q) = %s, want %s", tc.text, got, tc.want)
		}
	}
}

func TestBuiltinFileIsTheDocumentedFormat(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("builtin.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := route.Parse("builtin.json", data); err != nil {
		t.Fatal(err)
	}
}

func FuzzDetect(f *testing.F) {
	for _, s := range []string{"where is my order S00042?", "INV/2026/00017", "in order to", "Stockholm", "\xff\xfe", "İstanbul stock"} {
		f.Add(s, "")
	}
	f.Add("hello", "odoo_erp")
	r := route.Builtin()
	f.Fuzz(func(t *testing.T, text, hint string) {
		got := r.Detect(text, hint)
		if !r.Known(got) {
			t.Fatalf("Detect(%q, %q) = %q, not a known route", text, hint, got)
		}
		if again := r.Detect(text, hint); again != got {
			t.Fatalf("Detect is not deterministic: %q then %q", got, again)
		}
	})
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"routes": [{"name": "a", "keywords": ["x*", "y z"], "patterns": ["q+"], "except": ["x y"]}]}`))
	f.Add([]byte(`{"default": "b", "routes": [{"name": "a", "keywords": ["*"]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := route.Parse("fuzz.json", data)
		if err != nil {
			return
		}
		if got := r.Detect(string(data), ""); !r.Known(got) {
			t.Fatalf("Detect gave unknown route %q", got)
		}
	})
}

// BenchmarkDetect measures the built-in rules on a typical message and on
// the longest text the contract allows.
func BenchmarkDetect(b *testing.B) {
	r := route.Builtin()
	typical := "Hi, could you tell me when the delivery for my last purchase will arrive? Thanks!"
	general := "Hello there, I was wondering whether you could help me plan a trip to Stockholm next spring."
	long := strings.Repeat("nothing to see here, just a long general message. ", 16384/51)
	for _, tc := range []struct{ name, text string }{{"erp", typical}, {"general", general}, {"16KiB_general", long}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r.Detect(tc.text, "")
			}
		})
	}
}

// TestMatchAndHint: Match tells a rule's match from the default; Hint a
// known hint from an unknown one.
func TestMatchAndHint(t *testing.T) {
	t.Parallel()
	r := route.Builtin()
	if name, ok := r.Match("Where is order S00042?"); !ok || name != route.OdooERP {
		t.Errorf("Match(order) = %q, %v", name, ok)
	}
	if name, ok := r.Match("When will it arrive?"); ok || name != "" {
		t.Errorf("Match(no rule) = %q, %v; want no match", name, ok)
	}
	if name, ok := r.Hint(" General "); !ok || name != route.General {
		t.Errorf("Hint(General) = %q, %v", name, ok)
	}
	if _, ok := r.Hint("billing"); ok {
		t.Error("Hint(unknown) matched")
	}
	if _, ok := r.Hint(""); ok {
		t.Error("Hint(\"\") matched")
	}
}
