package datagen

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/recserve/recserve/dataset"
)

// demo generates the default data set once, with its latent world, for the
// tests that inspect its statistics.
var demo = sync.OnceValues(func() (*world, *dataset.Dataset) {
	w, err := newWorld(Config{})
	if err != nil {
		panic(err)
	}
	return w, w.generate()
})

// small is a quick configuration for behaviour tests.
var small = Config{Users: 300, Items: 200}

func TestConfigDefaults(t *testing.T) {
	got, err := Config{}.withDefaults()
	if err != nil {
		t.Fatalf("Config{}.withDefaults() error = %v; want nil", err)
	}
	want := Config{
		Users: 5000, Items: 2000, Seed: 1, Start: DefaultStart, Days: 90,
		Categories: 20, Brands: 133, SessionsPerUser: 10, ViewsPerSession: 5,
		FollowProb: 0.6, NewItems: 0.12, RatingProb: 0.1, MissingPrice: 0.01,
	}
	if got != want {
		t.Errorf("Config{}.withDefaults() = %+v; want %+v", got, want)
	}
	got, err = Config{Items: 30, FollowProb: -1, NewItems: -1, RatingProb: -1, MissingPrice: -1}.withDefaults()
	if err != nil {
		t.Fatalf("withDefaults() error = %v; want nil", err)
	}
	if got.Categories != 6 || got.Brands != 6 || got.FollowProb != 0 || got.NewItems != 0 || got.RatingProb != 0 || got.MissingPrice != 0 {
		t.Errorf("Config{Items: 30, negatives}.withDefaults() = %+v; want 6 categories, 6 brands, zero probabilities", got)
	}
}

func TestGenerateInvalidConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // a substring of the error
	}{
		{"negative users", Config{Users: -1}, "users = -1"},
		{"too many users", Config{Users: maxUsers + 1}, "users = "},
		{"negative items", Config{Items: -5}, "items = -5"},
		{"too few items", Config{Items: 4}, "items = 4"},
		{"items for categories", Config{Items: 50, Categories: 20}, "items = 50 for 20 categories"},
		{"negative days", Config{Days: -1}, "days = -1"},
		{"too many days", Config{Days: maxDays + 1}, "days = "},
		{"too many categories", Config{Categories: 21}, "categories = 21"},
		{"too few brands", Config{Brands: 3}, "brands = 3 for 20 categories"},
		{"too many brands", Config{Brands: maxBrands + 1}, "brands = "},
		{"fractional sessions", Config{SessionsPerUser: 0.5}, "sessions per user = 0.5"},
		{"negative sessions", Config{SessionsPerUser: -2}, "sessions per user = -2"},
		{"NaN views", Config{ViewsPerSession: math.NaN()}, "views per session = NaN"},
		{"follow above 1", Config{FollowProb: 1.5}, "follow probability = 1.5"},
		{"new items above 0.9", Config{NewItems: 0.95}, "new items fraction = 0.95"},
		{"rating above 1", Config{RatingProb: 2}, "rating probability = 2"},
		{"missing price NaN", Config{MissingPrice: math.NaN()}, "missing price fraction = NaN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds, err := Generate(tt.cfg)
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Generate(%+v) error = %v; want ErrInvalidConfig naming %q", tt.cfg, err, tt.want)
			}
			if ds != nil {
				t.Errorf("Generate(%+v) data set = non-nil; want nil with an error", tt.cfg)
			}
		})
	}
}

func TestGenerateEdgeConfigs(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"minimal", Config{Users: 1, Items: 5}},
		{"one category one brand", Config{Users: 20, Items: 7, Categories: 1, Brands: 1}},
		{"one day", Config{Users: 50, Items: 100, Days: 1}},
		{"no extras", Config{Users: 50, Items: 100, FollowProb: -1, NewItems: -1, RatingProb: -1, MissingPrice: -1}},
		{"everything new", Config{Users: 50, Items: 100, NewItems: 0.9}},
		{"busy", Config{Users: 20, Items: 100, SessionsPerUser: 200, ViewsPerSession: 50}},
		{"odd start", Config{Users: 20, Items: 100, Start: time.Date(1999, 12, 31, 23, 59, 59, 0, time.FixedZone("x", 3600))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := newWorld(tt.cfg)
			if err != nil {
				t.Fatalf("newWorld(%+v) error = %v; want nil", tt.cfg, err)
			}
			checkValid(t, w, w.generate())
		})
	}
}

