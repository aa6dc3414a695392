package metrics

import (
	"math/bits"
	"slices"
)

// How durations are kept: in integer nanoseconds, so that count, sum, minimum
// and maximum are exact. A stream's distinct values are kept as they are
// while there are at most MaxValuesPerDatum of them (CloudWatch then gets the
// exact distribution); past that they go into log-linear buckets, and a datum
// carries at most maxGroups runs of neighbouring buckets.
const (
	// subBits: each power of two is cut into 2^subBits buckets, so a bucket
	// is at most 1/64 (1.6%) of its values wide. Below 2^(subBits+1) ns every
	// nanosecond has its own bucket.
	subBits   = 6
	linearMax = 1 << (subBits + 1)
	// liveMaxBuckets bounds a stream's buckets while values are recorded:
	// past it, neighbouring buckets are merged (halving the resolution).
	// Only streams spanning more than eight powers of two in one minute get
	// there.
	liveMaxBuckets = 512
	// maxGroups is how many bucket runs a datum carries: two places of
	// MaxValuesPerDatum are kept for the exact minimum and maximum.
	maxGroups = MaxValuesPerDatum - 2
)

// bucketOf numbers the log-linear bucket of ns ≥ 0. Numbers grow with the
// value, and consecutive numbers cover adjacent ranges. The largest is 3711.
func bucketOf(ns int64) int {
	if ns < linearMax {
		return int(ns)
	}
	shift := bits.Len64(uint64(ns)) - (subBits + 1)
	top := int(ns >> shift) // in [2^subBits, 2^(subBits+1))
	return linearMax + (shift-1)<<subBits + top - 1<<subBits
}

// bucket is one bucket's share of a stream.
type bucket struct {
	n     uint64
	sumNS int64
}

// group is a run of buckets, lo to hi inclusive, as a datum sends it: one
// value, the mean of the run's values.
type group struct {
	lo, hi int
	n      uint64
	sumNS  int64
}

// series aggregates one metric stream (name and dimensions) over one minute.
// Counts use n and total; durations use the rest, in one of three forms:
// exact (at most MaxValuesPerDatum distinct values), buckets (while
// recording) or groups (once collected for sending, at most maxGroups).
// It is not safe for concurrent use: shards guard theirs with a mutex, and
// pending series belong to the flush.
type series struct {
	n     uint64  // values recorded (Count or Duration calls)
	total float64 // counts: the sum of the counts

	sumNS, minNS, maxNS int64
	exact               map[int64]uint64 // distinct values → occurrences
	buckets             map[int]bucket   // bucket number >> shift → its values
	shift               uint8
	groups              []group // sorted, disjoint
}

func (s *series) addCount(v float64) {
	s.n++
	s.total += v
}

func (s *series) addDuration(ns int64) {
	if s.n == 0 || ns < s.minNS {
		s.minNS = ns
	}
	if s.n == 0 || ns > s.maxNS {
		s.maxNS = ns
	}
	s.n++
	s.sumNS += ns
	if s.buckets == nil {
		if s.exact == nil {
			s.exact = make(map[int64]uint64, 8)
		}
		if _, ok := s.exact[ns]; ok || len(s.exact) < MaxValuesPerDatum {
			s.exact[ns]++
			return
		}
		s.buckets = make(map[int]bucket, 2*len(s.exact))
		for v, n := range s.exact {
			s.addBucket(bucketOf(v), n, v*int64(n))
		}
		s.exact = nil
	}
	s.addBucket(bucketOf(ns)>>s.shift, 1, ns)
	if len(s.buckets) > liveMaxBuckets {
		old := s.buckets
		s.buckets = make(map[int]bucket, len(old)/2+1)
		for k, b := range old {
			s.addBucket(k>>1, b.n, b.sumNS)
		}
		s.shift++
	}
}

func (s *series) addBucket(k int, n uint64, sumNS int64) {
	b := s.buckets[k]
	b.n += n
	b.sumNS += sumNS
	s.buckets[k] = b
}

// isCount tells a count stream from a duration stream that has values.
func (s *series) isCount() bool {
	return s.exact == nil && s.buckets == nil && s.groups == nil
}

// merge adds o's values to s; s and o are of the same metric. s ends up
// exact or in groups; o is not used afterwards.
func (s *series) merge(o *series) {
	switch {
	case o.n == 0:
		return
	case s.n == 0:
		*s = *o
		s.pack()
		return
	case o.isCount():
		s.n += o.n
		s.total += o.total
		return
	}
	s.minNS = min(s.minNS, o.minNS)
	s.maxNS = max(s.maxNS, o.maxNS)
	s.n += o.n
	s.sumNS += o.sumNS
	if s.exact != nil && o.exact != nil {
		union := len(s.exact)
		for v := range o.exact {
			if _, ok := s.exact[v]; !ok {
				union++
			}
		}
		if union <= MaxValuesPerDatum {
			for v, n := range o.exact {
				s.exact[v] += n
			}
			return
		}
	}
	a, b := s.runs(), o.runs()
	s.exact, s.buckets, s.shift = nil, nil, 0
	s.groups = pack(joinRuns(a, b), maxGroups)
}

