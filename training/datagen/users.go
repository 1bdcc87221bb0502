package datagen

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/recserve/recserve/dataset"
)

// Funnel coefficients: the logit of a cart after a view, and of a purchase
// after a cart, are linear in the fit of the item to the shopper.
const (
	cartBase     = -7.05
	cartCategory = 3.0 // × the shopper's affinity to the item's category, in [0, 1]
	cartBrand    = 1.3 // if the brand is a favourite
	cartPrice    = 2.0 // × the price fit, in [0, 1]
	cartReturn   = 1.5 // when the shopper comes back to an abandoned cart

	buyBase    = -1.55
	buyPrice   = 1.2
	buyBrand   = 0.5
	buyQuality = 0.6 // × the item's latent quality
	buyPropens = 0.6 // × the shopper's propensity
	buyReturn  = 1.0

	// intentBoost multiplies the weight of a successor of the session's
	// product kind; intentOther the acceptance of a fresh pick of another
	// kind in the session's category.
	intentBoost = 3.0
	intentOther = 0.35

	returnProb     = 0.3 // a session starts at an abandoned cart
	driftProb      = 0.15
	maxAbandoned   = 8
	maxSessionLen  = 100
	maxPickTries   = 50
	activitySigma  = 1.0
	newSignupShare = 0.25
)

// userGen generates one user at a time from the user's own random stream. It
// keeps scratch buffers between users; one userGen belongs to one goroutine.
type userGen struct {
	w   *world
	src *rand.PCG
	r   *rand.Rand

	// tastes are the latent preferences of the current user.
	tastes

	intentCat int     // the category of the session's first item
	intent    int     // its noun: the kind of product the session is about
	seen      []int32 // items viewed in the current session
	abandoned []int32 // carts not bought, most recent last
	succBuf   []float64
	evs       []event
	uid       int32
	sess      int32
	end       int64
}

func newUserGen(w *world) *userGen {
	src := rand.NewPCG(0, 0)
	return &userGen{
		w:      w,
		src:    src,
		r:      rand.New(src),
		tastes: newTastes(len(w.cats)),
		end:    w.end,
	}
}

// splitmix64 scrambles a user index into a PCG stream selector.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// user generates user u: its row and its events in its own time order. The
// returned slice is freshly allocated.
func (g *userGen) user(u, width int) (dataset.User, []event, int32) {
	w := g.w
	g.src.Seed(uint64(w.cfg.Seed), splitmix64(uint64(u)))
	r := g.r
	g.uid = int32(u)
	g.sess = 0
	g.evs = g.evs[:0]
	g.abandoned = g.abandoned[:0]

	g.draw(w, r)

	// Activity: log-normal number of sessions and session length.
	mean := w.cfg.SessionsPerUser
	mu := math.Log(mean) - activitySigma*activitySigma/2
	nSess := int(math.Round(math.Exp(mu + activitySigma*r.NormFloat64())))
	nSess = min(max(nSess, 1), int(20*mean))
	viewsMean := w.cfg.ViewsPerSession * math.Exp(0.3*r.NormFloat64()-0.045)

	// Signup: most shoppers exist before the window, some join during it.
	span := w.end - w.start
	var signup int64
	if r.Float64() < newSignupShare {
		signup = w.start + int64(r.Float64()*0.8*float64(span))
	} else {
		signup = w.start - int64(r.IntN(730*day)) - int64(r.IntN(day))
	}
	first := max(signup, w.start)
	starts := make([]int64, nSess)
	for i := range starts {
		starts[i] = first + int64(r.Float64()*float64(w.end-first))
	}
	slices.Sort(starts)

	last := int64(math.MinInt64 / 2)
	for _, s := range starts {
		t := max(s, last+sessionGap)
		if t >= w.end {
			break
		}
		last = g.session(t, viewsMean)
	}

	// Ratings come days after their purchase, out of order: restore the
	// user's time order (stable, so ties keep generation order).
	slices.SortStableFunc(g.evs, func(a, b event) int { return cmp.Compare(a.ts, b.ts) })
	evs := make([]event, len(g.evs))
	copy(evs, g.evs)
	for i := range evs {
		evs[i].ord = int32(i)
	}

	row := dataset.User{
		ID: fmt.Sprintf("u%0*d", width, u+1),
		Attrs: map[string]string{
			"signup":  time.Unix(signup, 0).UTC().Format(time.DateOnly),
			"segment": g.segment(),
		},
	}
	return row, evs, g.sess
}

