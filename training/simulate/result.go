package simulate

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
)

// ErrUnknownArm is wrapped by Result.Lift for an arm no answer named.
var ErrUnknownArm = errors.New("simulate: unknown arm")

// Result is what a run showed and what it should have measured: per arm,
// the ground truth (from the probabilities of the lists shown) beside the
// realised counts (from the draws), so an experiment report computed by the
// server from the tracked events can be checked against both.
type Result struct {
	// Arms are sorted by name; "" (no experiment) first.
	Arms []Arm `json:"arms"`
	// Users is the number of users played, Requests the answers received.
	Users    int `json:"users"`
	Requests int `json:"requests"`
	// Events is the number of events tracked, in Batches Track calls.
	Events  int `json:"events"`
	Batches int `json:"batches"`
	// UnknownItems counts shown items the ground truth does not know
	// (never clicked): a sign that the server's catalogue is not the data
	// set's. Duplicates counts items an answer repeated (counted once).
	UnknownItems int `json:"unknown_items"`
	Duplicates   int `json:"duplicates"`
}

// Arm is the ground truth and realised counts of one experiment arm. A user
// whose answers came from several arms counts in each, with the answers of
// that arm.
type Arm struct {
	// Name is Answer.Arm ("" without an experiment); Routes the routes that
	// answered for it.
	Name   string   `json:"name"`
	Routes []string `json:"routes"`
	// Users is the number of users the arm answered, Impressions its
	// answers and Shown the items they showed.
	Users       int `json:"users"`
	Impressions int `json:"impressions"`
	Shown       int `json:"shown"`

	// CTR is the expected per-user click-through rate: the mean over users
	// of P(at least one click on the arm's answers).
	CTR float64 `json:"ctr"`
	// Conversion is the mean over users of P(at least one purchase).
	Conversion float64 `json:"conversion"`
	// RevenuePerUser is the mean over users of the expected revenue.
	RevenuePerUser float64 `json:"revenue_per_user"`
	// The StdErr fields are the standard deviations of the realised rates
	// around the ground truth, from the users' own variances: a measured
	// rate more than about three of them away is suspect.
	CTRStdErr            float64 `json:"ctr_stderr"`
	ConversionStdErr     float64 `json:"conversion_stderr"`
	RevenuePerUserStdErr float64 `json:"revenue_per_user_stderr"`

	// Clicked and Bought are the users who clicked (bought) at least once;
	// Clicks and Purchases the events drawn; Revenue their price sum.
	Clicked   int     `json:"clicked"`
	Bought    int     `json:"bought"`
	Clicks    int     `json:"clicks"`
	Purchases int     `json:"purchases"`
	Revenue   float64 `json:"revenue"`
	// Events is the number of events sent for the arm's answers.
	Events int `json:"events"`
	// RealisedCTR, RealisedConversion and RealisedRevenuePerUser are the
	// realised counterparts of CTR, Conversion and RevenuePerUser: what a
	// correct report over these events shows.
	RealisedCTR            float64 `json:"realised_ctr"`
	RealisedConversion     float64 `json:"realised_conversion"`
	RealisedRevenuePerUser float64 `json:"realised_revenue_per_user"`
}

// Arm returns the arm with the given name.
func (r *Result) Arm(name string) (Arm, bool) {
	i := slices.IndexFunc(r.Arms, func(a Arm) bool { return a.Name == name })
	if i < 0 {
		return Arm{}, false
	}
	return r.Arms[i], true
}

// Lift returns the ground-truth relative CTR lift of treatment over control,
// CTR_t / CTR_c − 1: the effect an experiment report should find. It returns
// an error wrapping ErrUnknownArm for an arm the run never saw, and an error
// if control's CTR is 0.
func (r *Result) Lift(treatment, control string) (float64, error) {
	t, ok := r.Arm(treatment)
	if !ok {
		return 0, fmt.Errorf("%w: treatment %q", ErrUnknownArm, treatment)
	}
	c, ok := r.Arm(control)
	if !ok {
		return 0, fmt.Errorf("%w: control %q", ErrUnknownArm, control)
	}
	if c.CTR == 0 {
		return 0, fmt.Errorf("simulate: lift over control %q: its CTR is 0", control)
	}
	return t.CTR/c.CTR - 1, nil
}

// summarise aggregates the players, in their order, so that the sums (and
// so the Result) do not depend on which worker played whom.
func summarise(players []player) *Result {
	type acc struct {
		Arm
		ctrVar, convVar, revVar float64
	}
	var accs []*acc
	byName := make(map[string]*acc)
	res := &Result{Users: len(players)}
	for i := range players {
		p := &players[i]
		res.UnknownItems += p.unknown
		res.Duplicates += p.dups
		for j := range p.arms {
			st := &p.arms[j]
			a := byName[st.arm]
			if a == nil {
				a = &acc{Arm: Arm{Name: st.arm, Routes: []string{}}}
				byName[st.arm] = a
				accs = append(accs, a)
			}
			for _, rt := range st.routes {
				if !slices.Contains(a.Routes, rt) {
					a.Routes = append(a.Routes, rt)
				}
			}
			res.Requests += st.imps
			a.Users++
			a.Impressions += st.imps
			a.Shown += st.shown
			ctr, conv := 1-st.noClick, 1-st.noBuy
			a.CTR += ctr
			a.ctrVar += ctr * (1 - ctr)
			a.Conversion += conv
			a.convVar += conv * (1 - conv)
			a.RevenuePerUser += st.revenue
			a.revVar += st.revenueVar
			if st.clicks > 0 {
				a.Clicked++
			}
			if st.purchases > 0 {
				a.Bought++
			}
			a.Clicks += st.clicks
			a.Purchases += st.purchases
			a.Revenue += st.realRevenue
			a.Events += st.events
		}
	}
	for _, a := range accs {
		n := float64(a.Users)
		a.CTR /= n
		a.Conversion /= n
		a.RevenuePerUser /= n
		a.CTRStdErr = math.Sqrt(a.ctrVar) / n
		a.ConversionStdErr = math.Sqrt(a.convVar) / n
		a.RevenuePerUserStdErr = math.Sqrt(a.revVar) / n
		a.RealisedCTR = float64(a.Clicked) / n
		a.RealisedConversion = float64(a.Bought) / n
		a.RealisedRevenuePerUser = a.Revenue / n
		slices.Sort(a.Routes)
		res.Arms = append(res.Arms, a.Arm)
	}
	slices.SortFunc(res.Arms, func(x, y Arm) int { return cmp.Compare(x.Name, y.Name) })
	return res
}
