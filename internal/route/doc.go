// Package route decides which route a user message belongs to: the built-in
// rules (`odoo_erp` for orders, quotations, invoices, deliveries, stock,
// products and Odoo document references, `general` for everything else), or
// the rules of a ROUTES_FILE that replaces them.
//
// # Rules file format
//
// A rules file is one JSON object; unknown fields are errors:
//
//	{
//	  "default": "general",
//	  "routes": [
//	    {
//	      "name": "odoo_erp",
//	      "keywords": ["invoice", "invoices", "invoic*", "sales order"],
//	      "patterns": ["(?i)\\bINV/\\d{4}/\\d{3,}\\b"],
//	      "except": ["in order to"]
//	    }
//	  ]
//	}
//
// The fields:
//
//   - "default" (optional, default "general") is the route of a message no
//     rule matches.
//   - "routes" (required, at least one) are tried in order; the first route
//     with a matching keyword or pattern wins.
//   - "name" (required): 1-64 characters of a-z, 0-9 and _, starting with a
//     letter; unique; "other" is reserved (metrics fold unknown routes into it).
//   - "keywords": matched against the words of the text, ignoring case. The
//     text is split into words (runs of letters, digits and combining marks;
//     everything else separates words), so "stock" matches "Stock?" and
//     "stock-out" but not "Stockholm" or "livestock". A keyword of several
//     words ("sales order") matches those words in a row, whatever separates
//     them. A trailing * matches every word that starts with what precedes
//     it ("invoic*": invoice, invoices, invoiced, invoicing).
//   - "patterns": Go regular expressions (RE2 syntax) searched in the text as
//     it is; start one with (?i) to ignore case.
//   - "except": keywords (same syntax) whose words cannot count for this
//     route's keywords: with "in order to", "in order to plan" does not match
//     the keyword "order". Patterns are not affected.
//
// A route needs at least one keyword or pattern. Errors name the file and the
// bad rule, for example:
//
//	routes file /etc/chatprep/routes.json: routes[1] "billing": patterns[0] "([0-9]": error parsing regexp: missing closing ): `([0-9]`
//
// The built-in rules are themselves such a file, builtin.json in this
// package: a starting point for a ROUTES_FILE. testdata/routes.example.json
// is a file with several routes.
//
// # Cost
//
// Detection is pure CPU: about 1-2 µs for a short message that a keyword
// matches, about 10 µs for a short message no rule matches (the regular
// expressions dominate), about 2 ms for the longest text the contract allows
// (16 KiB). BenchmarkDetect measures it.
//
// # Hints
//
// An event's route_hint that names a known route (any route of the rules or
// the default, ignoring case and surrounding spaces) wins over the rules; an
// unknown hint is ignored.
package route