func TestGenerateNoExtras(t *testing.T) {
	ds, err := Generate(Config{Users: 300, Items: 200, FollowProb: -1, NewItems: -1, RatingProb: -1, MissingPrice: -1})
	if err != nil {
		t.Fatalf("Generate() error = %v; want nil", err)
	}
	for _, it := range ds.Items {
		if math.IsNaN(it.Price) {
			t.Fatalf("item %s price = NaN; want known prices with MissingPrice -1", it.ID)
		}
	}
	for _, in := range ds.Interactions {
		if in.Event == dataset.Rating {
			t.Fatalf("interaction %+v is a rating; want none with RatingProb -1", in)
		}
	}
}

// checkValid checks the invariants every generated data set keeps.
func checkValid(t *testing.T, w *world, ds *dataset.Dataset) {
	t.Helper()
	cfg := w.cfg
	if len(ds.Users) != cfg.Users || len(ds.Items) != cfg.Items {
		t.Fatalf("len(Users), len(Items) = %d, %d; want %d, %d", len(ds.Users), len(ds.Items), cfg.Users, cfg.Items)
	}
	itemIdx := make(map[string]int, len(ds.Items))
	for i, it := range ds.Items {
		if i > 0 && it.ID <= ds.Items[i-1].ID {
			t.Fatalf("Items[%d].ID = %q after %q; want increasing ids", i, it.ID, ds.Items[i-1].ID)
		}
		if it.Title == "" || it.Category == "" || it.Brand == "" || it.Description == "" {
			t.Fatalf("Items[%d] = %+v; want title, category, brand and description", i, it)
		}
		if !math.IsNaN(it.Price) && it.Price <= 0 {
			t.Fatalf("Items[%d].Price = %v; want positive or NaN", i, it.Price)
		}
		itemIdx[it.ID] = i
	}
	userIdx := make(map[string]int, len(ds.Users))
	for i, u := range ds.Users {
		if i > 0 && u.ID <= ds.Users[i-1].ID {
			t.Fatalf("Users[%d].ID = %q after %q; want increasing ids", i, u.ID, ds.Users[i-1].ID)
		}
		if _, err := time.Parse(time.DateOnly, u.Attrs["signup"]); err != nil {
			t.Fatalf("Users[%d].Attrs[signup] = %q; want a date", i, u.Attrs["signup"])
		}
		if s := u.Attrs["segment"]; s != "budget" && s != "mainstream" && s != "premium" {
			t.Fatalf("Users[%d].Attrs[segment] = %q; want budget, mainstream or premium", i, s)
		}
		userIdx[u.ID] = i
	}
	lastSess := make(map[string]string) // user → its latest session id
	for k, in := range ds.Interactions {
		i, ok := itemIdx[in.ItemID]
		if !ok {
			t.Fatalf("Interactions[%d].ItemID = %q; want an existing item", k, in.ItemID)
		}
		u, ok := userIdx[in.UserID]
		if !ok {
			t.Fatalf("Interactions[%d].UserID = %q; want an existing user", k, in.UserID)
		}
		if in.Timestamp < w.items[i].launch {
			t.Fatalf("Interactions[%d].Timestamp = %d; want at or after the launch of %s, %d", k, in.Timestamp, in.ItemID, w.items[i].launch)
		}
		if in.Timestamp < w.start || in.Timestamp >= w.end {
			t.Fatalf("Interactions[%d].Timestamp = %d; want in [%d, %d)", k, in.Timestamp, w.start, w.end)
		}
		if k > 0 {
			prev := ds.Interactions[k-1]
			if in.Timestamp < prev.Timestamp || in.Timestamp == prev.Timestamp && u < userIdx[prev.UserID] {
				t.Fatalf("Interactions[%d] = %+v after %+v; want sorted by timestamp, then user", k, in, prev)
			}
		}
		switch in.Event {
		case dataset.View, dataset.Cart, dataset.Purchase:
			if in.Value != 1 {
				t.Fatalf("Interactions[%d].Value = %v for %v; want 1", k, in.Value, in.Event)
			}
			want := fmt.Sprintf("s%s-", strings.TrimPrefix(in.UserID, "u"))
			if !strings.HasPrefix(in.SessionID, want) {
				t.Fatalf("Interactions[%d].SessionID = %q; want prefix %q", k, in.SessionID, want)
			}
			if last := lastSess[in.UserID]; last != in.SessionID {
				if n, m := sessNum(t, last), sessNum(t, in.SessionID); m != n+1 {
					t.Fatalf("Interactions[%d].SessionID = %q after %q; want sessions numbered 1, 2, … in time order", k, in.SessionID, last)
				}
				lastSess[in.UserID] = in.SessionID
			}
		case dataset.Rating:
			if in.Value < 1 || in.Value > 5 || in.Value != math.Trunc(in.Value) || in.SessionID != "" {
				t.Fatalf("Interactions[%d] = %+v; want a 1-5 rating without session", k, in)
			}
		default:
			t.Fatalf("Interactions[%d].Event = %v; want view, cart, purchase or rating", k, in.Event)
		}
	}
}

