package cwtest

import (
	"math"
	"slices"
	"strings"
	"time"
)

// Dims writes dimensions as name/value pairs in canonical form:
// "Name=Value" sorted by name, joined with commas; "" for none.
// Dims("Route", "general") is "Route=general".
func Dims(kv ...string) string {
	if len(kv)%2 != 0 {
		panic("cwtest.Dims: odd number of arguments")
	}
	pairs := make([]string, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		pairs = append(pairs, kv[i]+"="+kv[i+1])
	}
	slices.Sort(pairs)
	return strings.Join(pairs, ",")
}

// Key names one metric stream at one timestamp (zero when the data had no
// timestamp).
type Key struct {
	Namespace  string
	MetricName string
	Dimensions string // canonical, see Dims
	Timestamp  time.Time
}

// Aggregate is what CloudWatch computes from the data of one Key: Value
// counts as one sample, Values/Counts as their samples, StatisticValues as
// its set.
type Aggregate struct {
	SampleCount, Sum, Minimum, Maximum float64
	// Distribution maps each value to its count, from Value and
	// Values/Counts data (StatisticValues carry no distribution).
	Distribution map[float64]float64
	// Data is the number of data merged; StatisticSets how many of them
	// were StatisticValues.
	Data, StatisticSets int
	// Units lists the units seen.
	Units []string
}

func (a *Aggregate) addSample(v, n float64) {
	if a.SampleCount == 0 || v < a.Minimum {
		a.Minimum = v
	}
	if a.SampleCount == 0 || v > a.Maximum {
		a.Maximum = v
	}
	a.SampleCount += n
	a.Sum += v * n
	if a.Distribution == nil {
		a.Distribution = map[float64]float64{}
	}
	a.Distribution[v] += n
}

func (a *Aggregate) add(d Datum) {
	a.Data++
	if !slices.Contains(a.Units, d.Unit) {
		a.Units = append(a.Units, d.Unit)
	}
	if d.Value != nil {
		a.addSample(*d.Value, 1)
	}
	for i, v := range d.Values {
		n := 1.0
		if d.Counts != nil {
			n = d.Counts[i]
		}
		a.addSample(v, n)
	}
	if sv := d.StatisticValues; sv != nil {
		a.StatisticSets++
		if a.SampleCount == 0 || sv.Minimum < a.Minimum {
			a.Minimum = sv.Minimum
		}
		if a.SampleCount == 0 || sv.Maximum > a.Maximum {
			a.Maximum = sv.Maximum
		}
		a.SampleCount += sv.SampleCount
		a.Sum += sv.Sum
	}
}

// merge adds o into a.
func (a *Aggregate) merge(o Aggregate) {
	if o.SampleCount == 0 {
		return
	}
	if a.SampleCount == 0 || o.Minimum < a.Minimum {
		a.Minimum = o.Minimum
	}
	if a.SampleCount == 0 || o.Maximum > a.Maximum {
		a.Maximum = o.Maximum
	}
	a.SampleCount += o.SampleCount
	a.Sum += o.Sum
	a.Data += o.Data
	a.StatisticSets += o.StatisticSets
	for v, n := range o.Distribution {
		if a.Distribution == nil {
			a.Distribution = map[float64]float64{}
		}
		a.Distribution[v] += n
	}
	for _, u := range o.Units {
		if !slices.Contains(a.Units, u) {
			a.Units = append(a.Units, u)
		}
	}
}

// Percentile is the p-th percentile (0 < p ≤ 100) of the distribution the
// way CloudWatch computes it from raw values: the smallest value with at
// least p% of the samples at or below it. NaN without a distribution.
func (a Aggregate) Percentile(p float64) float64 {
	if len(a.Distribution) == 0 {
		return math.NaN()
	}
	vals := make([]float64, 0, len(a.Distribution))
	var total float64
	for v, n := range a.Distribution {
		vals = append(vals, v)
		total += n
	}
	slices.Sort(vals)
	rank := math.Ceil(p / 100 * total)
	var seen float64
	for _, v := range vals {
		seen += a.Distribution[v]
		if seen >= rank {
			return v
		}
	}
	return vals[len(vals)-1]
}

// Aggregates returns the aggregate of every Key of the accepted calls.
func (s *Server) Aggregates() map[Key]Aggregate {
	out := map[Key]Aggregate{}
	for _, c := range s.Calls() {
		for _, d := range c.Data {
			k := Key{Namespace: c.Namespace, MetricName: d.MetricName, Dimensions: d.Dims()}
			if d.Timestamp != nil {
				k.Timestamp = *d.Timestamp
			}
			a := out[k]
			a.add(d)
			out[k] = a
		}
	}
	return out
}

// Total returns the aggregate of one metric stream over all timestamps;
// dims is canonical (see Dims).
func (s *Server) Total(namespace, name, dims string) Aggregate {
	var t Aggregate
	for k, a := range s.Aggregates() {
		if k.Namespace == namespace && k.MetricName == name && k.Dimensions == dims {
			t.merge(a)
		}
	}
	return t
}
