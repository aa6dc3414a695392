// Package refs finds the ERP references a chat message mentions: the
// documents of Odoo's default numbering (CONTRACT.md's built-in kinds).
//
//	sale_order      S00042         (S and at least 5 digits)
//	invoice         INV/2026/00017 (INV/year/number, also RINV for credit notes)
//	delivery        WH/OUT/00005, WH/IN/00003 (a warehouse's out or in picking)
//	purchase_order  PO00012        (PO and at least 5 digits)
//
// A reference is matched whole (not inside a longer word or number) and
// kept as written, in upper case: Odoo's names are upper case, and "s00042"
// typed in lower case names the same order.
package refs

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Kinds of reference.
const (
	SaleOrder     = "sale_order"
	Invoice       = "invoice"
	Delivery      = "delivery"
	PurchaseOrder = "purchase_order"
)

// Ref is one reference found in a text.
type Ref struct {
	Ref  string // as Odoo names it, like "S00042"
	Kind string // one of the kinds above
}

// Find returns the references in text, in order of appearance, each once.
// A reference is a whole token: a run of letters, digits and slashes
// (whatever surrounds it is none of those), as Odoo writes its names. A
// hand-written scanner, not a regular expression: the worker reads every
// history text for references, and a regular expression with Unicode
// classes cost a third of a result's CPU there.
func Find(text string) []Ref {
	if !strings.ContainsAny(text, "0123456789") {
		return nil // every reference has digits: most texts end here, cheaply
	}
	var out []Ref
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		if !inToken(r) {
			i += size
			continue
		}
		j := i + size
		for j < len(text) {
			r, size := utf8.DecodeRuneInString(text[j:])
			if !inToken(r) {
				break
			}
			j += size
		}
		// Only a token with a digit, of a reference's length, can be one.
		if raw := text[i:j]; len(raw) >= 6 && len(raw) <= 64 && strings.ContainsAny(raw, "0123456789") {
			tok := strings.ToUpper(raw)
			if kind := kindOf(tok); kind != "" && !contains(out, tok) {
				out = append(out, Ref{Ref: tok, Kind: kind})
			}
		}
		i = j
	}
	return out
}

func inToken(r rune) bool { return r == '/' || unicode.IsLetter(r) || unicode.IsDigit(r) }

// kindOf is the kind of an upper-case token that is a whole reference, ""
// for none.
func kindOf(tok string) string {
	switch parts := strings.Split(tok, "/"); {
	case len(parts) == 1 && prefixDigits(tok, "PO", 5):
		return PurchaseOrder
	case len(parts) == 1 && prefixDigits(tok, "S", 5):
		return SaleOrder
	case len(parts) == 3 && (parts[0] == "INV" || parts[0] == "RINV" || parts[0] == "BILL") &&
		digits(parts[1]) == 4 && digits(parts[2]) >= 4:
		return Invoice
	case len(parts) == 3 && (parts[1] == "OUT" || parts[1] == "IN") && warehouse(parts[0]) && digits(parts[2]) >= 4:
		return Delivery
	}
	return ""
}

// prefixDigits tells whether s is prefix and at least n digits.
func prefixDigits(s, prefix string, n int) bool {
	rest, ok := strings.CutPrefix(s, prefix)
	return ok && digits(rest) >= n
}

// digits is len(s) when s is all ASCII digits, else 0.
func digits(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0
		}
	}
	return len(s)
}

// warehouse tells whether s is a warehouse's short name: an ASCII letter,
// then up to four ASCII letters or digits.
func warehouse(s string) bool {
	if len(s) < 1 || len(s) > 5 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func contains(rs []Ref, ref string) bool {
	for _, r := range rs {
		if r.Ref == ref {
			return true
		}
	}
	return false
}

// Encode is refs as the store keeps them: "kind:REF" joined by spaces
// (each one token of a whitespace-tokenized property, so a filter can ask
// for one); "" for none.
func Encode(rs []Ref) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.Kind + ":" + r.Ref
	}
	return strings.Join(parts, " ")
}

// Decode reads what Encode wrote; malformed parts are skipped.
func Decode(s string) []Ref {
	var out []Ref
	for p := range strings.FieldsSeq(s) {
		kind, ref, ok := strings.Cut(p, ":")
		if ok && kind != "" && ref != "" {
			out = append(out, Ref{Ref: ref, Kind: kind})
		}
	}
	return out
}
