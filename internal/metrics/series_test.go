package metrics

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestBucketOfIsMonotoneContiguousAndNarrow(t *testing.T) {
	t.Parallel()
	check := func(ns int64) {
		t.Helper()
		b, next := bucketOf(ns), bucketOf(ns+1)
		if d := next - b; d != 0 && d != 1 {
			t.Fatalf("bucketOf(%d)=%d, bucketOf(%d)=%d: buckets must be contiguous", ns, b, ns+1, next)
		}
	}
	for ns := int64(0); ns < 1<<17; ns++ {
		check(ns)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		check(r.Int64N(math.MaxInt64 - 1))
	}
	if got := bucketOf(math.MaxInt64); got != 3711 {
		t.Errorf("largest bucket = %d, want 3711", got)
	}
	// Every bucket past the linear part is at most 1/64 of its values wide.
	for e := subBits + 2; e < 63; e++ {
		lo := int64(1) << (e - 1)
		width := int64(1) << (e - 1 - subBits)
		if float64(width)/float64(lo) > 1.0/64 {
			t.Fatalf("buckets of 2^%d are %d wide: more than 1/64", e-1, width)
		}
		if bucketOf(lo+width-1) != bucketOf(lo) || bucketOf(lo+width) != bucketOf(lo)+1 {
			t.Fatalf("bucket at 2^%d is not %d wide", e-1, width)
		}
	}
}

// checkDistribution checks what a datum built from vals says against the
// values themselves.
func checkDistribution(t *testing.T, vals []int64, s *series) {
	t.Helper()
	values, counts := s.distribution()
	if len(values) != len(counts) || len(values) == 0 || len(values) > MaxValuesPerDatum {
		t.Fatalf("%d values and %d counts; want 1 to %d of each", len(values), len(counts), MaxValuesPerDatum)
	}
	if !slices.IsSorted(values) || len(slices.Compact(slices.Clone(values))) != len(values) {
		t.Fatalf("values not ascending and distinct: %v", values)
	}
	var n, sum, want float64
	for i, v := range values {
		n += counts[i]
		sum += v * counts[i]
	}
	lo, hi := slices.Min(vals), slices.Max(vals)
	for _, v := range vals {
		want += ms(v)
	}
	if n != float64(len(vals)) {
		t.Errorf("SampleCount %v, want %d", n, len(vals))
	}
	if values[0] != ms(lo) || values[len(values)-1] != ms(hi) {
		t.Errorf("Minimum, Maximum = %v, %v; want exactly %v, %v", values[0], values[len(values)-1], ms(lo), ms(hi))
	}
	if math.Abs(sum-want) > 1e-9*math.Abs(want)+1e-12 {
		t.Errorf("Sum %v, want %v", sum, want)
	}
	distinct := slices.Compact(slices.Sorted(slices.Values(vals)))
	if len(distinct) <= MaxValuesPerDatum {
		if len(values) != len(distinct) {
			t.Fatalf("%d distinct values sent as %d: want the exact distribution", len(distinct), len(values))
		}
		for i, v := range distinct {
			if values[i] != ms(v) {
				t.Fatalf("value %d is %v, want %v", i, values[i], ms(v))
			}
		}
	}
}

func TestDistributionExactThenBucketed(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		name string
		gen  func() int64
		n    int
	}{
		{"one value", func() int64 { return 12_345_678 }, 1},
		{"one value many times", func() int64 { return 7_000_000 }, 1000},
		{"zero durations", func() int64 { return 0 }, 10},
		{"150 distinct", func() int64 { return int64(r.IntN(150)) * 1_000_003 }, 5000},
		{"151 distinct", func() int64 { return int64(r.IntN(151)) * 1_000_003 }, 5000},
		{"narrow", func() int64 { return 10_000_000 + r.Int64N(100_000) }, 20000},
		{"log-uniform 1ms-10s", func() int64 { return int64(math.Exp(r.Float64()*math.Log(1e4)) * 1e6) }, 50000},
		{"nanoseconds to a day", func() int64 { return int64(math.Exp(r.Float64() * math.Log(float64(MaxDuration)))) }, 50000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vals := make([]int64, tc.n)
			var s series
			for i := range vals {
				vals[i] = tc.gen()
				s.addDuration(vals[i])
			}
			checkDistribution(t, vals, &s)
		})
	}
}

func TestMergeOfShardsEqualsOneStream(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(5, 6))
	for _, distinct := range []int{40, 150, 2000, 1 << 30} {
		var vals []int64
		shards := make([]series, 8)
		for range 30000 {
			v := int64(math.Exp(r.Float64()*math.Log(5e3))*1e6) % int64(distinct*1000+1)
			vals = append(vals, v)
			shards[r.IntN(len(shards))].addDuration(v)
		}
		var p series
		for i := range shards {
			p.merge(&shards[i])
			p.pack()
		}
		checkDistribution(t, vals, &p)
		if len(p.groups) > maxGroups {
			t.Fatalf("pending stream keeps %d groups, more than %d", len(p.groups), maxGroups)
		}
	}
}

// TestPercentilesWithinGroupWidth checks that bucketing keeps percentiles
// close: for values spread over four powers of ten (13 powers of two), the
// p50/p95/p99 that CloudWatch computes from the datum are within 10% of
// the true ones.
func TestPercentilesWithinGroupWidth(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(7, 8))
	vals := make([]int64, 100000)
	var s series
	for i := range vals {
		vals[i] = int64(math.Exp(r.NormFloat64()*1.2+math.Log(40)) * 1e6) // log-normal around 40 ms
		s.addDuration(vals[i])
	}
	slices.Sort(vals)
	values, counts := s.distribution()
	for _, p := range []float64{50, 95, 99} {
		rank := math.Ceil(p / 100 * float64(len(vals)))
		want := ms(vals[int(rank)-1])
		var seen float64
		var got float64
		for i, v := range values {
			seen += counts[i]
			if seen >= rank {
				got = v
				break
			}
		}
		if rel := math.Abs(got-want) / want; rel > 0.10 {
			t.Errorf("p%v = %v, true %v: off by %.1f%%", p, got, want, 100*rel)
		}
	}
}

func FuzzDistribution(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.Add(make([]byte, 8*300))
	f.Fuzz(func(t *testing.T, p []byte) {
		if len(p) < 8 {
			return
		}
		var vals []int64
		var a, b series
		for i := 0; i+8 <= len(p); i += 8 {
			v := int64(binary.LittleEndian.Uint64(p[i:])>>(p[i]%60)) % int64(MaxDuration+1)
			vals = append(vals, v)
			if p[i]%2 == 0 {
				a.addDuration(v)
			} else {
				b.addDuration(v)
			}
		}
		a.merge(&b)
		checkDistribution(t, vals, &a)
	})
}
