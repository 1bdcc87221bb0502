// Package experiment holds the statistics behind an A/B experiment report:
// per-arm estimates with confidence intervals, the comparison of a treatment
// arm against the control arm, and a plain verdict that refuses to call a
// winner too early.
//
// It is deliberately small, pure and transport-free, so the report code (the
// server's ExperimentService, recctl) only counts impressions, clicks,
// purchases and revenue and hands the counts here; every number a report
// shows comes from one tested place. The distributions (normal and Student's
// t) come from gonum rather than hand-written numerics, and the tests check
// the results against scipy.
//
// What to use for which metric:
//
//   - A rate (click-through, conversion) is a Proportion: successes out of
//     trials. Its interval is Wilson's (Proportion.CI); two arms are compared
//     with the two-proportion z-test (CompareProportions).
//   - A mean of a per-user value (revenue per user, with zeros for users who
//     bought nothing) is a Summary, accumulated with Sample.Add. Its interval
//     is Student's t (Summary.CI); two arms are compared with Welch's t-test
//     (CompareMeans), which does not assume equal variances.
//   - Verdict turns a Comparison into a Decision, and says "not enough data"
//     until both arms reach a minimum size chosen in advance (MinSampleSize).
//
// Both tests assume the trials are independent. Arms are split by user, so
// count one trial per user (users who clicked out of users) or use per-user
// means with CompareMeans: a rate over impressions, where one user
// contributes many correlated impressions, understates the variance and calls
// false winners more often than alpha says.
//
// Degenerate input (an empty arm, a single observation, no variation at all)
// never panics: the undefined numbers are NaN, and Verdict answers
// NotEnoughData for them. Each function documents its cases.
package experiment