// pack puts a bucketed stream into at most maxGroups groups.
func (s *series) pack() {
	if s.buckets != nil {
		s.groups = pack(s.runs(), maxGroups)
		s.buckets, s.shift = nil, 0
	}
}

// runs returns the stream's values as sorted, disjoint runs of buckets.
func (s *series) runs() []group {
	switch {
	case s.groups != nil:
		return s.groups
	case s.buckets != nil:
		out := make([]group, 0, len(s.buckets))
		for k, b := range s.buckets {
			out = append(out, group{lo: k << s.shift, hi: (k+1)<<s.shift - 1, n: b.n, sumNS: b.sumNS})
		}
		slices.SortFunc(out, func(x, y group) int { return x.lo - y.lo })
		return out
	}
	out := make([]group, 0, len(s.exact))
	for v, n := range s.exact {
		k := bucketOf(v)
		out = append(out, group{lo: k, hi: k, n: n, sumNS: v * int64(n)})
	}
	slices.SortFunc(out, func(x, y group) int { return x.lo - y.lo })
	return joinRuns(out, nil) // values sharing a bucket become one run
}

// joinRuns merges two sorted lists of runs into one sorted list of disjoint
// runs; overlapping runs become one.
func joinRuns(a, b []group) []group {
	all := slices.Concat(a, b)
	slices.SortFunc(all, func(x, y group) int { return x.lo - y.lo })
	out := all[:0]
	for _, g := range all {
		if k := len(out) - 1; k >= 0 && g.lo <= out[k].hi {
			out[k].hi = max(out[k].hi, g.hi)
			out[k].n += g.n
			out[k].sumNS += g.sumNS
			continue
		}
		out = append(out, g)
	}
	return out
}

// pack merges neighbouring runs until at most limit remain, as evenly as
// the buckets allow: it finds the smallest span (in buckets) such that
// packing runs greedily into groups no wider than that span needs at most
// limit groups. A group's relative width is then at most span/64.
func pack(runs []group, limit int) []group {
	if len(runs) <= limit {
		return runs
	}
	groups := func(span int, out []group) ([]group, int) {
		count := 0
		for i := 0; i < len(runs); {
			g := runs[i]
			for i++; i < len(runs) && runs[i].hi-g.lo < span; i++ {
				g.hi = runs[i].hi
				g.n += runs[i].n
				g.sumNS += runs[i].sumNS
			}
			count++
			if out != nil {
				out = append(out, g)
			}
		}
		return out, count
	}
	lo, hi := 1, runs[len(runs)-1].hi-runs[0].lo+1 // hi always fits in one group
	for lo < hi {
		mid := (lo + hi) / 2
		if _, n := groups(mid, nil); n <= limit {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	out, _ := groups(lo, make([]group, 0, limit))
	return out
}

// distribution returns the Values and Counts of a duration stream, in
// milliseconds, ascending, each value once, at most MaxValuesPerDatum.
//
// While the stream has at most MaxValuesPerDatum distinct values they are
// exact. Past that, each group of buckets is sent as the mean of its values,
// and the exact minimum and maximum are taken out of the first and last group
// as values of their own: CloudWatch's SampleCount, Minimum and Maximum of the
// datum are then exact, its Sum is exact up to float64 rounding, and a
// percentile is off by at most the width of the group it falls in.
func (s *series) distribution() (values, counts []float64) {
	if s.exact != nil {
		keys := make([]int64, 0, len(s.exact))
		for ns := range s.exact {
			keys = append(keys, ns)
		}
		slices.Sort(keys)
		values = make([]float64, len(keys))
		counts = make([]float64, len(keys))
		for i, ns := range keys {
			values[i] = ms(ns)
			counts[i] = float64(s.exact[ns])
		}
		return values, counts
	}
	s.pack()
	groups := slices.Clone(s.groups)
	// Take the extremes out: integer arithmetic, so a group that held only
	// the extreme is left with n == 0 and sumNS == 0 exactly.
	groups[0].n--
	groups[0].sumNS -= s.minNS
	last := len(groups) - 1
	groups[last].n--
	groups[last].sumNS -= s.maxNS

	values = make([]float64, 0, len(groups)+2)
	counts = make([]float64, 0, len(groups)+2)
	add := func(v, n float64) {
		if k := len(values) - 1; k >= 0 && values[k] == v {
			counts[k] += n
			return
		}
		values = append(values, v)
		counts = append(counts, n)
	}
	add(ms(s.minNS), 1)
	lo, hi := float64(s.minNS), float64(s.maxNS)
	for _, g := range groups {
		if g.n > 0 {
			mean := min(max(float64(g.sumNS)/float64(g.n), lo), hi)
			add(mean/1e6, float64(g.n))
		}
	}
	add(ms(s.maxNS), 1)
	return values, counts
}

// ms converts nanoseconds to milliseconds.
func ms(ns int64) float64 { return float64(ns) / 1e6 }
