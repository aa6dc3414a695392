package cloudwatch_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/chatprep/chatprep/internal/metrics"
)

// widget is the part of a dashboard widget the test reads.
type widget struct {
	Type       string `json:"type"`
	X          int    `json:"x"`
	Y          int    `json:"y"`
	Width      int    `json:"width"`
	Height     int    `json:"height"`
	Properties struct {
		Title    string              `json:"title"`
		Region   string              `json:"region"`
		Markdown string              `json:"markdown"`
		Metrics  [][]json.RawMessage `json:"metrics"`
	} `json:"properties"`
}

// row is one line of a metric widget: a metric (namespace, name, dimension
// pairs, options) or an expression (options only).
type row struct {
	namespace, name string
	dims            []string
	opts            struct {
		Expression string `json:"expression"`
		ID         string `json:"id"`
		Stat       string `json:"stat"`
		Label      string `json:"label"`
		Visible    *bool  `json:"visible"`
	}
}

func parseRow(t *testing.T, w string, raw []json.RawMessage) row {
	t.Helper()
	var r row
	var strs []string
	for i, el := range raw {
		var s string
		if json.Unmarshal(el, &s) == nil {
			strs = append(strs, s)
			continue
		}
		if i != len(raw)-1 {
			t.Fatalf("%s: options must come last in a metric row: %s", w, el)
		}
		if err := json.Unmarshal(el, &r.opts); err != nil {
			t.Fatalf("%s: metric row options %s: %v", w, el, err)
		}
	}
	if len(strs) > 0 {
		if len(strs) < 2 || len(strs)%2 != 0 {
			t.Fatalf("%s: metric row %v: want namespace, name and dimension pairs", w, strs)
		}
		r.namespace, r.name, r.dims = strs[0], strs[1], strs[2:]
	}
	return r
}

var (
	searchRE = regexp.MustCompile(`SEARCH\('\{([^}]*)\} MetricName="([^"]+)"', '([^']+)', 60\)`)
	statRE   = regexp.MustCompile(`^(Sum|SampleCount|Average|Minimum|Maximum|p(50|95|99))$`)
	idRE     = regexp.MustCompile(`^[a-z][a-zA-Z0-9_]*$`)
	wordRE   = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)
)

// TestDashboard checks deploy/cloudwatch/dashboard.json: a valid dashboard
// body that references only the contract's metrics, in namespace ChatPrep,
// with the Route dimension exactly on [Route] metrics, and AWS/SQS metrics
// of the contract's queues, and that has the graphs the issues ask for:
// the durations, throughput and rates, the input queue's depth and the age
// of its oldest message, and the dead-letter queue's depth.
func TestDashboard(t *testing.T) {
	t.Parallel()
	p, err := os.ReadFile("dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Widgets []widget `json:"widgets"`
	}
	if err := json.Unmarshal(p, &body); err != nil {
		t.Fatalf("dashboard.json does not parse: %v", err)
	}
	contract := map[string]metrics.Metric{}
	for _, m := range metrics.Metrics() {
		contract[m.Name] = m
	}

	used := map[string][]string{} // metric → stats graphed
	sqsUsed := map[string]bool{}  // "metric queue" graphed
	for _, w := range body.Widgets {
		if w.Width < 1 || w.X < 0 || w.X+w.Width > 24 || w.Height < 1 || w.Y < 0 {
			t.Errorf("widget %q: x %d width %d outside the 24-column grid", w.Properties.Title, w.X, w.Width)
		}
		switch w.Type {
		case "text":
			if w.Properties.Markdown == "" {
				t.Errorf("text widget without markdown")
			}
			continue
		case "metric":
		default:
			t.Errorf("widget type %q", w.Type)
			continue
		}
		name := w.Properties.Title
		if name == "" || w.Properties.Region == "" || len(w.Properties.Metrics) == 0 {
			t.Errorf("metric widget %q needs a title, a region and metrics", name)
		}
		ids := map[string]bool{}
		var exprs []string
		for _, raw := range w.Properties.Metrics {
			r := parseRow(t, name, raw)
			if id := r.opts.ID; id != "" {
				if !idRE.MatchString(id) || ids[id] {
					t.Errorf("%s: id %q is invalid or repeated", name, id)
				}
				ids[id] = true
			}
			if r.opts.Expression != "" {
				exprs = append(exprs, r.opts.Expression)
				for _, m := range searchRE.FindAllStringSubmatch(r.opts.Expression, -1) {
					schema, metric, stat := m[1], m[2], m[3]
					c, ok := contract[metric]
					if !ok {
						t.Errorf("%s: SEARCH for %q, not a contract metric", name, metric)
						continue
					}
					if want := "ChatPrep,Route"; !c.Route || schema != want {
						t.Errorf("%s: SEARCH schema {%s} for %s; want {%s} on [Route] metrics only", name, schema, metric, want)
					}
					if !statRE.MatchString(stat) {
						t.Errorf("%s: stat %q", name, stat)
					}
					used[metric] = append(used[metric], stat)
				}
				if strings.Contains(r.opts.Expression, "SEARCH(") && len(searchRE.FindAllString(r.opts.Expression, -1)) != strings.Count(r.opts.Expression, "SEARCH(") {
					t.Errorf("%s: a SEARCH the test cannot read: %s", name, r.opts.Expression)
				}
				continue
			}
			dims := map[string]string{}
			for i := 0; i+1 < len(r.dims); i += 2 {
				dims[r.dims[i]] = r.dims[i+1]
			}
			if err := checkMetric(r.namespace, r.name, dims); err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if !statRE.MatchString(r.opts.Stat) {
				t.Errorf("%s: %s with stat %q", name, r.name, r.opts.Stat)
			}
			if r.namespace == "AWS/SQS" {
				sqsUsed[r.name+" "+dims["QueueName"]] = true
				continue
			}
			used[r.name] = append(used[r.name], r.opts.Stat)
		}
		// Expressions may only name ids of their own widget (and functions).
		for _, e := range exprs {
			bare := searchRE.ReplaceAllString(e, "")
			for _, word := range wordRE.FindAllString(bare, -1) {
				if word == strings.ToUpper(word) {
					continue // a function: SUM, FILL, …
				}
				if !ids[word] {
					t.Errorf("%s: expression %q names %q, not an id of the widget", name, e, word)
				}
			}
		}
	}

	for _, m := range []string{metrics.MessageHistoryDuration, metrics.RelevanceSearchDuration, metrics.HandlerTotalDuration} {
		for _, p := range []string{"p50", "p95", "p99"} {
			if !slices.Contains(used[m], p) {
				t.Errorf("no %s graph of %s", p, m)
			}
		}
	}
	qs := queueNames()
	for _, want := range []string{
		"ApproximateNumberOfMessagesVisible " + qs["input"], // depth
		"ApproximateAgeOfOldestMessage " + qs["input"],
		"ApproximateNumberOfMessagesVisible " + qs["dlq"], // dead-letter depth
	} {
		if !sqsUsed[want] {
			t.Errorf("no SQS widget graphs %s", want)
		}
	}
	for _, m := range []string{metrics.MessagesProcessed, metrics.MessagesDegraded, metrics.MessagesRejected} {
		if !slices.Contains(used[m], "Sum") {
			t.Errorf("no Sum of %s (throughput and rates need it)", m)
		}
	}
}
