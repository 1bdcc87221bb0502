package experiment

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// DefaultAlpha is the significance level a report uses unless told otherwise:
// the conventional 5%, which with a two-sided test and a sample size fixed in
// advance calls a false winner in about one A/A experiment out of twenty.
const DefaultAlpha = 0.05

// DefaultLevel is the confidence level of the intervals a report shows (95%),
// the complement of DefaultAlpha so that an interval for a difference that
// excludes zero and a p-value below alpha usually tell the same story.
const DefaultLevel = 1 - DefaultAlpha

// Interval is a two-sided confidence interval [Lo, Hi]. Both ends are NaN when
// the interval is undefined (no data, or a level outside (0, 1)), so a report
// can print it as is and never shows an invented range.
type Interval struct {
	Lo, Hi float64
}

// Contains reports whether x lies in the closed interval; it is false for an
// undefined (NaN) interval, so a check never passes by accident.
func (i Interval) Contains(x float64) bool { return i.Lo <= x && x <= i.Hi }

// String formats the interval as "[lo, hi]" with %g, for logs and tests.
func (i Interval) String() string { return fmt.Sprintf("[%g, %g]", i.Lo, i.Hi) }

// nan is the undefined interval.
func nan() Interval { return Interval{math.NaN(), math.NaN()} }

// validLevel reports whether a confidence level or significance level is a
// probability strictly between 0 and 1 (NaN is not): gonum's quantiles panic
// outside [0, 1] and are infinite at its ends.
func validLevel(level float64) bool { return level > 0 && level < 1 }

// normalQuantile returns the standard normal quantile of p, which must be in
// (0, 1). A local value, not gonum's package-level UnitNormal, so nothing
// here depends on mutable state.
func normalQuantile(p float64) float64 {
	return distuv.Normal{Mu: 0, Sigma: 1}.Quantile(p)
}

// twoSidedNormal returns the two-sided p-value of a z statistic. It uses the
// lower tail at -|z| (erfc inside gonum) rather than 1-CDF(|z|), which would
// round small p-values to zero.
func twoSidedNormal(z float64) float64 {
	return 2 * distuv.Normal{Mu: 0, Sigma: 1}.CDF(-math.Abs(z))
}

// twoSidedT is twoSidedNormal for Student's t with df degrees of freedom.
func twoSidedT(t, df float64) float64 {
	return 2 * distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.CDF(-math.Abs(t))
}

// Proportion is a count of successes out of independent trials: clicks out of
// users shown a recommendation, purchasers out of users. Counts rather than a
// rate are kept because the interval and the tests need the sample size.
type Proportion struct {
	Successes, Trials int64
}

// Rate returns Successes/Trials, or NaN when there are no trials (a rate of
// nothing is undefined, not zero).
func (p Proportion) Rate() float64 {
	if p.Trials <= 0 {
		return math.NaN()
	}
	return float64(p.Successes) / float64(p.Trials)
}

// CI returns the Wilson score interval at the given confidence level (0.95
// for 95%). Wilson's interval is used rather than the textbook Wald interval
// (rate ± z·sqrt(rate(1-rate)/n)) because it keeps close to its nominal
// coverage at small counts and near 0 or 1, which is where click and
// conversion rates live: Wald collapses to [0, 0] for zero clicks and can
// leave [0, 1]; Wilson stays inside [0, 1] and is never empty.
//
// It is NaN when there are no trials, when Successes is outside [0, Trials],
// or when level is outside (0, 1). All successes (or none) is fine: the
// interval then ends at exactly 1 (or 0).
func (p Proportion) CI(level float64) Interval {
	if p.Trials <= 0 || p.Successes < 0 || p.Successes > p.Trials || !validLevel(level) {
		return nan()
	}
	n := float64(p.Trials)
	rate := p.Rate()
	z := normalQuantile(0.5 + level/2)
	z2 := z * z
	denom := 1 + z2/n
	center := (rate + z2/(2*n)) / denom
	half := z / denom * math.Sqrt(rate*(1-rate)/n+z2/(4*n*n))
	lo, hi := center-half, center+half
	// The exact ends at 0 and 1 come out within rounding; pin them so an
	// interval never leaves [0, 1] or misses a rate of exactly 0 or 1.
	if p.Successes == 0 {
		lo = 0
	}
	if p.Successes == p.Trials {
		hi = 1
	}
	return Interval{math.Max(0, lo), math.Min(1, hi)}
}

