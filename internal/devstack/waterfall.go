package devstack

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// waterfallNotes are the tags the waterfall shows after a span's bar, in
// this order: chatprep's attributes (internal/tracing).
var waterfallNotes = []string{"event.id", "chat.id", "event.type", "route", "muted", "degraded", "cancelled", "receive_count"}

// Waterfall draws the trace in the terminal, the picture a tracing UI would
// show: one line per span, children under their parent in start order,
// each span's bar on the trace's time line (width columns), its duration,
// its error and chatprep's attributes. A span's queue wait (queue_wait_ms:
// sent to received) is drawn as ░ before its bar; when it is longer than
// the rest of the trace (a backlog), the time line starts at the first span
// instead, so that the work stays readable, and ◀ marks the wait. A parent
// that is not in the trace (a producer that does not export its spans) is
// named on top.
func (t *TraceData) Waterfall(w io.Writer, width int) {
	width = max(width, 10)
	if len(t.Spans) == 0 {
		fmt.Fprintf(w, "trace %s: no spans\n", t.ID)
		return
	}
	byID := map[string]SpanData{}
	children := map[string][]SpanData{}
	for _, s := range t.Spans {
		byID[s.SpanID] = s
	}
	var roots []SpanData
	for _, s := range t.Spans {
		if _, ok := byID[s.ParentID]; ok {
			children[s.ParentID] = append(children[s.ParentID], s)
		} else {
			roots = append(roots, s)
		}
	}
	byStart := func(a, b SpanData) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.Operation, b.Operation))
	}
	slices.SortFunc(roots, byStart)

	from, to := roots[0].Start, roots[0].Start
	waitFrom := from // the first queue wait's start
	nameWidth, serviceWidth := 0, 0
	var walk func(s SpanData, depth int)
	walk = func(s SpanData, depth int) {
		if s.Start.Before(from) {
			from = s.Start
		}
		if start := s.Start.Add(-queueWait(s)); start.Before(waitFrom) {
			waitFrom = start
		}
		if end := s.Start.Add(s.Duration); end.After(to) {
			to = end
		}
		nameWidth = max(nameWidth, 2*depth+len(s.Operation))
		serviceWidth = max(serviceWidth, len(s.Service))
		slices.SortFunc(children[s.SpanID], byStart)
		for _, c := range children[s.SpanID] {
			walk(c, depth+1)
		}
	}
	for _, r := range roots {
		walk(r, 0)
	}
	if waitFrom.Before(from) && from.Sub(waitFrom) <= to.Sub(from) {
		from = waitFrom // the waits fit
	}
	total := max(to.Sub(from), time.Microsecond)
	col := func(at time.Time) float64 { return float64(at.Sub(from)) / float64(total) * float64(width) }

	services := map[string]bool{}
	for _, s := range t.Spans {
		services[s.Service] = true
	}
	fmt.Fprintf(w, "trace %s: %d spans, %s, %s\n", t.ID, len(t.Spans), plural(len(services), "service"), fmtDuration(total))
	for _, r := range roots {
		if r.ParentID != "" {
			fmt.Fprintf(w, "  (%s continues span %s, which is not in this trace: its service did not export it)\n", r.Operation, r.ParentID)
		}
	}
	scale := fmt.Sprintf("%-*s%*s", width/2, "0", width-width/2, fmtDuration(total))
	fmt.Fprintf(w, "%-*s  %-*s  %s\n", serviceWidth, "", nameWidth, "", scale)

	var draw func(s SpanData, depth int)
	draw = func(s SpanData, depth int) {
		bar := []rune(strings.Repeat(" ", width))
		cell := func(x float64) int { return min(max(int(x), 0), width-1) }
		wait := queueWait(s)
		a, b := col(s.Start), col(s.Start.Add(s.Duration))
		if wait > 0 {
			w0 := col(s.Start.Add(-wait))
			for i := cell(w0); i < cell(a); i++ {
				bar[i] = '░'
			}
		}
		switch {
		case b-a < 0.5: // shorter than half a column: a thin mark where it is
			bar[cell((a+b)/2)] = '▏'
		case b-a < 1:
			bar[cell((a+b)/2)] = '█'
		default:
			for i := cell(a); i < int(math.Ceil(b)) && i < width; i++ {
				bar[i] = '█'
			}
		}
		if wait > 0 && col(s.Start.Add(-wait)) < 0 {
			bar[0] = '◀' // the wait began before the time line
		}
		var notes []string
		if desc, failed := s.Error(); failed {
			notes = append(notes, "ERROR "+desc)
		}
		if wait > 0 {
			notes = append(notes, "queue wait "+fmtDuration(wait))
		}
		for _, k := range waterfallNotes {
			if v, ok := s.Tags[k]; ok {
				notes = append(notes, fmt.Sprintf("%s=%v", k, v))
			}
		}
		name := strings.Repeat("  ", depth) + s.Operation
		fmt.Fprintf(w, "%-*s  %-*s  %s %9s  %s\n", serviceWidth, s.Service, nameWidth, name, string(bar), fmtDuration(s.Duration), strings.Join(notes, "  "))
		for _, c := range children[s.SpanID] {
			draw(c, depth+1)
		}
	}
	for _, r := range roots {
		draw(r, 0)
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// queueWait is a span's queue_wait_ms tag as a duration.
func queueWait(s SpanData) time.Duration {
	ms, _ := s.Tags["queue_wait_ms"].(float64)
	return time.Duration(ms * float64(time.Millisecond))
}

func fmtDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
}
