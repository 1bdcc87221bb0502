package features_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/features"
)

const day = 86400

// catalogue: shoes s1 (40), s2 (60), hat h1 (no price), and item x known
// only from events.
func catalogue() []dataset.Item {
	return []dataset.Item{
		{ID: "s1", Category: "shoes", Brand: "acme", Price: 40},
		{ID: "s2", Category: "shoes", Brand: "zeta", Price: 60},
		{ID: "h1", Category: "hats", Brand: "acme", Price: math.NaN()},
	}
}

// events: now is day 10. u1 viewed s1 twice (days 1, 9), carted s1 (day 9),
// viewed h1 (day 9, same session), bought s2 on day 2 after a view. u2 bought
// s1 on day 8 (recent) and s1 again on day 8.5.
func events() []dataset.Interaction {
	ev := func(u, i string, e dataset.Event, t float64) dataset.Interaction {
		return dataset.Interaction{UserID: u, ItemID: i, Event: e, Value: 1, Timestamp: int64(t * day)}
	}
	return []dataset.Interaction{
		ev("u1", "s1", dataset.View, 1),
		ev("u1", "s2", dataset.View, 2),
		ev("u1", "s2", dataset.Purchase, 2),
		ev("u2", "s1", dataset.Purchase, 8),
		ev("u2", "s1", dataset.Purchase, 8.5),
		ev("u1", "s1", dataset.View, 9),
		ev("u1", "s1", dataset.Cart, 9+60.0/day),
		ev("u1", "h1", dataset.View, 9+120.0/day),
		ev("u3", "x", dataset.View, 9.5),
		ev("u9", "s2", dataset.View, 11), // after now: ignored
	}
}

func history(user string) []dataset.Interaction {
	var h []dataset.Interaction
	for _, in := range events() {
		if in.UserID == user && in.Timestamp < 10*day {
			h = append(h, in)
		}
	}
	return h
}

func row(t *testing.T, p *features.Pipeline, q models.Query, item string) map[string]float64 {
	t.Helper()
	names := features.Names()
	b, err := p.Bind(names)
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]float64, len(names))
	if err := b.Rows(q, []string{item}, dst); err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for i, n := range names {
		out[n] = dst[i]
	}
	return out
}

func TestRowsByHand(t *testing.T) {
	p := features.New(catalogue(), events(), features.Options{Now: 10 * day})
	nan := math.NaN()
	// Catalogue rates: 4 views (s1 ×2, s2, h1, x → 5 views), 1 cart, 3
	// purchases before now.
	conv, cart := 3.0/5, 1.0/5
	u1 := models.Query{UserID: "u1", History: history("u1")}
	// u1: 6 events (4 views, 1 cart, 1 purchase), 3 distinct items. Viewed
	// prices: s1 40, s2 60, s1 40 (h1 has none) → mean 140/3. Weights
	// (view 1, cart 3, purchase 5): shoes 1+1+5+1+3 = 11, hats 1, total 12;
	// brand acme 1+1+3+1 = 6. Session: s1 view, s1 cart, h1 view on day 9
	// (two minutes apart); the day-2 events are another session.
	avg := 140.0 / 3
	tests := []struct {
		name string
		q    models.Query
		item string
		want map[string]float64
	}{
		{"u1 and an item in the basket", u1, "s1", map[string]float64{
			"user_events": math.Log1p(6), "user_views": math.Log1p(4), "user_carts": math.Log1p(1),
			"user_purchases": math.Log1p(1), "user_distinct_items": math.Log1p(3),
			"user_days_since_last": 1 - 120.0/day, "user_days_since_purchase": 8, "user_buy_rate": 0.25,
			"user_avg_price": avg,
			"item_views":     math.Log1p(2), "item_carts": math.Log1p(1), "item_purchases": math.Log1p(2),
			"item_buyers": math.Log1p(1), "item_conversion": (2 + 20*conv) / (2 + 20), "item_cart_rate": (1 + 20*cart) / (2 + 20),
			"item_recent_views": math.Log1p(1), "item_recent_purchases": math.Log1p(2), "item_price": 40, "item_age_days": 9,
			"item_category_purchases": math.Log1p(3), "item_price_vs_category": 40.0 / 50,
			"ui_views": 2, "ui_carts": 1, "ui_purchases": 0, "ui_days_since": 1 - 60.0/day, "ui_abandoned_cart": 1,
			"ui_category_share": 11.0 / 12, "ui_category_purchases": 1, "ui_brand_share": 6.0 / 12, "ui_price_ratio": 40 / avg,
			"session_len": math.Log1p(3), "session_item": 1, "session_category_share": 2.0 / 3,
		}},
		{"u1 and a bought item outside the session", u1, "s2", map[string]float64{
			"ui_views": 1, "ui_purchases": 1, "ui_days_since": 8, "ui_abandoned_cart": 0, "session_item": 0,
			"item_buyers": math.Log1p(1), "item_recent_views": 0, "item_price_vs_category": 60.0 / 50, "ui_brand_share": 6.0 / 12,
		}},
		{"item without price or brand match", u1, "h1", map[string]float64{
			"item_price": nan, "item_price_vs_category": nan, "ui_price_ratio": nan, "item_category_purchases": 0,
			"ui_category_share": 1.0 / 12, "ui_category_purchases": 0, "session_category_share": 1.0 / 3,
		}},
		{"item known only from events", u1, "x", map[string]float64{
			"item_views": math.Log1p(1), "item_price": nan, "item_age_days": 0.5, "ui_category_share": nan,
			"ui_brand_share": nan, "item_category_purchases": nan, "session_category_share": nan,
		}},
		{"unknown item", u1, "nope", map[string]float64{
			"item_views": 0, "item_conversion": conv, "item_age_days": nan, "item_price": nan, "ui_days_since": nan,
		}},
		{"cold user", models.Query{}, "s1", map[string]float64{
			"user_events": 0, "user_days_since_last": nan, "user_days_since_purchase": nan, "user_buy_rate": 0,
			"user_avg_price": nan, "ui_category_share": nan, "ui_brand_share": nan, "ui_price_ratio": nan,
			"session_len": 0, "session_item": 0, "session_category_share": nan, "ui_days_since": nan,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := row(t, p, tt.q, tt.item)
			for name, want := range tt.want {
				g, ok := got[name]
				if !ok {
					t.Fatalf("no feature %q", name)
				}
				if math.IsNaN(want) != math.IsNaN(g) || !math.IsNaN(want) && math.Abs(g-want) > 1e-9 {
					t.Errorf("%s = %v; want %v", name, g, want)
				}
			}
		})
	}
}

