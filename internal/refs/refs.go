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
	"regexp"
	"strings"
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

// pattern finds every kind at once; its groups tell the kind.
var pattern = regexp.MustCompile(`(?i)(?:^|[^\p{L}\p{N}/])(?:` +
	`(S\d{5,})|` + // 1: sale order
	`((?:R?INV|BILL)/\d{4}/\d{4,})|` + // 2: invoice (customer invoice, credit note, vendor bill)
	`([A-Z][A-Z0-9]{0,4}/(?:OUT|IN)/\d{4,})|` + // 3: delivery
	`(PO\d{5,})` + // 4: purchase order
	`)(?:$|[^\p{L}\p{N}/])`)

var kindOf = []string{1: SaleOrder, 2: Invoice, 3: Delivery, 4: PurchaseOrder}

// Find returns the references in text, in order of appearance, each once.
func Find(text string) []Ref {
	if !strings.ContainsAny(text, "0123456789") {
		return nil // every reference has digits: most texts end here, cheaply
	}
	var out []Ref
	// The pattern consumes the separator after a match, which may be the
	// one before the next: search again from the end of each reference.
	for rest := text; rest != ""; {
		m := pattern.FindStringSubmatchIndex(rest)
		if m == nil {
			break
		}
		end := m[1]
		for g := 1; g < len(kindOf); g++ {
			if m[2*g] >= 0 {
				r := Ref{Ref: strings.ToUpper(rest[m[2*g]:m[2*g+1]]), Kind: kindOf[g]}
				if !contains(out, r.Ref) {
					out = append(out, r)
				}
				end = m[2*g+1]
			}
		}
		rest = rest[end:]
	}
	return out
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
