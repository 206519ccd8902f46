package bench

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method, or 0 for no samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// latencies summarises samples: p50 and p99. It sorts samples in place.
func latencies(samples []time.Duration) (p50, p99 time.Duration) {
	slices.Sort(samples)
	return percentile(samples, 50), percentile(samples, 99)
}

// series is one figure measured once per round.
type series []float64

// median returns the median of the rounds (NaN for none).
func (s series) median() float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	c := slices.Clone(s)
	slices.Sort(c)
	if len(c)%2 == 1 {
		return c[len(c)/2]
	}
	return (c[len(c)/2-1] + c[len(c)/2]) / 2
}

// max returns the largest round (NaN for none).
func (s series) max() float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	return slices.Max(s)
}

// min returns the smallest round (NaN for none).
func (s series) min() float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	return slices.Min(s)
}

// durSeries is a duration measured once per round.
type durSeries []time.Duration

func (s durSeries) median() time.Duration { return time.Duration(s.floats().median()) }
func (s durSeries) min() time.Duration    { return time.Duration(s.floats().min()) }
func (s durSeries) max() time.Duration    { return time.Duration(s.floats().max()) }

func (s durSeries) floats() series {
	f := make(series, len(s))
	for i, d := range s {
		f[i] = float64(d)
	}
	return f
}

// fmtDuration prints d with three significant digits in a unit that suits
// it.
func fmtDuration(d time.Duration) string {
	switch {
	case d == math.MinInt64:
		return "–"
	case d < 0:
		return "-" + fmtDuration(-d)
	case d < time.Microsecond:
		return fmt.Sprintf("%d ns", d.Nanoseconds())
	case d < time.Millisecond:
		return sig3(float64(d)/float64(time.Microsecond)) + " µs"
	case d < time.Second:
		return sig3(float64(d)/float64(time.Millisecond)) + " ms"
	default:
		return sig3(d.Seconds()) + " s"
	}
}

// fmtDurRange prints the median of s with the range over rounds when there
// are several rounds.
func fmtDurRange(s durSeries) string {
	if len(s) == 0 {
		return "–"
	}
	if len(s) < 2 {
		return fmtDuration(s.median())
	}
	return fmt.Sprintf("%s (%s–%s)", fmtDuration(s.median()), fmtDuration(s.min()), fmtDuration(s.max()))
}

// fmtRate prints a per-second rate.
func fmtRate(r float64) string {
	if math.IsNaN(r) {
		return "–"
	}
	return sig3(r) + "/s"
}

// fmtRateRange prints the median of s with the range over rounds.
func fmtRateRange(s series) string {
	if len(s) < 2 {
		return fmtRate(s.median())
	}
	return fmt.Sprintf("%s (%s–%s)", fmtRate(s.median()), sig3(s.min()), sig3(s.max()))
}

// fmtRatio prints a/b as "×r", or "–" when it is undefined.
func fmtRatio(a, b float64) string {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return "–"
	}
	return "×" + sig3(a/b)
}

// fmtCount prints a count measured per round: the median, and every round
// when they differ.
func fmtCount(s series) string {
	if len(s) == 0 {
		return "–"
	}
	if s.min() == s.max() {
		return sig3(s[0])
	}
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = sig3(v)
	}
	return fmt.Sprintf("%s (%s)", sig3(s.median()), strings.Join(parts, ", "))
}

// fmtPercent prints a fraction as a percentage.
func fmtPercent(f float64) string {
	if math.IsNaN(f) {
		return "–"
	}
	return strconv.FormatFloat(100*f, 'f', 0, 64) + " %"
}

// sig3 prints v with about three significant digits, without an exponent,
// and whole numbers without decimals.
func sig3(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return "–"
	case a >= 100 || v == math.Trunc(v):
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}
