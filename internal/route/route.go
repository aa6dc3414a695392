package route

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Route names the package itself knows about.
const (
	// OdooERP is the built-in route for ERP questions.
	OdooERP = "odoo_erp"
	// General is the built-in default route.
	General = "general"
	// Other is what Fold makes of a name that is not a known route, so that
	// metric dimensions stay few. No rule may use it.
	Other = "other"
)

// MaxNameLen is the longest route name accepted.
const MaxNameLen = 64

//go:embed builtin.json
var builtinJSON []byte

// File is the JSON shape of a rules file (see the package documentation).
type File struct {
	Default string `json:"default,omitempty"`
	Routes  []Rule `json:"routes"`
}

// Rule is one route of a rules file.
type Rule struct {
	Name     string   `json:"name"`
	Keywords []string `json:"keywords,omitempty"`
	Patterns []string `json:"patterns,omitempty"`
	Except   []string `json:"except,omitempty"`
}

// Router detects routes. It is immutable and safe for concurrent use.
type Router struct {
	routes   []route
	fallback string
	names    []string // routes in rule order, then the default if not among them
}

type route struct {
	name     string
	keywords phrases
	except   phrases
	patterns []*regexp.Regexp
}

// Builtin returns the built-in rules (builtin.json).
func Builtin() *Router {
	r, err := Parse("builtin.json", builtinJSON)
	if err != nil {
		panic(fmt.Sprintf("route: the built-in rules are invalid: %v", err)) // caught by the tests
	}
	return r
}

// Load reads the rules file at path.
func Load(path string) (*Router, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read routes file: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes rules from data, strictly: unknown fields, a second JSON
// value and invalid rules are errors that name src (the file) and the rule.
func Parse(src string, data []byte) (*Router, error) {
	var top struct {
		Default *string           `json:"default"`
		Routes  []json.RawMessage `json:"routes"`
	}
	if err := decodeStrict(data, &top); err != nil {
		return nil, fmt.Errorf("routes file %s: %w", src, err)
	}
	f := File{Default: General}
	if top.Default != nil {
		if err := checkName(*top.Default); err != nil {
			return nil, fmt.Errorf("routes file %s: default %q: %w", src, *top.Default, err)
		}
		f.Default = *top.Default
	}
	for i, raw := range top.Routes {
		var r Rule
		if err := decodeStrict(raw, &r); err != nil {
			return nil, fmt.Errorf("routes file %s: routes[%d]: %w", src, i, err)
		}
		f.Routes = append(f.Routes, r)
	}
	r, err := New(f)
	if err != nil {
		return nil, fmt.Errorf("routes file %s: %w", src, err)
	}
	return r, nil
}

func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("invalid JSON: more than one JSON value")
	}
	return nil
}

// New compiles rules. An empty Default means General.
func New(f File) (*Router, error) {
	r := &Router{fallback: f.Default}
	if r.fallback == "" {
		r.fallback = General
	}
	if err := checkName(r.fallback); err != nil {
		return nil, fmt.Errorf("default %q: %w", r.fallback, err)
	}
	if len(f.Routes) == 0 {
		return nil, errors.New("routes: at least one route is required")
	}
	for i, rule := range f.Routes {
		compiled, err := compile(rule)
		if err != nil {
			return nil, fmt.Errorf("routes[%d] %q: %w", i, rule.Name, err)
		}
		if slices.Contains(r.names, rule.Name) {
			return nil, fmt.Errorf("routes[%d] %q: the name is used by an earlier route", i, rule.Name)
		}
		r.routes = append(r.routes, compiled)
		r.names = append(r.names, rule.Name)
	}
	if !slices.Contains(r.names, r.fallback) {
		r.names = append(r.names, r.fallback)
	}
	return r, nil
}