// Summary is the sufficient statistics of a sample for a t-test: its size,
// its mean and its unbiased (n-1) sample variance. It is what a report keeps
// per arm for a per-user value such as revenue; build it with Sample, or
// directly from stored aggregates.
type Summary struct {
	N    int64
	Mean float64
	// Var is the sample variance with Bessel's correction (divided by N-1),
	// as scipy's ttest_ind uses; NaN when N < 2.
	Var float64
}

// StdErr returns the standard error of the mean, sqrt(Var/N); NaN when
// N < 2, because one observation says nothing about spread.
func (s Summary) StdErr() float64 {
	if s.N < 2 {
		return math.NaN()
	}
	return math.Sqrt(s.Var / float64(s.N))
}

// CI returns the Student-t confidence interval for the mean at the given
// level: Mean ± t(level, N-1)·StdErr. The t rather than the normal quantile
// is used so small arms get honestly wider intervals; at report sizes the two
// agree. NaN when N < 2 or level is outside (0, 1); a sample with zero
// variance gets the zero-width interval [Mean, Mean], which is what the data
// say, though a t-test against it is undefined (see CompareMeans).
func (s Summary) CI(level float64) Interval {
	if s.N < 2 || !validLevel(level) || math.IsNaN(s.Var) || s.Var < 0 {
		return nan()
	}
	q := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(s.N - 1)}.Quantile(0.5 + level/2)
	half := q * s.StdErr()
	return Interval{s.Mean - half, s.Mean + half}
}

// Sample accumulates observations one at a time (Welford's algorithm) into a
// Summary, so a report can stream over per-user values without keeping them.
// Welford's update is used rather than summing x and x² because the latter
// cancels catastrophically when the variance is small next to the mean (for
// example prices around 1e6 that differ by cents). The zero value is an empty
// sample; it is not safe for concurrent use.
type Sample struct {
	n    int64
	mean float64
	m2   float64 // sum of squared deviations from the running mean
}

// Add adds one observation. x must be finite: a NaN or infinite value makes
// the mean and variance NaN, which the comparisons then report as undefined
// rather than hiding it.
func (s *Sample) Add(x float64) {
	s.n++
	delta := x - s.mean
	s.mean += delta / float64(s.n)
	s.m2 += delta * (x - s.mean)
}

// Merge adds all of o's observations to s (Chan et al.'s parallel update), so
// per-shard or per-day accumulators can be combined without re-reading the
// values. The result equals adding the same values one by one, up to
// rounding.
func (s *Sample) Merge(o Sample) {
	if o.n == 0 {
		return
	}
	if s.n == 0 {
		*s = o
		return
	}
	n := s.n + o.n
	delta := o.mean - s.mean
	s.mean += delta * float64(o.n) / float64(n)
	s.m2 += o.m2 + delta*delta*float64(s.n)*float64(o.n)/float64(n)
	s.n = n
}

// Summary returns the sample's size, mean and unbiased variance. The mean is
// NaN for an empty sample and the variance NaN below two observations.
func (s Sample) Summary() Summary {
	out := Summary{N: s.n, Mean: math.NaN(), Var: math.NaN()}
	if s.n > 0 {
		out.Mean = s.mean
	}
	if s.n > 1 {
		out.Var = s.m2 / float64(s.n-1)
	}
	return out
}