// session generates one session from time t and returns the time of its
// last event.
func (g *userGen) session(t int64, viewsMean float64) int64 {
	w, r := g.w, g.r
	g.sess++
	g.seen = g.seen[:0]
	last := t
	emitted := len(g.evs)
	defer func() {
		if len(g.evs) == emitted {
			g.sess-- // nothing to show: the number goes to the next session
		}
	}()

	g.intentCat, g.intent = -1, -1 // set from the first item below
	var cur int32 = -1
	returning := false
	var sessCat int
	if n := len(g.abandoned); n > 0 && r.Float64() < returnProb {
		cur = g.abandoned[n-1]
		g.abandoned = g.abandoned[:n-1]
		returning = true
		sessCat = int(w.items[cur].cat)
	} else {
		sessCat = sample(g.catCDF, r.Float64())
		cur = g.fresh(sessCat, t)
	}

	if cur >= 0 {
		g.intentCat, g.intent = int(w.items[cur].cat), w.items[cur].noun
	}

	length := 1
	if p := 1 / viewsMean; p < 1 {
		length += int(math.Log(1-r.Float64()) / math.Log(1-p))
	}
	length = min(length, maxSessionLen)

	for v := 0; v < length && cur >= 0; v++ {
		if t >= g.end {
			break
		}
		it := &w.items[cur]
		g.seen = append(g.seen, cur)
		g.emit(t, cur, dataset.View, 1)
		last = t
		t = g.funnel(t, cur, it, returning && v == 0, &last)

		t += int64(math.Min(3+math.Exp(math.Log(35)+0.8*r.NormFloat64()), 900))
		next := int32(-1)
		if r.Float64() < w.cfg.FollowProb {
			next = g.follow(it, t)
		}
		if next < 0 {
			c := sessCat
			if r.Float64() < driftProb {
				c = sample(g.catCDF, r.Float64())
			}
			next = g.fresh(c, t)
		}
		cur = next
	}
	return last
}

// funnel decides cart and purchase after a view of item i at time t; it
// returns the time after them and updates last to the latest event time.
func (g *userGen) funnel(t int64, i int32, it *item, returning bool, last *int64) int64 {
	r := g.r
	if r.Float64() >= sigmoid(g.cartLogit(g.w, it, returning)) {
		return t
	}
	t += 5 + int64(20*r.ExpFloat64())
	if t >= g.end {
		return t
	}
	g.emit(t, i, dataset.Cart, 1)
	*last = t

	if r.Float64() >= sigmoid(g.buyLogit(g.w, it, returning)) {
		if len(g.abandoned) == maxAbandoned {
			g.abandoned = slices.Delete(g.abandoned, 0, 1)
		}
		if !slices.Contains(g.abandoned, i) {
			g.abandoned = append(g.abandoned, i)
		}
		return t
	}
	t += 20 + int64(90*r.ExpFloat64())
	if t >= g.end {
		return t
	}
	g.emit(t, i, dataset.Purchase, 1)
	*last = t
	if idx := slices.Index(g.abandoned, i); idx >= 0 {
		g.abandoned = slices.Delete(g.abandoned, idx, idx+1)
	}

	if r.Float64() < g.w.cfg.RatingProb {
		rt := t + day + int64(r.IntN(13*day))
		pf, bf := g.priceFit(g.w, it), g.brandFit(it)
		score := math.Round(3.3 + 0.8*pf + 0.5*bf + 1.2*it.quality + 0.8*r.NormFloat64())
		score = min(max(score, 1), 5)
		if rt < g.end {
			g.evs = append(g.evs, event{ts: rt, user: g.uid, item: i, kind: dataset.Rating, value: uint8(score)})
		}
	}
	return t
}

func (g *userGen) emit(t int64, i int32, kind dataset.Event, value uint8) {
	g.evs = append(g.evs, event{ts: t, user: g.uid, item: i, sess: g.sess, kind: kind, value: value})
}

// fresh picks an item of category c at time t: by popularity, accepted by
// brand and price fit; -1 if no launched, unseen item turns up.
func (g *userGen) fresh(c int, t int64) int32 {
	w, r := g.w, g.r
	cat := &w.cats[c]
	fallback := int32(-1)
	for range maxPickTries {
		i := cat.items[sample(cat.cdf, r.Float64())]
		it := &w.items[i]
		if it.launch > t || slices.Contains(g.seen, i) {
			continue
		}
		fallback = i
		acc := g.priceFit(w, it)
		if c == g.intentCat && it.noun != g.intent {
			acc *= intentOther
		}
		if !g.favBrand(it) {
			acc *= g.nonFavBrand
		}
		if r.Float64() < acc {
			return i
		}
	}
	return fallback
}

// follow picks a launched, unseen successor of it by transition weight; -1
// if there is none.
func (g *userGen) follow(it *item, t int64) int32 {
	ws := g.succBuf[:0]
	total := 0.0
	for k, j := range it.succ {
		wt := 0.0
		if s := &g.w.items[j]; s.launch <= t && !slices.Contains(g.seen, j) {
			wt = it.succW[k]
			if int(s.cat) == g.intentCat && s.noun == g.intent {
				wt *= intentBoost
			}
		}
		ws = append(ws, wt)
		total += wt
	}
	g.succBuf = ws
	if total == 0 {
		return -1
	}
	x := g.r.Float64() * total
	pick := int32(-1)
	for k, j := range it.succ {
		if ws[k] > 0 {
			pick = j // the last eligible one absorbs rounding
			if x -= ws[k]; x < 0 {
				break
			}
		}
	}
	return pick
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
