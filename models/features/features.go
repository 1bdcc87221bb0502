// Package features is recserve's one feature pipeline for purchase
// propensity: it turns a (user, item, context) triple into a row of named
// numbers. The server computes scorer inputs with it, and `recctl features`
// exports training matrices with it, so a model is trained on exactly the
// numbers it is later served with.
//
// A Pipeline is a snapshot of item statistics (counts, conversion, recency,
// prices, category aggregates) taken from an event log up to a reference time
// Now. User features are computed per request from the user's history, so a
// new event changes them at once; item statistics change when the snapshot is
// rebuilt. Recency is measured from Now, not the wall clock, so a model sees at
// serving the same scale it was trained on.
//
// Conventions: counts are log1p-scaled (except the small user×item counts),
// times are in days, and a value that does not exist (the price of an item
// without one, the days since a purchase for a user who never bought) is NaN,
// which tree models route by their learned default and linear models impute.
package features

import (
	"fmt"
	"iter"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
)

// Feature indices in canonical order. Names() lists their names.
const (
	userEvents = iota
	userViews
	userCarts
	userPurchases
	userDistinctItems
	userDaysSinceLast
	userDaysSincePurchase
	userBuyRate
	userAvgPrice

	itemViews
	itemCarts
	itemPurchases
	itemBuyers
	itemConversion
	itemCartRate
	itemRecentViews
	itemRecentPurchases
	itemPrice
	itemAgeDays
	itemCategoryPurchases
	itemPriceVsCategory

	uiViews
	uiCarts
	uiPurchases
	uiDaysSince
	uiAbandonedCart
	uiCategoryShare
	uiCategoryPurchases
	uiBrandShare
	uiPriceRatio

	sessionLen
	sessionItem
	sessionCategoryShare

	numFeatures

	// The item features are contiguous and depend on the snapshot only.
	firstItem = itemViews
	lastItem  = itemPriceVsCategory
)

// names is indexed by the constants above; read-only.
var names = [numFeatures]string{
	userEvents:            "user_events",
	userViews:             "user_views",
	userCarts:             "user_carts",
	userPurchases:         "user_purchases",
	userDistinctItems:     "user_distinct_items",
	userDaysSinceLast:     "user_days_since_last",
	userDaysSincePurchase: "user_days_since_purchase",
	userBuyRate:           "user_buy_rate",
	userAvgPrice:          "user_avg_price",

	itemViews:             "item_views",
	itemCarts:             "item_carts",
	itemPurchases:         "item_purchases",
	itemBuyers:            "item_buyers",
	itemConversion:        "item_conversion",
	itemCartRate:          "item_cart_rate",
	itemRecentViews:       "item_recent_views",
	itemRecentPurchases:   "item_recent_purchases",
	itemPrice:             "item_price",
	itemAgeDays:           "item_age_days",
	itemCategoryPurchases: "item_category_purchases",
	itemPriceVsCategory:   "item_price_vs_category",

	uiViews:             "ui_views",
	uiCarts:             "ui_carts",
	uiPurchases:         "ui_purchases",
	uiDaysSince:         "ui_days_since",
	uiAbandonedCart:     "ui_abandoned_cart",
	uiCategoryShare:     "ui_category_share",
	uiCategoryPurchases: "ui_category_purchases",
	uiBrandShare:        "ui_brand_share",
	uiPriceRatio:        "ui_price_ratio",

	sessionLen:           "session_len",
	sessionItem:          "session_item",
	sessionCategoryShare: "session_category_share",
}

// Names returns the name of every feature the pipeline computes, in
// canonical order (the column order of `recctl features`).
func Names() []string { return slices.Clone(names[:]) }

// Defaults of Options.
const (
	DefaultRecentDays = 7
	// DefaultSessionGapMinutes separates sessions: the user's current
	// session is the trailing run of history events less than this apart.
	DefaultSessionGapMinutes = 30
	// smoothing is the pseudo-count of views behind the item rates, which
	// shrinks an item with few views towards the catalogue's rate.
	smoothing = 20
	day       = 86400.0
)

// Options configure a Pipeline.
type Options struct {
	// Now is the reference time of recency features, in Unix seconds; 0
	// means one second after the latest event.
	Now int64
	// RecentDays is the window of the item_recent_* counts; 0 means
	// DefaultRecentDays.
	RecentDays float64
	// SessionGapMinutes splits sessions; 0 means DefaultSessionGapMinutes.
	SessionGapMinutes float64
	// Weights weigh events in the affinity shares; nil means
	// models.DefaultEventWeights().
	Weights models.EventWeights
}