// Comparison is a treatment arm measured against the control arm, by
// CompareProportions or CompareMeans. It carries what a report row shows
// (estimates, lift, p-value) and what Verdict and CI need (sizes, standard
// error, degrees of freedom). Undefined numbers are NaN.
type Comparison struct {
	// Control and Treatment are the arms' estimates: rates or means.
	Control, Treatment float64
	// ControlN and TreatmentN are the arms' sizes (trials or observations),
	// which Verdict checks against the minimum sample size.
	ControlN, TreatmentN int64
	// Diff is the absolute lift, Treatment - Control.
	Diff float64
	// RelLift is the relative lift, Diff / Control (0.3 for +30%); NaN when
	// the control's estimate is zero, where a relative change is undefined.
	RelLift float64
	// StdErr is the unpooled standard error of Diff, the one CI uses. (The
	// z-test's statistic uses the pooled one; see CompareProportions.)
	StdErr float64
	// Stat is the test statistic: z for proportions, Welch's t for means.
	Stat float64
	// DF is the degrees of freedom of Stat's distribution: +Inf for the
	// z-test (standard normal), Welch–Satterthwaite's for the t-test.
	DF float64
	// PValue is the two-sided p-value of "no difference between the arms".
	PValue float64
}

// CI returns the confidence interval of the difference Treatment - Control
// at the given level: Diff ± q·StdErr, with q the normal quantile for a
// z-test comparison and the Student-t quantile with DF degrees of freedom
// for a Welch comparison. NaN when the standard error or DF is undefined or
// level is outside (0, 1).
func (c Comparison) CI(level float64) Interval {
	if !validLevel(level) || math.IsNaN(c.StdErr) || math.IsNaN(c.Diff) || !(c.DF > 0) {
		return nan()
	}
	var q float64
	if math.IsInf(c.DF, 1) {
		q = normalQuantile(0.5 + level/2)
	} else {
		q = distuv.StudentsT{Mu: 0, Sigma: 1, Nu: c.DF}.Quantile(0.5 + level/2)
	}
	return Interval{c.Diff - q*c.StdErr, c.Diff + q*c.StdErr}
}

// relLift is diff/control, NaN when control is zero (or NaN).
func relLift(diff, control float64) float64 {
	if control == 0 {
		return math.NaN()
	}
	return diff / control
}

// CompareProportions compares two rates with the two-sided two-proportion
// z-test. The statistic uses the pooled standard error, because under the
// null hypothesis both arms share one rate and pooling estimates it best
// (this is the classic test, equal to the chi-squared test of the 2×2
// table). The interval for the difference (Comparison.CI) uses the unpooled
// standard error, because away from the null the arms' rates differ; so at
// the margin the p-value and the interval can disagree slightly.
//
// Degenerate cases, none of which panics:
//   - an arm with no trials (or invalid counts): its rate and everything
//     derived from it is NaN;
//   - no successes in either arm, or only successes (the pooled rate is 0
//     or 1): the pooled standard error is zero, so Stat and PValue are NaN
//     (there is no variation to test, and Verdict says NotEnoughData);
//   - identical rates otherwise: Stat 0, PValue 1;
//   - a control rate of zero: RelLift is NaN.
func CompareProportions(control, treatment Proportion) Comparison {
	c := Comparison{
		Control:    control.Rate(),
		Treatment:  treatment.Rate(),
		ControlN:   control.Trials,
		TreatmentN: treatment.Trials,
		StdErr:     math.NaN(),
		Stat:       math.NaN(),
		DF:         math.Inf(1),
		PValue:     math.NaN(),
	}
	c.Diff = c.Treatment - c.Control
	c.RelLift = relLift(c.Diff, c.Control)
	if !validCounts(control) || !validCounts(treatment) {
		c.Control, c.Treatment, c.Diff, c.RelLift = math.NaN(), math.NaN(), math.NaN(), math.NaN()
		return c
	}
	n1, n2 := float64(control.Trials), float64(treatment.Trials)
	p1, p2 := c.Control, c.Treatment
	c.StdErr = math.Sqrt(p1*(1-p1)/n1 + p2*(1-p2)/n2)
	pooled := float64(control.Successes+treatment.Successes) / (n1 + n2)
	se := math.Sqrt(pooled * (1 - pooled) * (1/n1 + 1/n2))
	if se == 0 {
		return c
	}
	c.Stat = c.Diff / se
	c.PValue = twoSidedNormal(c.Stat)
	return c
}