// sessNum returns n of the session id "s<user>-<n>", 0 for "".
func sessNum(t *testing.T, id string) int {
	if id == "" {
		return 0
	}
	var n int
	if _, err := fmt.Sscan(id[strings.LastIndexByte(id, '-')+1:], &n); err != nil {
		t.Fatalf("session id %q: %v", id, err)
	}
	return n
}

func TestGenerateDemo(t *testing.T) {
	w, ds := demo()
	checkValid(t, w, ds)
	if n := len(ds.Interactions); n < 200_000 {
		t.Errorf("len(Generate(Config{}).Interactions) = %d; want ≥ 200000", n)
	}
	if ds.Users[0].ID != "u00001" || ds.Items[len(ds.Items)-1].ID != "i02000" {
		t.Errorf("first user, last item = %q, %q; want u00001, i02000", ds.Users[0].ID, ds.Items[len(ds.Items)-1].ID)
	}
	cats := make(map[string]int)
	cjk := 0
	for _, it := range ds.Items {
		cats[it.Category]++
		if strings.ContainsFunc(it.Title, func(r rune) bool { return unicode.Is(unicode.Han, r) }) {
			cjk++
		}
	}
	if len(cats) != 20 {
		t.Errorf("categories = %d; want 20", len(cats))
	}
	if cjk == 0 || cjk > len(ds.Items)/5 {
		t.Errorf("items with Chinese titles = %d; want a few (> 0, ≤ %d)", cjk, len(ds.Items)/5)
	}
}

func equalDatasets(a, b *dataset.Dataset) bool {
	return slices.Equal(a.Interactions, b.Interactions) &&
		slices.EqualFunc(a.Items, b.Items, func(x, y dataset.Item) bool {
			px, py := x.Price, y.Price
			x.Price, y.Price = 0, 0
			return x == y && math.Float64bits(px) == math.Float64bits(py)
		}) &&
		slices.EqualFunc(a.Users, b.Users, func(x, y dataset.User) bool {
			return x.ID == y.ID && maps.Equal(x.Attrs, y.Attrs)
		})
}

func TestGenerateDeterministic(t *testing.T) {
	tests := []struct {
		a, b Config
		want bool
	}{
		{small, small, true},
		{Config{Users: 300, Items: 200, Seed: 1}, Config{Users: 300, Items: 200}, true},
		{Config{Users: 300, Items: 200, Seed: 7}, Config{Users: 300, Items: 200, Seed: 7}, true},
		{Config{Users: 300, Items: 200, Seed: 7}, Config{Users: 300, Items: 200, Seed: 8}, false},
		{Config{Users: 300, Items: 200, Seed: -3}, Config{Users: 300, Items: 200, Seed: 3}, false},
	}
	for _, tt := range tests {
		a, err := Generate(tt.a)
		if err != nil {
			t.Fatalf("Generate(%+v) error = %v", tt.a, err)
		}
		b, err := Generate(tt.b)
		if err != nil {
			t.Fatalf("Generate(%+v) error = %v", tt.b, err)
		}
		if got := equalDatasets(a, b); got != tt.want {
			t.Errorf("Generate(seed %d) equals Generate(seed %d) = %v; want %v", tt.a.Seed, tt.b.Seed, got, tt.want)
		}
	}
}

func TestGenerateIndependentOfParallelism(t *testing.T) {
	cfg := Config{Users: 2000, Items: 500, Seed: 42}
	a, err := Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	b, err := Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !equalDatasets(a, b) {
		t.Errorf("Generate(%+v) with GOMAXPROCS=1 differs from the parallel run; want identical", cfg)
	}
}

// TestUserIndependentOfOrder pins that a user depends only on the seed and
// its number, not on the users a generator produced before it.
func TestUserIndependentOfOrder(t *testing.T) {
	w, err := newWorld(small)
	if err != nil {
		t.Fatal(err)
	}
	n := w.cfg.Users
	forward, backward := newUserGen(w), newUserGen(w)
	want := make([][]event, n)
	for u := range n {
		_, want[u], _ = forward.user(u, 5)
	}
	for u := n - 1; u >= 0; u-- {
		if _, got, _ := backward.user(u, 5); !slices.Equal(got, want[u]) {
			t.Fatalf("user(%d) after user(%d) = %d events; want the %d events it has after user(%d)", u, u+1, len(got), len(want[u]), u-1)
		}
	}
}