// itemStat is the snapshot of one item.
type itemStat struct {
	category, brand           string
	price                     float64 // NaN when unknown
	views, carts, purchases   float64
	buyers                    float64
	recentViews, recentBuyers float64
	first                     int64
	seen                      bool // has at least one event
	// static holds the item features (firstItem..lastItem), computed by New.
	static [lastItem - firstItem + 1]float64
}

// categoryStat aggregates a category.
type categoryStat struct {
	purchases float64
	priceSum  float64
	priceN    float64
}

// Pipeline computes feature rows. It is immutable and safe for concurrent
// use; it implements models.Features.
type Pipeline struct {
	now        int64
	gap        int64
	weights    models.EventWeights
	items      map[string]*itemStat
	unknown    *itemStat // an item without catalogue entry or events
	categories map[string]*categoryStat
	convRate   float64 // catalogue purchases / views
	cartRate   float64 // catalogue carts / views
}

var _ models.Features = (*Pipeline)(nil)

// New builds a pipeline from the catalogue and the events observed up to
// opts.Now. Events at or after Now are ignored, so a training export can pass
// a whole log and a cut. items may omit items that only appear in events.
func New(items []dataset.Item, events []dataset.Interaction, opts Options) *Pipeline {
	return NewSeq(slices.Values(items), slices.Values(events), opts)
}

// NewSeq is New over sequences, which it reads twice: the serving store
// passes its live indexes without copying every event into one slice.
func NewSeq(items iter.Seq[dataset.Item], events iter.Seq[dataset.Interaction], opts Options) *Pipeline {
	now := opts.Now
	if now == 0 {
		for in := range events {
			now = max(now, in.Timestamp+1)
		}
	}
	recent := opts.RecentDays
	if recent <= 0 {
		recent = DefaultRecentDays
	}
	gapMin := opts.SessionGapMinutes
	if gapMin <= 0 {
		gapMin = DefaultSessionGapMinutes
	}
	w := opts.Weights
	if w == nil {
		w = models.DefaultEventWeights()
	}
	p := &Pipeline{
		now:        now,
		gap:        int64(gapMin * 60),
		weights:    w,
		items:      map[string]*itemStat{},
		categories: map[string]*categoryStat{},
	}
	for it := range items {
		p.items[it.ID] = &itemStat{category: it.Category, brand: it.Brand, price: it.Price}
		if it.Category == "" {
			continue
		}
		c := p.category(it.Category)
		if !math.IsNaN(it.Price) {
			c.priceSum += it.Price
			c.priceN++
		}
	}
	recentFrom := now - int64(recent*day)
	type pair struct{ user, item string }
	buyers := map[pair]struct{}{}
	var views, carts, purchases float64
	for in := range events {
		if in.Timestamp >= now {
			continue
		}
		s := p.items[in.ItemID]
		if s == nil {
			s = &itemStat{price: math.NaN()}
			p.items[in.ItemID] = s
		}
		if !s.seen || in.Timestamp < s.first {
			s.first = in.Timestamp
		}
		s.seen = true
		isRecent := in.Timestamp >= recentFrom
		switch in.Event {
		case dataset.View:
			s.views++
			views++
			if isRecent {
				s.recentViews++
			}
		case dataset.Cart:
			s.carts++
			carts++
		case dataset.Purchase:
			s.purchases++
			purchases++
			if isRecent {
				s.recentBuyers++
			}
			if _, dup := buyers[pair{in.UserID, in.ItemID}]; !dup {
				buyers[pair{in.UserID, in.ItemID}] = struct{}{}
				s.buyers++
			}
			if s.category != "" {
				p.category(s.category).purchases++
			}
		}
	}
	if views > 0 {
		p.convRate = purchases / views
		p.cartRate = carts / views
	}
	p.unknown = &itemStat{price: math.NaN()}
	p.itemFeatures(p.unknown)
	for _, s := range p.items {
		p.itemFeatures(s)
	}
	return p
}

func (p *Pipeline) category(name string) *categoryStat {
	c := p.categories[name]
	if c == nil {
		c = &categoryStat{}
		p.categories[name] = c
	}
	return c
}

// Now returns the reference time of recency features.
func (p *Pipeline) Now() int64 { return p.now }

// Binding computes the rows of one model's ordered feature names. It is
// safe for concurrent use.
type Binding struct {
	p    *Pipeline
	idx  []int
	aggs sync.Pool // *userAgg scratch, reused across requests
}

// Bind implements models.Features: it resolves names to the pipeline's
// features. Unknown names are an error listing them and the known names.
func (p *Pipeline) Bind(want []string) (models.Featurizer, error) { return p.BindNames(want) }

