// Package datagen generates recserve's synthetic e-commerce demo data set: a
// catalogue, shoppers and their view / cart / purchase / rating events, from
// a generative process built so that the project's models have something to
// learn. Generate(Config{}) is the demo: 5,000 users, 2,000 items, 90 days
// from 2026-01-01 UTC, about 290,000 interactions.
//
// # Catalogue
//
// Items fall in up to 20 categories (smartphones, phone-accessories, laptops,
// …, grocery, and two with Chinese vocabularies, tea and stationery, to
// exercise CJK tokenisation). Each category has its own vocabulary of
// attribute words and product nouns, a log-normal price distribution and one
// to three complementary categories (smartphones → phone-accessories). Brands
// are built from syllables; most sell in one category, about a quarter in two
// or three, and each has a price premium and a popularity.
//
// An item has a category, a brand selling in it, a price (log-normal around
// the category median, shifted by the brand premium, rounded to x.99; 1%
// unknown, NaN), a title "Brand Word Word [Word [Word]] Noun" from the
// category vocabulary and an 8-20 word description drawn from its title
// words, its category vocabulary and generic words (Chinese descriptions have
// no spaces). Popularity is Zipf-like over a random ranking, so a tenth of
// the items draw about half the events.
//
// About 12% of the items are new arrivals: they launch at a uniform time in
// the last 15% of the window, have no interaction before it and are featured
// (1.5× popularity) after it, so a time split has test events on items absent
// from train, which only their text describes. New arrivals have the highest
// ids, in launch order; every other item is on sale from the start.
//
// Each item has 5-8 successors with decreasing transition weights: mostly
// items of its own category (more often of the same product noun), a fifth
// from a complementary category. The links are directed, so what comes next
// after an item is a sharper signal than what co-occurs with it.
//
// # Shoppers
//
// A shopper has latent preferences: a category distribution concentrated on
// 1-3 favourite categories (Gamma(2) weights, 90%, over a 10% background in
// proportion to category traffic), 1-3 favourite brands and a brand loyalty,
// a price level relative to every category's median with a tolerance, and a
// buying propensity. Activity is heavy-tailed: the number of sessions is
// log-normal with mean SessionsPerUser, so some shoppers have one session and
// a few have hundreds of events. A quarter of the shoppers sign up during the
// window and are active only after that. Users carry Attrs "signup"
// (YYYY-MM-DD) and "segment" (budget, mainstream or premium, from the price
// level).
//
// # Sessions
//
// Session start times are uniform over the shopper's active time, at least 30
// minutes apart; session ids are "s<user number>-<n>", n counting from 1 in
// time order. A session picks a category from the shopper's distribution and
// a first item there (or, 30% of the time when there is one, returns to an
// item the shopper left in the cart); the first item's noun is the session's
// intent. Each next view follows a successor link of the current item with
// probability FollowProb (successors of the intent weigh 3× more), and is
// otherwise a fresh pick: from the session's category (85%) or the shopper's
// distribution (15%). A fresh pick draws an item in proportion to popularity
// and accepts it with a probability given by the shopper's brand loyalty, the
// fit of its price to the shopper's price level and whether it matches the
// intent. Nothing is viewed twice in a session or before its launch. Session
// length is geometric with mean ViewsPerSession; views are seconds to minutes
// apart.
//
// # Funnel
//
// After a view the shopper adds the item to the cart with a probability
// logistic in the fit of the item: the shopper's affinity to its category,
// whether its brand is a favourite, its price fit, the item's latent quality
// and the shopper's propensity (about 10% of views overall, but from under 1%
// to over 50% by fit). A cart becomes a purchase a few minutes later in the
// same session with a probability driven by price fit, brand, quality and
// propensity (about half); an unbought cart may bring the shopper back in a
// later session, more inclined to buy. A tenth of the purchases get a 1-5
// rating one to fourteen days later (event rating, no session id), higher
// for better fit and quality. Views, carts and purchases have value 1.
//
// # Ground truth
//
// NewShoppers rebuilds, from the same Config, the latent tastes of every
// user without generating the events: Shopper.Fit gives a shopper's
// attraction to an item and its probability of buying it after a view, from
// the very code and coefficients that generated the data. The behaviour
// simulator (training/simulate) plays these shoppers against a live server,
// so the true effect of an experiment is known.
//
// # Output
//
// Items are in id order ("i00001", zero-padded to the digits of the count,
// at least 5), users in id order ("u00001"), interactions sorted by
// timestamp, then user, then the user's own event order; every timestamp is
// inside the window. The output depends only on the Config: users are
// generated in parallel, each from its own PCG stream derived from the seed
// and the user number, and no map is ever iterated.
package datagen

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"github.com/recserve/recserve/dataset"
)