func checkName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("a name is 1-%d characters", MaxNameLen)
	}
	for i, c := range name {
		if !(c >= 'a' && c <= 'z' || i > 0 && (c >= '0' && c <= '9' || c == '_')) {
			return errors.New("a name is made of a-z, 0-9 and _, and starts with a letter")
		}
	}
	if name == Other {
		return fmt.Errorf("%q is reserved for metrics of unknown routes", Other)
	}
	return nil
}

func compile(rule Rule) (route, error) {
	rt := route{name: rule.Name}
	if err := checkName(rule.Name); err != nil {
		return rt, fmt.Errorf("name: %w", err)
	}
	if len(rule.Keywords) == 0 && len(rule.Patterns) == 0 {
		return rt, errors.New("a route needs at least one keyword or pattern")
	}
	var err error
	if rt.keywords, err = compilePhrases("keywords", rule.Keywords); err != nil {
		return rt, err
	}
	if rt.except, err = compilePhrases("except", rule.Except); err != nil {
		return rt, err
	}
	for i, p := range rule.Patterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return rt, fmt.Errorf("patterns[%d] %q: %w", i, p, err)
		}
		if re.MatchString("") {
			return rt, fmt.Errorf("patterns[%d] %q: matches the empty text, so every message", i, p)
		}
		rt.patterns = append(rt.patterns, re)
	}
	// One pass over the text for all patterns instead of one per pattern;
	// flags such as (?i) stay inside each pattern's group.
	if len(rt.patterns) > 1 {
		if re, err := regexp.Compile("(?:" + strings.Join(rule.Patterns, ")|(?:") + ")"); err == nil {
			rt.patterns = []*regexp.Regexp{re}
		}
	}
	return rt, nil
}

// Detect returns the route of a message: the hint if it names a known route,
// else the first route whose rules match text, else the default.
func (r *Router) Detect(text, hint string) string {
	if name, ok := r.lookup(hint); ok {
		return name
	}
	if name, ok := r.Match(text); ok {
		return name
	}
	return r.fallback
}

// Match returns the route of the first rule that text matches; false when
// no rule does (Detect would give the default).
func (r *Router) Match(text string) (string, bool) {
	if len(text) == 0 {
		return "", false
	}
	var words []string // split once, on first need
	for i := range r.routes {
		rt := &r.routes[i]
		// Keywords first: they are much cheaper than regular expressions.
		if len(rt.keywords.byFirst) > 0 || len(rt.keywords.prefixed) > 0 {
			if words == nil {
				words = splitWords(text)
			}
			if rt.keywords.matchOutside(words, rt.except.cover(words)) {
				return rt.name, true
			}
		}
		for _, re := range rt.patterns {
			if re.MatchString(text) {
				return rt.name, true
			}
		}
	}
	return "", false
}

// Hint returns the known route a route_hint names (ignoring case and
// surrounding spaces); false for an empty or unknown hint.
func (r *Router) Hint(hint string) (string, bool) { return r.lookup(hint) }

// Names returns the known route names: the routes in rule order, then the
// default if no route has its name.
func (r *Router) Names() []string { return slices.Clone(r.names) }

// Default returns the route of messages no rule matches.
func (r *Router) Default() string { return r.fallback }

// Known reports whether name is a known route (exactly as Detect returns it).
func (r *Router) Known(name string) bool { return slices.Contains(r.names, name) }

// Fold returns name if it is a known route and Other if not, for metric
// dimensions.
func (r *Router) Fold(name string) string {
	if r.Known(name) {
		return name
	}
	return Other
}

// lookup finds a known route by a hint, ignoring case and surrounding space.
func (r *Router) lookup(hint string) (string, bool) {
	hint = strings.TrimSpace(hint)
	if hint == "" {
		return "", false
	}
	for _, n := range r.names {
		if strings.EqualFold(n, hint) {
			return n, true
		}
	}
	return "", false
}

// phrase is a keyword as a sequence of lower-case words; with prefix set,
// the last word matches every word starting with it.
type phrase struct {
	words  []string
	prefix bool
}