func TestFunnel(t *testing.T) {
	_, ds := demo()
	counts := make(map[dataset.Event]int)
	for _, in := range ds.Interactions {
		counts[in.Event]++
	}
	v, c, p, r := counts[dataset.View], counts[dataset.Cart], counts[dataset.Purchase], counts[dataset.Rating]
	if !(v > c && c > p && p > r && r > 0) {
		t.Errorf("views, carts, purchases, ratings = %d, %d, %d, %d; want strictly decreasing and > 0", v, c, p, r)
	}
	if rate := float64(c) / float64(v); rate < 0.03 || rate > 0.2 {
		t.Errorf("carts/views = %.3f; want in [0.03, 0.2]", rate)
	}
	if rate := float64(p) / float64(c); rate < 0.3 || rate > 0.8 {
		t.Errorf("purchases/carts = %.3f; want in [0.3, 0.8]", rate)
	}
}

func TestPowerLaw(t *testing.T) {
	_, ds := demo()
	perItem := make(map[string]int)
	for _, in := range ds.Interactions {
		perItem[in.ItemID]++
	}
	counts := slices.Collect(maps.Values(perItem))
	slices.SortFunc(counts, func(a, b int) int { return b - a })
	top := 0
	for _, c := range counts[:len(ds.Items)/10] {
		top += c
	}
	if share := float64(top) / float64(len(ds.Interactions)); share < 0.4 {
		t.Errorf("share of events on the top 10%% items = %.3f; want > 0.4", share)
	}
	if len(counts) < len(ds.Items)*9/10 {
		t.Errorf("items with events = %d; want ≥ 90%% of %d (a long tail, not a cliff)", len(counts), len(ds.Items))
	}
}

func TestSequentialSignal(t *testing.T) {
	w, ds := demo()
	itemIdx := make(map[string]int32, len(ds.Items))
	for i, it := range ds.Items {
		itemIdx[it.ID] = int32(i)
	}
	// Consecutive views within a session.
	type pair struct{ a, b int32 }
	var pairs []pair
	prev := make(map[string]int32)
	for _, in := range ds.Interactions {
		if in.Event != dataset.View {
			continue
		}
		i := itemIdx[in.ItemID]
		if p, ok := prev[in.SessionID]; ok {
			pairs = append(pairs, pair{p, i})
		}
		prev[in.SessionID] = i
	}
	links := func(ps []pair, forward bool) float64 {
		n := 0
		for _, p := range ps {
			from, to := p.a, p.b
			if !forward {
				from, to = to, from
			}
			if slices.Contains(w.items[from].succ, to) {
				n++
			}
		}
		return float64(n) / float64(len(ps))
	}
	// Chance: the same items, with the followers shuffled across pairs.
	r := rand.New(rand.NewPCG(1, 2))
	shuffled := slices.Clone(pairs)
	r.Shuffle(len(shuffled), func(i, j int) { shuffled[i].b, shuffled[j].b = shuffled[j].b, shuffled[i].b })

	fwd, back, chance := links(pairs, true), links(pairs, false), links(shuffled, true)
	t.Logf("view pairs %d: follow a link %.3f, reverse a link %.3f, chance %.4f", len(pairs), fwd, back, chance)
	if fwd < 0.45 || fwd < 20*chance {
		t.Errorf("fraction of consecutive views following a successor link = %.3f; want ≥ 0.45 and ≥ 20× chance (%.4f)", fwd, chance)
	}
	// Direction matters: what follows an item is not what precedes it.
	if fwd < 4*back {
		t.Errorf("forward link fraction = %.3f, reverse = %.3f; want forward ≥ 4× reverse", fwd, back)
	}
}

func titleWords(it dataset.Item) []string {
	words := strings.Fields(strings.ToLower(it.Title))[1:] // drop the brand
	slices.Sort(words)
	return slices.Compact(words)
}

func jaccard(a, b []string) float64 {
	inter := 0
	for _, w := range a {
		if _, ok := slices.BinarySearch(b, w); ok {
			inter++
		}
	}
	return float64(inter) / float64(len(a)+len(b)-inter)
}