// Generate builds the synthetic data set described in the package comment. It
// returns an error wrapping ErrInvalidConfig if cfg is invalid. It is safe to
// call concurrently.
func Generate(cfg Config) (*dataset.Dataset, error) {
	w, err := newWorld(cfg)
	if err != nil {
		return nil, err
	}
	return w.generate(), nil
}

const (
	// succMin and succMax bound the number of successors of an item.
	succMin, succMax = 5, 8
	// succDecay shapes the transition weights: the k-th successor (1-based)
	// has weight k^-succDecay.
	succDecay = 0.4
	// succPow flattens popularity when successors are chosen: pop^succPow.
	succPow = 0.3
	// succComplement is the chance a successor comes from a complementary
	// category.
	succComplement = 0.2
	// zipf is the exponent of item popularity over its rank.
	zipf = 1.3
	// newBoost multiplies the popularity of new arrivals.
	newBoost = 1.5

	// newWindow is the final fraction of the time window new items launch in.
	newWindow = 0.15
	// sessionGap is the least time between two sessions of a user, seconds.
	sessionGap = 30 * 60
	day        = 24 * 60 * 60
)

// world is the latent state of one generated data set: the catalogue with
// its hidden parameters and the successor graph. It is read-only once built,
// so users can be generated concurrently.
type world struct {
	cfg        Config
	start, end int64 // the time window [start, end), Unix seconds
	cats       []category
	brands     []brand
	items      []item
	// traffic is every category's traffic weight and trafficCDF its running
	// sum: favourite categories are drawn from it.
	traffic, trafficCDF []float64
}

type category struct {
	spec        *categorySpec
	logMedian   float64
	items       []int32   // item indices of the category
	cdf         []float64 // cumulative popularity over items
	succCDF     []float64 // cumulative pop^succPow, for successor links
	brands      []int32   // brands selling in the category
	brandCDF    []float64 // cumulative brand popularity over brands
	complements []int     // complementary categories in use
}

type brand struct {
	name    string
	premium float64 // added to the log price
	pop     float64
	cats    []int
}

type item struct {
	dataset.Item
	cat, brand int32
	noun       int
	logPrice   float64 // NaN when the price is unknown
	pop        float64
	quality    float64 // latent conversion quality, ~N(0, 0.5)
	launch     int64   // Unix seconds; interactions happen at or after it
	succ       []int32 // successors, in decreasing transition weight
	succW      []float64
}

// newWorld validates cfg and builds the catalogue.
func newWorld(cfg Config) (*world, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	w := &world{
		cfg:   cfg,
		start: cfg.Start.Unix(),
		end:   cfg.Start.Unix() + int64(cfg.Days)*day,
	}
	r := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x9e3779b97f4a7c15))
	w.buildCategories()
	w.buildBrands(r)
	w.buildItems(r)
	w.buildSuccessors(r)
	return w, nil
}

func (w *world) buildCategories() {
	w.cats = make([]category, w.cfg.Categories)
	w.traffic = make([]float64, len(w.cats))
	index := make(map[string]int, len(w.cats))
	for i := range w.cats {
		spec := &catalog[i]
		w.cats[i] = category{spec: spec, logMedian: math.Log(spec.median)}
		w.traffic[i] = spec.traffic
		index[spec.slug] = i
	}
	w.trafficCDF = cumulative(w.traffic)
	for i := range w.cats {
		for _, slug := range w.cats[i].spec.complements {
			if j, ok := index[slug]; ok {
				w.cats[i].complements = append(w.cats[i].complements, j)
			}
		}
	}
}