// BindNames is Bind returning the concrete type.
func (p *Pipeline) BindNames(want []string) (*Binding, error) {
	index := make(map[string]int, numFeatures)
	for i, n := range names {
		index[n] = i
	}
	b := &Binding{p: p, idx: make([]int, len(want))}
	b.aggs.New = func() any { return newUserAgg() }
	var unknown []string
	for j, n := range want {
		i, ok := index[n]
		if !ok {
			unknown = append(unknown, n)
		}
		b.idx[j] = i
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("%s not computed by the feature pipeline (it computes %s)",
			strings.Join(unknown, ", "), strings.Join(names[:], ", "))
	}
	if len(want) == 0 {
		return nil, fmt.Errorf("no feature names to bind")
	}
	return b, nil
}

// Width is the number of values in a row.
func (b *Binding) Width() int { return len(b.idx) }

// Rows implements models.Featurizer.
func (b *Binding) Rows(q models.Query, itemIDs []string, dst []float64) error {
	w := len(b.idx)
	if len(dst) != len(itemIDs)*w {
		return fmt.Errorf("features: dst has %d values for %d rows of %d", len(dst), len(itemIDs), w)
	}
	u := b.aggs.Get().(*userAgg)
	defer b.aggs.Put(u)
	b.p.summarise(u, q)
	var row [numFeatures]float64
	b.p.fillUser(u, &row)
	for i, id := range itemIDs {
		b.p.fill(u, id, &row)
		out := dst[i*w : (i+1)*w]
		for j, k := range b.idx {
			out[j] = row[k]
		}
	}
	return nil
}

// userItem is what a user did to one item.
type userItem struct {
	views, carts, purchases float64
	last, lastCart, lastBuy int64
	session                 bool
}

// userCategory is a user's engagement with one category.
type userCategory struct {
	weight, buys, session float64
}

// userAgg is a user's history summarised once per request. Its maps index
// into slices so that a pooled userAgg summarises the next user without
// allocating.
type userAgg struct {
	n, views, carts, purchases float64
	last, lastPurchase         int64
	hasLast, hasPurchase       bool
	priceSum, priceN           float64
	weight                     float64
	sessionLen                 float64
	items                      map[string]int32 // → itemList
	itemList                   []userItem
	categories                 map[string]int32 // → categoryList
	categoryList               []userCategory
	brands                     map[string]float64 // weighted events
}

func newUserAgg() *userAgg {
	return &userAgg{items: map[string]int32{}, categories: map[string]int32{}, brands: map[string]float64{}}
}

func (u *userAgg) reset() {
	clear(u.items)
	clear(u.categories)
	clear(u.brands)
	*u = userAgg{items: u.items, categories: u.categories, brands: u.brands,
		itemList: u.itemList[:0], categoryList: u.categoryList[:0]}
}

func (u *userAgg) item(id string) *userItem {
	k, ok := u.items[id]
	if !ok {
		k = int32(len(u.itemList))
		u.items[id] = k
		u.itemList = append(u.itemList, userItem{})
	}
	return &u.itemList[k]
}

func (u *userAgg) category(name string) *userCategory {
	k, ok := u.categories[name]
	if !ok {
		k = int32(len(u.categoryList))
		u.categories[name] = k
		u.categoryList = append(u.categoryList, userCategory{})
	}
	return &u.categoryList[k]
}

// summarise fills u from q's history (which already ends with the request's
// session items). The current session is the trailing run of events less
// than the session gap apart.
func (p *Pipeline) summarise(u *userAgg, q models.Query) {
	u.reset()
	h := q.History
	start := len(h)
	for start > 0 && (start == len(h) || h[start].Timestamp-h[start-1].Timestamp < p.gap) {
		start--
	}
	for k, in := range h {
		u.n++
		if !u.hasLast || in.Timestamp > u.last {
			u.last, u.hasLast = in.Timestamp, true
		}
		ui := u.item(in.ItemID)
		ui.last = max(ui.last, in.Timestamp)
		s := p.items[in.ItemID]
		var uc *userCategory
		if s != nil && s.category != "" {
			uc = u.category(s.category)
		}
		switch in.Event {
		case dataset.View:
			u.views++
			ui.views++
			if s != nil && !math.IsNaN(s.price) {
				u.priceSum += s.price
				u.priceN++
			}
		case dataset.Cart:
			u.carts++
			ui.carts++
			ui.lastCart = max(ui.lastCart, in.Timestamp)
		case dataset.Purchase:
			u.purchases++
			ui.purchases++
			ui.lastBuy = max(ui.lastBuy, in.Timestamp)
			if !u.hasPurchase || in.Timestamp > u.lastPurchase {
				u.lastPurchase, u.hasPurchase = in.Timestamp, true
			}
			if uc != nil {
				uc.buys++
			}
		}
		wt := p.weights.Of(in)
		u.weight += wt
		if uc != nil {
			uc.weight += wt
		}
		if s != nil && s.brand != "" {
			u.brands[s.brand] += wt
		}
		if k >= start {
			u.sessionLen++
			ui.session = true
			if uc != nil {
				uc.session++
			}
		}
	}
}