// TestSessionItemsCount checks that request session items (appended to the
// history as views by the router) join the current session.
func TestSessionItemsCount(t *testing.T) {
	p := features.New(catalogue(), events(), features.Options{Now: 10 * day})
	h := history("u1")
	last := h[len(h)-1].Timestamp
	h = append(h, dataset.Interaction{UserID: "u1", ItemID: "s2", Event: dataset.View, Value: 1, Timestamp: last})
	got := row(t, p, models.Query{UserID: "u1", History: h, Session: []string{"s2"}}, "s2")
	if got["session_item"] != 1 || got["session_len"] != math.Log1p(4) {
		t.Errorf("session_item, session_len = %v, %v; want 1, log1p(4)", got["session_item"], got["session_len"])
	}
}

func TestBind(t *testing.T) {
	p := features.New(catalogue(), events(), features.Options{})
	if got := p.Now(); got != 11*day+1 {
		t.Errorf("Now() = %d; want one second after the last event (%d)", got, 11*day+1)
	}
	b, err := p.Bind([]string{"item_price", "ui_views"})
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]float64, 4)
	if err := b.Rows(models.Query{UserID: "u1", History: history("u1")}, []string{"s2", "s1"}, dst); err != nil {
		t.Fatal(err)
	}
	if want := []float64{60, 1, 40, 2}; !slices.Equal(dst, want) {
		t.Errorf("Rows(s2, s1) = %v; want %v (model order, item by item)", dst, want)
	}
	if err := b.Rows(models.Query{}, []string{"s1"}, dst); err == nil {
		t.Errorf("Rows with a wrong-sized dst: error = nil")
	}
	for _, bad := range [][]string{{"item_price", "price_of_tea"}, {}} {
		if _, err := p.Bind(bad); err == nil {
			t.Errorf("Bind(%q) error = nil; want an error", bad)
		} else if len(bad) > 1 && !strings.Contains(err.Error(), "price_of_tea") {
			t.Errorf("Bind(%q) error = %v; want it to name price_of_tea", bad, err)
		}
	}
	names := features.Names()
	names[0] = "mutated"
	if features.Names()[0] == "mutated" {
		t.Errorf("Names() shares its backing array")
	}
}