func (w *world) buildBrands(r *rand.Rand) {
	names := brandNames()
	r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	sizes := make([]float64, len(w.cats))
	for i := range w.cats {
		sizes[i] = w.cats[i].spec.size
	}
	sizeCDF := cumulative(sizes)
	w.brands = make([]brand, w.cfg.Brands)
	for b := range w.brands {
		// The first brands cover every category once; the rest go where the
		// catalogue is large.
		primary := b
		if b >= len(w.cats) {
			primary = sample(sizeCDF, r.Float64())
		}
		cats := []int{primary}
		if r.Float64() < 0.25 && len(w.cats) > 1 {
			extra := 1 + r.IntN(2)
			for range extra * 4 {
				if len(cats) > extra {
					break
				}
				c := sample(sizeCDF, r.Float64())
				if comps := w.cats[primary].complements; len(comps) > 0 && r.Float64() < 0.6 {
					c = comps[r.IntN(len(comps))]
				}
				if !slices.Contains(cats, c) {
					cats = append(cats, c)
				}
			}
		}
		w.brands[b] = brand{
			name:    names[b],
			premium: 0.3 * r.NormFloat64(),
			pop:     math.Exp(0.8 * r.NormFloat64()),
			cats:    cats,
		}
		for _, c := range cats {
			w.cats[c].brands = append(w.cats[c].brands, int32(b))
		}
	}
	for c := range w.cats {
		pops := make([]float64, len(w.cats[c].brands))
		for i, b := range w.cats[c].brands {
			pops[i] = w.brands[b].pop
		}
		w.cats[c].brandCDF = cumulative(pops)
	}
}

// brandNames returns every distinct syllable-built brand name, in a fixed
// order.
func brandNames() []string {
	seen := make(map[string]bool)
	var names []string
	for _, p := range brandPrefixes {
		for _, m := range brandMiddles {
			for _, s := range brandSuffixes {
				n := p + m + s
				if !seen[n] {
					seen[n] = true
					names = append(names, n)
				}
			}
		}
	}
	return names
}

func (w *world) buildItems(r *rand.Rand) {
	n := w.cfg.Items
	// Allocate items to categories by size (largest remainder), at least
	// MinItemsPerCategory each.
	counts := allocate(n, w.cats)
	cats := make([]int32, 0, n)
	for c, k := range counts {
		for range k {
			cats = append(cats, int32(c))
		}
	}
	r.Shuffle(len(cats), func(i, j int) { cats[i], cats[j] = cats[j], cats[i] })

	// The last nNew items (a random subset after the shuffle) are new
	// arrivals, ordered by launch time so ids grow with launch.
	nNew := int(math.Round(w.cfg.NewItems * float64(n)))
	span := float64(w.end - w.start)
	launches := make([]int64, n)
	for i := range n - nNew {
		launches[i] = w.start - int64(r.IntN(365*day))
	}
	for i := n - nNew; i < n; i++ {
		launches[i] = w.start + int64(span*(1-newWindow)+r.Float64()*span*newWindow)
	}
	slices.Sort(launches[n-nNew:])

	// Zipf-like popularity over a random ranking.
	rank := r.Perm(n)
	offset := 1 + float64(n)/400

	width := max(5, len(fmt.Sprint(n)))
	w.items = make([]item, n)
	for i := range w.items {
		it := &w.items[i]
		c := int(cats[i])
		cat := &w.cats[c]
		it.cat = int32(c)
		it.launch = launches[i]
		it.pop = math.Pow(float64(rank[i])+offset, -zipf)
		if i >= n-nNew {
			it.pop *= newBoost // new arrivals are featured
		}
		it.quality = 0.5 * r.NormFloat64()
		it.brand = cat.brands[sample(cat.brandCDF, r.Float64())]
		it.logPrice = cat.logMedian + w.brands[it.brand].premium + cat.spec.sigma*r.NormFloat64()
		price := math.NaN()
		if r.Float64() < w.cfg.MissingPrice {
			it.logPrice = math.NaN()
		} else {
			price = roundPrice(math.Exp(it.logPrice))
		}
		it.noun = r.IntN(len(cat.spec.nouns))
		title, words := w.title(r, it)
		it.Item = dataset.Item{
			ID:          fmt.Sprintf("i%0*d", width, i+1),
			Title:       title,
			Category:    cat.spec.slug,
			Brand:       w.brands[it.brand].name,
			Price:       price,
			Description: w.description(r, it, words),
		}
		cat.items = append(cat.items, int32(i))
	}
	for c := range w.cats {
		cat := &w.cats[c]
		pops := make([]float64, len(cat.items))
		succPops := make([]float64, len(cat.items))
		for k, i := range cat.items {
			pops[k] = w.items[i].pop
			succPops[k] = math.Pow(w.items[i].pop, succPow)
		}
		cat.cdf = cumulative(pops)
		cat.succCDF = cumulative(succPops)
	}
}