// fillUser writes the user's features, the same for every item, to row.
func (p *Pipeline) fillUser(u *userAgg, row *[numFeatures]float64) {
	nan := math.NaN()
	row[userEvents] = math.Log1p(u.n)
	row[userViews] = math.Log1p(u.views)
	row[userCarts] = math.Log1p(u.carts)
	row[userPurchases] = math.Log1p(u.purchases)
	row[userDistinctItems] = math.Log1p(float64(len(u.itemList)))
	row[userDaysSinceLast], row[userDaysSincePurchase] = nan, nan
	if u.hasLast {
		row[userDaysSinceLast] = p.days(u.last)
	}
	if u.hasPurchase {
		row[userDaysSincePurchase] = p.days(u.lastPurchase)
	}
	row[userBuyRate] = u.purchases / max(1, u.views)
	row[userAvgPrice] = nan
	if u.priceN > 0 {
		row[userAvgPrice] = u.priceSum / u.priceN
	}
	row[sessionLen] = math.Log1p(u.sessionLen)
}

func (p *Pipeline) days(ts int64) float64 { return float64(p.now-ts) / day }

// itemFeatures computes s's item features, which depend on the snapshot
// only; New stores them in s.static.
func (p *Pipeline) itemFeatures(s *itemStat) {
	nan := math.NaN()
	f := &s.static
	f[itemViews-firstItem] = math.Log1p(s.views)
	f[itemCarts-firstItem] = math.Log1p(s.carts)
	f[itemPurchases-firstItem] = math.Log1p(s.purchases)
	f[itemBuyers-firstItem] = math.Log1p(s.buyers)
	f[itemConversion-firstItem] = (s.purchases + smoothing*p.convRate) / (s.views + smoothing)
	f[itemCartRate-firstItem] = (s.carts + smoothing*p.cartRate) / (s.views + smoothing)
	f[itemRecentViews-firstItem] = math.Log1p(s.recentViews)
	f[itemRecentPurchases-firstItem] = math.Log1p(s.recentBuyers)
	f[itemPrice-firstItem] = s.price
	f[itemAgeDays-firstItem] = nan
	if s.seen {
		f[itemAgeDays-firstItem] = p.days(s.first)
	}
	f[itemCategoryPurchases-firstItem], f[itemPriceVsCategory-firstItem] = nan, nan
	if c := p.categories[s.category]; c != nil && s.category != "" {
		f[itemCategoryPurchases-firstItem] = math.Log1p(c.purchases)
		if c.priceN > 0 && c.priceSum > 0 {
			f[itemPriceVsCategory-firstItem] = s.price / (c.priceSum / c.priceN)
		}
	}
}

// fill writes the item and user×item features of (u, itemID) to row, whose
// user features fillUser has written.
func (p *Pipeline) fill(u *userAgg, itemID string, row *[numFeatures]float64) {
	nan := math.NaN()
	s := p.items[itemID]
	if s == nil {
		s = p.unknown
	}
	copy(row[firstItem:lastItem+1], s.static[:])

	var ui userItem
	k, touched := u.items[itemID]
	if touched {
		ui = u.itemList[k]
	}
	row[uiViews], row[uiCarts], row[uiPurchases] = ui.views, ui.carts, ui.purchases
	row[uiDaysSince] = nan
	if touched {
		row[uiDaysSince] = p.days(ui.last)
	}
	row[uiAbandonedCart] = 0
	if ui.carts > 0 && ui.lastCart > ui.lastBuy {
		row[uiAbandonedCart] = 1
	}
	var uc userCategory
	if k, ok := u.categories[s.category]; ok {
		uc = u.categoryList[k]
	}
	row[uiCategoryShare], row[uiBrandShare], row[uiCategoryPurchases] = nan, nan, nan
	if u.weight > 0 {
		if s.category != "" {
			row[uiCategoryShare] = uc.weight / u.weight
			row[uiCategoryPurchases] = uc.buys
		}
		if s.brand != "" {
			row[uiBrandShare] = u.brands[s.brand] / u.weight
		}
	}
	row[uiPriceRatio] = nan
	if u.priceN > 0 && u.priceSum > 0 {
		row[uiPriceRatio] = s.price / (u.priceSum / u.priceN)
	}
	row[sessionItem] = 0
	if ui.session {
		row[sessionItem] = 1
	}
	row[sessionCategoryShare] = nan
	if u.sessionLen > 0 && s.category != "" {
		row[sessionCategoryShare] = uc.session / u.sessionLen
	}
}