// validCounts reports whether p has trials and 0 ≤ Successes ≤ Trials.
func validCounts(p Proportion) bool {
	return p.Trials > 0 && p.Successes >= 0 && p.Successes <= p.Trials
}

// CompareMeans compares two means with Welch's t-test: the statistic
// (mean₂ - mean₁)/sqrt(var₁/n₁ + var₂/n₂) against Student's t with the
// Welch–Satterthwaite degrees of freedom, two-sided. Welch's test is used
// rather than Student's pooled-variance test because arms rarely have equal
// variances (a better arm that sells more also varies more), and when they
// do Welch loses almost nothing. It matches scipy's
// ttest_ind(equal_var=False).
//
// Degenerate cases, none of which panics:
//   - an arm with fewer than two observations: its variance is undefined, so
//     StdErr, Stat, DF and PValue are NaN (Diff is still given when both
//     means are);
//   - both arms with zero variance (all users spent the same, typically
//     nothing): the standard error is zero and Stat, DF and PValue are NaN,
//     and Verdict says NotEnoughData. scipy agrees when the means are equal
//     (0/0); when they differ it answers t = ±Inf, p = 0, but the
//     Welch–Satterthwaite DF is 0/0 there and two constant arms are a sign
//     of broken input rather than proof, so no winner is called;
//   - one arm with zero variance: fine, DF is the other arm's n-1;
//   - a control mean of zero: RelLift is NaN.
func CompareMeans(control, treatment Summary) Comparison {
	c := Comparison{
		Control:    control.Mean,
		Treatment:  treatment.Mean,
		ControlN:   control.N,
		TreatmentN: treatment.N,
		StdErr:     math.NaN(),
		Stat:       math.NaN(),
		DF:         math.NaN(),
		PValue:     math.NaN(),
	}
	if control.N < 1 {
		c.Control = math.NaN()
	}
	if treatment.N < 1 {
		c.Treatment = math.NaN()
	}
	c.Diff = c.Treatment - c.Control
	c.RelLift = relLift(c.Diff, c.Control)
	if control.N < 2 || treatment.N < 2 || !(control.Var >= 0) || !(treatment.Var >= 0) {
		return c
	}
	v1 := control.Var / float64(control.N)
	v2 := treatment.Var / float64(treatment.N)
	se2 := v1 + v2
	if se2 == 0 || math.IsNaN(c.Diff) {
		return c
	}
	c.StdErr = math.Sqrt(se2)
	c.Stat = c.Diff / c.StdErr
	c.DF = se2 * se2 / (v1*v1/float64(control.N-1) + v2*v2/float64(treatment.N-1))
	c.PValue = twoSidedT(c.Stat, c.DF)
	return c
}

// Decision is the plain verdict on a treatment arm. The zero value is
// NotEnoughData, so a verdict that was never computed never reads as a win.
type Decision int

// The verdicts, in the words a report prints (Decision.String).
const (
	// NotEnoughData: an arm is below the minimum sample size, or the data
	// cannot be tested (p-value undefined). No winner may be called yet.
	NotEnoughData Decision = iota
	// NoDifference: both arms are large enough and the difference is not
	// significant. "Yet", because a smaller effect may still show with more
	// data; it is not proof the arms are equal.
	NoDifference
	// Better: the treatment is significantly higher than the control.
	Better
	// Worse: the treatment is significantly lower than the control.
	Worse
)