// allocate splits n items over the categories in proportion to their size,
// at least MinItemsPerCategory each (n ≥ MinItemsPerCategory·len(cats) when
// len(cats) > 1, guaranteed by Config validation).
func allocate(n int, cats []category) []int {
	counts := make([]int, len(cats))
	floor := min(MinItemsPerCategory, n/len(cats))
	rest := n - floor*len(cats)
	total := 0.0
	for _, c := range cats {
		total += c.spec.size
	}
	type rem struct {
		c    int
		frac float64
	}
	rems := make([]rem, len(cats))
	given := 0
	for i, c := range cats {
		exact := float64(rest) * c.spec.size / total
		counts[i] = floor + int(exact)
		given += int(exact)
		rems[i] = rem{i, exact - math.Floor(exact)}
	}
	slices.SortStableFunc(rems, func(a, b rem) int { return cmp.Compare(b.frac, a.frac) })
	for k := 0; given < rest; k++ {
		counts[rems[k%len(rems)].c]++
		given++
	}
	return counts
}

// roundPrice rounds p to a shop price: x.99 above 10, x.x9 below.
func roundPrice(p float64) float64 {
	var cents float64
	if p >= 10 {
		cents = math.Round(p)*100 - 1
	} else {
		cents = math.Max(math.Round(p*10)*10-1, 49)
	}
	return cents / 100
}

// title returns "Brand word word [word [word]] noun" and the words after the
// brand, lower case.
func (w *world) title(r *rand.Rand, it *item) (string, []string) {
	spec := w.cats[it.cat].spec
	k := 2 + r.IntN(3)
	words := make([]string, 0, k+1)
	for _, j := range r.Perm(len(spec.words))[:k] {
		words = append(words, spec.words[j])
	}
	words = append(words, spec.nouns[it.noun])
	var b strings.Builder
	b.WriteString(w.brands[it.brand].name)
	for _, word := range words {
		b.WriteByte(' ')
		b.WriteString(capitalize(word))
	}
	return b.String(), words
}

// description returns 8-20 words: the item's own title words, its category
// vocabulary and generic words, and sometimes the brand.
func (w *world) description(r *rand.Rand, it *item, titleWords []string) string {
	spec := w.cats[it.cat].spec
	generic := genericWords
	if spec.cjk {
		generic = genericCJK
	}
	n := 8 + r.IntN(13)
	words := make([]string, 0, n+1)
	if r.Float64() < 0.4 {
		words = append(words, w.brands[it.brand].name)
	}
	for range n {
		switch u := r.Float64(); {
		case u < 0.2:
			words = append(words, titleWords[r.IntN(len(titleWords))])
		case u < 0.6:
			words = append(words, spec.words[r.IntN(len(spec.words))])
		case u < 0.75:
			words = append(words, spec.nouns[r.IntN(len(spec.nouns))])
		default:
			words = append(words, generic[r.IntN(len(generic))])
		}
	}
	if !spec.cjk {
		words[0] = capitalize(words[0])
		return strings.Join(words, " ") + "."
	}
	// Chinese text has no spaces between words; clauses end with a comma.
	var b strings.Builder
	clause := 3 + r.IntN(3)
	for i, word := range words {
		if i > 0 {
			if word[0] < utf8.RuneSelf || words[i-1][0] < utf8.RuneSelf {
				b.WriteByte(' ') // keep a Latin brand apart
			} else if i%clause == 0 {
				b.WriteString("，")
			}
		}
		b.WriteString(word)
	}
	b.WriteString("。")
	return b.String()
}