func TestCategoryVocabulary(t *testing.T) {
	_, ds := demo()
	words := make([][]string, len(ds.Items))
	for i, it := range ds.Items {
		words[i] = titleWords(it)
	}
	r := rand.New(rand.NewPCG(3, 4))
	var same, other float64
	var nSame, nOther int
	for range 200_000 {
		i, j := r.IntN(len(ds.Items)), r.IntN(len(ds.Items))
		if i == j {
			continue
		}
		s := jaccard(words[i], words[j])
		if ds.Items[i].Category == ds.Items[j].Category {
			same += s
			nSame++
		} else {
			other += s
			nOther++
		}
	}
	same /= float64(nSame)
	other /= float64(nOther)
	if same < 0.05 || same < 10*other {
		t.Errorf("mean title Jaccard within a category = %.4f, across = %.4f; want ≥ 0.05 and ≥ 10× across", same, other)
	}
}

func TestNewArrivals(t *testing.T) {
	w, ds := demo()
	cut := w.start + int64(float64(w.end-w.start)*(1-newWindow))
	late := make(map[string]bool)
	for i := range w.items {
		if w.items[i].launch >= cut {
			late[w.items[i].ID] = true
		}
	}
	if n, want := len(late), len(ds.Items)*12/100; n != want {
		t.Errorf("items launched in the last 15%% = %d; want %d", n, want)
	}
	active := make(map[string]bool)
	for _, in := range ds.Interactions {
		if late[in.ItemID] {
			active[in.ItemID] = true
		}
	}
	if len(active) < len(late)*9/10 {
		t.Errorf("new arrivals with interactions = %d of %d; want ≥ 90%%", len(active), len(late))
	}
}

// TestPurchasePredictable checks that a single observable feature, the share
// of the user's views in the item's category, ranks viewed items by purchase.
func TestPurchasePredictable(t *testing.T) {
	_, ds := demo()
	type key struct{ user, item string }
	views := make(map[string]map[string]int) // user → category → views
	cat := make(map[string]string, len(ds.Items))
	for _, it := range ds.Items {
		cat[it.ID] = it.Category
	}
	viewed := make(map[key]bool)
	bought := make(map[key]bool)
	var order []key
	for _, in := range ds.Interactions {
		k := key{in.UserID, in.ItemID}
		switch in.Event {
		case dataset.View:
			if views[in.UserID] == nil {
				views[in.UserID] = make(map[string]int)
			}
			views[in.UserID][cat[in.ItemID]]++
			if !viewed[k] {
				viewed[k] = true
				order = append(order, k)
			}
		case dataset.Purchase:
			bought[k] = true
		}
	}
	type scored struct {
		s   float64
		pos bool
	}
	var xs []scored
	for _, k := range order {
		total := 0
		for _, n := range views[k.user] {
			total += n
		}
		xs = append(xs, scored{float64(views[k.user][cat[k.item]]) / float64(total), bought[k]})
	}
	if auc := aucOf(xs, func(x scored) (float64, bool) { return x.s, x.pos }); auc < 0.62 {
		t.Errorf("AUC(category share → purchase) = %.3f; want ≥ 0.62", auc)
	}
}

func aucOf[T any](xs []T, f func(T) (float64, bool)) float64 {
	type sp struct {
		s   float64
		pos bool
	}
	v := make([]sp, len(xs))
	for i, x := range xs {
		v[i].s, v[i].pos = f(x)
	}
	sort.SliceStable(v, func(i, j int) bool { return v[i].s < v[j].s })
	var rankSum, npos float64
	for i := 0; i < len(v); {
		j := i
		for j < len(v) && v[j].s == v[i].s {
			j++
		}
		mid := float64(i+j+1) / 2 // average rank of ties, 1-based
		for k := i; k < j; k++ {
			if v[k].pos {
				rankSum += mid
				npos++
			}
		}
		i = j
	}
	nneg := float64(len(v)) - npos
	return (rankSum - npos*(npos+1)/2) / (npos * nneg)
}

func TestRoundPrice(t *testing.T) {
	tests := []struct{ in, want float64 }{
		{12.3, 11.99},
		{12.6, 12.99},
		{999.5, 999.99},
		{3.14, 3.09},
		{0.01, 0.49},
	}
	for _, tt := range tests {
		if got := roundPrice(tt.in); got != tt.want {
			t.Errorf("roundPrice(%v) = %v; want %v", tt.in, got, tt.want)
		}
	}
}

func BenchmarkGenerate(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		ds, err := Generate(Config{})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(ds.Interactions)), "interactions/op")
	}
}