// String returns the words a report prints: "not enough data", "no
// difference yet", "better", "worse".
func (d Decision) String() string {
	switch d {
	case NotEnoughData:
		return "not enough data"
	case NoDifference:
		return "no difference yet"
	case Better:
		return "better"
	case Worse:
		return "worse"
	}
	return fmt.Sprintf("Decision(%d)", int(d))
}

// Verdict decides on a treatment arm from its comparison with the control.
// Higher is taken as better (click-through, conversion, revenue); for a
// metric where lower is better, read Better and Worse the other way round.
//
// It refuses to call a winner (NotEnoughData) while either arm has fewer than
// minSamples trials or observations, and when the p-value is undefined.
// minSamples is the guard against peeking: checking a running experiment
// every hour and stopping at the first p < alpha calls false winners far more
// often than alpha. Choose it before the experiment starts, as the per-arm
// size that detects the smallest lift worth acting on (MinSampleSize), and
// read the verdict as final only once both arms have reached it. minSamples ≤
// 0 means no minimum.
//
// Otherwise it is Better or Worse when PValue < alpha (by the sign of Diff),
// and NoDifference when not. alpha is the two-sided significance level; an
// alpha outside (0, 1), including the zero value, means DefaultAlpha (0.05).
func Verdict(c Comparison, minSamples int64, alpha float64) Decision {
	if !validLevel(alpha) {
		alpha = DefaultAlpha
	}
	if c.ControlN < minSamples || c.TreatmentN < minSamples || math.IsNaN(c.PValue) || math.IsNaN(c.Diff) {
		return NotEnoughData
	}
	switch {
	case c.PValue >= alpha:
		return NoDifference
	case c.Diff > 0:
		return Better
	case c.Diff < 0:
		return Worse
	}
	return NoDifference
}

// MinSampleSize returns the number of trials per arm a two-sided
// two-proportion z-test at significance alpha needs to detect a relative
// lift relLift (0.1 for +10%) over a baseline rate with probability power
// (typically 0.8), by the standard normal-approximation formula
//
//	n = (z₁₋α/₂·sqrt(2·p̄(1-p̄)) + z_power·sqrt(p₁(1-p₁) + p₂(1-p₂)))² / (p₂-p₁)²
//
// with p₁ = baseline, p₂ = baseline·(1+relLift), p̄ = (p₁+p₂)/2. It is meant
// as Verdict's minSamples: fixing the size in advance is what keeps the
// false-winner rate at alpha. For example a 5% click-through and a +30% lift
// need about 3,800 users per arm at alpha 0.05 and power 0.8.
//
// It returns an error when baseline or the lifted rate is not in (0, 1),
// relLift is zero, or alpha or power is not in (0, 1).
func MinSampleSize(baseline, relLift, alpha, power float64) (int64, error) {
	p1 := baseline
	p2 := baseline * (1 + relLift)
	switch {
	case !validLevel(p1) || !validLevel(p2):
		return 0, fmt.Errorf("experiment: baseline %g and lifted rate %g must both be in (0, 1)", p1, p2)
	case relLift == 0:
		return 0, errors.New("experiment: a lift of zero cannot be detected")
	case !validLevel(alpha):
		return 0, fmt.Errorf("experiment: alpha %g must be in (0, 1)", alpha)
	case !validLevel(power):
		return 0, fmt.Errorf("experiment: power %g must be in (0, 1)", power)
	}
	pbar := (p1 + p2) / 2
	za := normalQuantile(1 - alpha/2)
	zb := normalQuantile(power)
	num := za*math.Sqrt(2*pbar*(1-pbar)) + zb*math.Sqrt(p1*(1-p1)+p2*(1-p2))
	d := p2 - p1
	return int64(math.Ceil(num * num / (d * d))), nil
}