func capitalize(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError || !unicode.IsLower(r) {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}

// buildSuccessors links every item to succMin-succMax successors (fewer in a
// tiny category).
func (w *world) buildSuccessors(r *rand.Rand) {
	for i := range w.items {
		it := &w.items[i]
		cat := &w.cats[it.cat]
		k := succMin + r.IntN(succMax-succMin+1)
		it.succ = make([]int32, 0, k)
		for try := 0; len(it.succ) < k && try < 10*k; try++ {
			var j int32
			if comps := cat.complements; len(comps) > 0 && r.Float64() < succComplement {
				c := &w.cats[comps[r.IntN(len(comps))]]
				j = c.items[sample(c.succCDF, r.Float64())]
			} else {
				j = cat.items[sample(cat.succCDF, r.Float64())]
				// Prefer the same kind of product.
				if w.items[j].noun != it.noun && r.Float64() < 0.6 {
					continue
				}
			}
			if j == int32(i) || slices.Contains(it.succ, j) {
				continue
			}
			it.succ = append(it.succ, j)
		}
		it.succW = make([]float64, len(it.succ))
		for k := range it.succW {
			it.succW[k] = math.Pow(float64(k+1), -succDecay)
		}
	}
}

// event is a compact interaction, before ids are turned into strings.
type event struct {
	ts    int64
	user  int32
	item  int32
	sess  int32 // 1-based session number within the user; 0 for none
	ord   int32 // position in the user's own event order
	kind  dataset.Event
	value uint8
}

// generate produces users and interactions, in parallel over users.
func (w *world) generate() *dataset.Dataset {
	n := w.cfg.Users
	width := max(5, len(fmt.Sprint(n)))
	users := make([]dataset.User, n)
	perUser := make([][]event, n)
	sessions := make([]int32, n)

	var next atomic.Int64
	const chunk = 64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			g := newUserGen(w)
			for {
				lo := int(next.Add(chunk)) - chunk
				if lo >= n {
					return
				}
				for u := lo; u < min(lo+chunk, n); u++ {
					users[u], perUser[u], sessions[u] = g.user(u, width)
				}
			}
		})
	}
	wg.Wait()

	total := 0
	for _, evs := range perUser {
		total += len(evs)
	}
	all := make([]event, 0, total)
	for u, evs := range perUser {
		all = append(all, evs...)
		perUser[u] = nil
	}
	slices.SortFunc(all, func(a, b event) int {
		if c := cmp.Compare(a.ts, b.ts); c != 0 {
			return c
		}
		if c := cmp.Compare(a.user, b.user); c != 0 {
			return c
		}
		return cmp.Compare(a.ord, b.ord)
	})

	ds := &dataset.Dataset{
		Interactions: make([]dataset.Interaction, len(all)),
		Items:        make([]dataset.Item, len(w.items)),
		Users:        users,
	}
	for i := range w.items {
		ds.Items[i] = w.items[i].Item
	}
	// Session ids are built once per session and shared by its events.
	sessIDs := make([][]string, n)
	for i, e := range all {
		var sid string
		if e.sess > 0 {
			ids := sessIDs[e.user]
			if ids == nil {
				ids = make([]string, sessions[e.user])
				sessIDs[e.user] = ids
			}
			if sid = ids[e.sess-1]; sid == "" {
				sid = fmt.Sprintf("s%0*d-%d", width, e.user+1, e.sess)
				ids[e.sess-1] = sid
			}
		}
		ds.Interactions[i] = dataset.Interaction{
			UserID:    users[e.user].ID,
			ItemID:    w.items[e.item].ID,
			Event:     e.kind,
			Value:     float64(e.value),
			Timestamp: e.ts,
			SessionID: sid,
		}
	}
	return ds
}

// cumulative returns the running sums of ws.
func cumulative(ws []float64) []float64 {
	out := make([]float64, len(ws))
	s := 0.0
	for i, v := range ws {
		s += v
		out[i] = s
	}
	return out
}

// sample returns the index drawn from the cumulative weights cdf with the
// uniform u in [0, 1).
func sample(cdf []float64, u float64) int {
	x := u * cdf[len(cdf)-1]
	i, _ := slices.BinarySearch(cdf, x)
	// BinarySearch finds the first cdf[i] ≥ x; a draw equal to a boundary
	// belongs to the next bucket, and zero-weight buckets are skipped.
	for i < len(cdf)-1 && cdf[i] <= x {
		i++
	}
	return i
}