func TestSample(t *testing.T) {
	var hist, window []dataset.Interaction
	var cat []string
	for i := range 50 {
		cat = append(cat, "i"+strconv.Itoa(i))
	}
	for u := range 20 {
		us := "u" + strconv.Itoa(u)
		hist = append(hist, dataset.Interaction{UserID: us, ItemID: cat[u], Event: dataset.View, Timestamp: 1})
		if u%2 == 0 {
			window = append(window, dataset.Interaction{UserID: us, ItemID: cat[u+1], Event: dataset.Purchase, Timestamp: 2})
			window = append(window, dataset.Interaction{UserID: us, ItemID: cat[u+1], Event: dataset.Purchase, Timestamp: 3})
		}
	}
	opts := features.SampleOptions{NegItems: 4, HardFrac: 0.25, NegUsers: 2, Seed: 3}
	ex := features.Sample(hist, window, cat, opts)
	type pair struct{ u, i string }
	seen := map[pair]bool{}
	var pos, hard int
	for k, e := range ex {
		if seen[pair{e.UserID, e.ItemID}] {
			t.Fatalf("duplicate pair %v", e)
		}
		seen[pair{e.UserID, e.ItemID}] = true
		if k > 0 && (ex[k-1].UserID > e.UserID || ex[k-1].UserID == e.UserID && ex[k-1].ItemID > e.ItemID) {
			t.Fatalf("not sorted at %d: %v then %v", k, ex[k-1], e)
		}
		n, _ := strconv.Atoi(e.UserID[1:])
		bought := n%2 == 0 && e.ItemID == cat[n+1]
		if (e.Label == 1) != bought {
			t.Errorf("%v labelled %v; bought = %v", e, e.Label, bought)
		}
		if e.Label == 1 {
			pos++
		}
		if e.Label == 0 && n%2 == 0 && e.ItemID == cat[n] {
			hard++
		}
	}
	// 10 positives (duplicates collapse), each with 4 item negatives (1 of
	// them the user's viewed item) and 2 user negatives.
	if pos != 10 {
		t.Errorf("%d positives; want 10", pos)
	}
	if want := 10 * (1 + 4 + 2); len(ex) != want {
		t.Errorf("%d examples; want %d", len(ex), want)
	}
	if hard != 10 {
		t.Errorf("%d hard negatives (the user's viewed item); want 10", hard)
	}
	if again := features.Sample(hist, window, cat, opts); !slices.Equal(again, ex) {
		t.Errorf("Sample is not deterministic for a seed")
	}
}

// TestExportNoLeak checks that every row's features come only from events
// before its cut: changing events after the last cut's window start leaves
// the earlier cuts' rows unchanged, and the label window is right.
func TestExportNoLeak(t *testing.T) {
	d := &dataset.Dataset{Items: catalogue()}
	for u := range 30 {
		us := "u" + strconv.Itoa(u)
		for k := range 20 {
			ts := int64(k)*day + int64(u)*100
			item := []string{"s1", "s2", "h1"}[(u+k)%3]
			ev := dataset.View
			if (u+k)%4 == 0 {
				ev = dataset.Purchase
			}
			d.Interactions = append(d.Interactions, dataset.Interaction{UserID: us, ItemID: item, Event: ev, Value: 1, Timestamp: ts})
		}
	}
	export := func(d *dataset.Dataset) [][]string {
		var buf bytes.Buffer
		sum, err := features.Export(context.Background(), &buf, d, features.ExportOptions{WindowDays: 5, Cuts: 3})
		if err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(&buf).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(sum.Cuts) != 3 || sum.Rows != len(recs)-1 || sum.Positives == 0 {
			t.Fatalf("summary %+v for %d rows", sum, len(recs)-1)
		}
		return recs
	}
	base := export(d)
	if got, want := strings.Join(base[0][:4], ","), "user_id,item_id,cut,label"; got != want {
		t.Fatalf("header starts %s; want %s", got, want)
	}
	if got, want := base[0][4:], features.Names(); !slices.Equal(got, want) {
		t.Fatalf("header features %v; want %v", got, want)
	}
	lastCut := base[len(base)-1][2]
	// Add a purchase in the last window for a user: earlier cuts' rows must
	// not change.
	changed := &dataset.Dataset{Items: d.Items, Interactions: slices.Clone(d.Interactions)}
	cut, _ := strconv.ParseInt(lastCut, 10, 64)
	changed.Interactions = append(changed.Interactions, dataset.Interaction{UserID: "u1", ItemID: "h1", Event: dataset.Purchase, Value: 1, Timestamp: cut + 10})
	after := export(changed)
	early := func(recs [][]string) []string {
		var out []string
		for _, r := range recs[1:] {
			if r[2] != lastCut {
				out = append(out, strings.Join(r, ","))
			}
		}
		return out
	}
	if !slices.Equal(early(base), early(after)) {
		t.Errorf("rows of earlier cuts changed when an event after them was added")
	}
	found := false
	for _, r := range after[1:] {
		if r[0] == "u1" && r[1] == "h1" && r[2] == lastCut {
			found = r[3] == "1"
		}
	}
	if !found {
		t.Errorf("the added purchase is not a positive row of the last cut")
	}
}

func TestExportErrors(t *testing.T) {
	var buf bytes.Buffer
	if _, err := features.Export(context.Background(), &buf, &dataset.Dataset{}, features.ExportOptions{}); err == nil {
		t.Errorf("Export(no interactions) error = nil")
	}
	views := &dataset.Dataset{Interactions: []dataset.Interaction{
		{UserID: "u", ItemID: "i", Event: dataset.View, Timestamp: 1},
		{UserID: "u", ItemID: "i", Event: dataset.View, Timestamp: 30 * day},
	}}
	if _, err := features.Export(context.Background(), &buf, views, features.ExportOptions{}); err == nil || !strings.Contains(err.Error(), "no purchases") {
		t.Errorf("Export(no purchases) error = %v; want one saying there are no purchases", err)
	}
}