// phrases indexes keywords by their first word.
type phrases struct {
	byFirst  map[string][]phrase // the first word must equal the key
	prefixed []phrase            // one-word keywords ending in *
}

func compilePhrases(field string, keywords []string) (phrases, error) {
	ps := phrases{byFirst: map[string][]phrase{}}
	for i, kw := range keywords {
		p, err := parsePhrase(kw)
		if err != nil {
			return ps, fmt.Errorf("%s[%d] %q: %w", field, i, kw, err)
		}
		if p.prefix && len(p.words) == 1 {
			ps.prefixed = append(ps.prefixed, p)
		} else {
			ps.byFirst[p.words[0]] = append(ps.byFirst[p.words[0]], p)
		}
	}
	return ps, nil
}

func parsePhrase(kw string) (phrase, error) {
	s := strings.TrimSpace(kw)
	var p phrase
	if rest, ok := strings.CutSuffix(s, "*"); ok {
		p.prefix, s = true, rest
	}
	if strings.Contains(s, "*") {
		return p, errors.New("* is allowed only at the end of a keyword")
	}
	if p.prefix && (s == "" || !isWordRune(lastRune(s))) {
		return p, errors.New("* must follow a letter or digit")
	}
	p.words = splitWords(s)
	if len(p.words) == 0 {
		return p, errors.New("a keyword needs at least one letter or digit")
	}
	return p, nil
}

func lastRune(s string) rune {
	r, _ := utf8.DecodeLastRuneInString(s)
	return r
}

// at returns the number of words of the longest phrase matching words[i:],
// or 0.
func (ps *phrases) at(words []string, i int) int {
	n := 0
	for _, p := range ps.byFirst[words[i]] {
		if p.matches(words[i:]) {
			n = max(n, len(p.words))
		}
	}
	for _, p := range ps.prefixed {
		if strings.HasPrefix(words[i], p.words[0]) {
			n = max(n, 1)
		}
	}
	return n
}

func (p phrase) matches(words []string) bool {
	if len(words) < len(p.words) {
		return false
	}
	last := len(p.words) - 1
	for j, w := range p.words[:last] {
		if words[j] != w {
			return false
		}
	}
	if p.prefix {
		return strings.HasPrefix(words[last], p.words[last])
	}
	return words[last] == p.words[last]
}

// cover marks the words that are part of a match; nil when none are.
func (ps *phrases) cover(words []string) []bool {
	var covered []bool
	for i := range words {
		if n := ps.at(words, i); n > 0 {
			if covered == nil {
				covered = make([]bool, len(words))
			}
			for j := i; j < i+n; j++ {
				covered[j] = true
			}
		}
	}
	return covered
}

// matchOutside reports whether a phrase matches words none of which are
// covered.
func (ps *phrases) matchOutside(words []string, covered []bool) bool {
	for i := range words {
		if covered != nil && covered[i] {
			continue
		}
		if ps.byFirst != nil {
			for _, p := range ps.byFirst[words[i]] {
				if p.matches(words[i:]) && (covered == nil || !slices.Contains(covered[i:i+len(p.words)], true)) {
					return true
				}
			}
		}
		for _, p := range ps.prefixed {
			if strings.HasPrefix(words[i], p.words[0]) {
				return true
			}
		}
	}
	return false
}

// splitWords returns the lower-cased words of s: runs of letters, digits
// and combining marks.
func splitWords(s string) []string {
	lower := strings.ToLower(s)
	words := make([]string, 0, len(lower)/6+1)
	start := -1
	for i, c := range lower {
		switch {
		case isWordRune(c):
			if start < 0 {
				start = i
			}
		case start >= 0:
			words = append(words, lower[start:i])
			start = -1
		}
	}
	if start >= 0 {
		words = append(words, lower[start:])
	}
	return words
}

func isWordRune(c rune) bool {
	if c < utf8.RuneSelf {
		return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z'
	}
	return unicode.IsLetter(c) || unicode.IsDigit(c) || unicode.Is(unicode.Mn, c)
}
