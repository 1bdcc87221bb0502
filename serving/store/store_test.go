package store_test

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/serving/store"
)

func testData() *dataset.Dataset {
	return &dataset.Dataset{
		Items: []dataset.Item{
			{ID: "b", Title: "Boots", Category: "shoes", Brand: "acme", Price: 80, Description: "warm"},
			{ID: "a", Title: "Apron", Category: "kitchen", Price: math.NaN()},
		},
		Interactions: []dataset.Interaction{
			{UserID: "u1", ItemID: "b", Event: dataset.View, Value: 1, Timestamp: 300},
			{UserID: "u2", ItemID: "a", Event: dataset.Purchase, Value: 1, Timestamp: 10},
			{UserID: "u1", ItemID: "a", Event: dataset.Cart, Value: 2, Timestamp: 100},
			{UserID: "u1", ItemID: "ghost", Event: dataset.Rating, Value: 4, Timestamp: 300},
			{UserID: "u1", ItemID: "c", Event: dataset.View, Value: 1, Timestamp: 200},
			{UserID: "u1", ItemID: "b", Event: dataset.Purchase, Value: 1, Timestamp: 300},
		},
	}
}

func itemsOf(h []dataset.Interaction) []string {
	var out []string
	for _, in := range h {
		out = append(out, in.ItemID+"/"+in.Event.String())
	}
	return out
}

func TestHistory(t *testing.T) {
	m := store.New(testData())
	tests := []struct {
		user string
		want []string
	}{
		// Oldest first; equal timestamps (300) keep file order.
		{"u1", []string{"a/cart", "c/view", "b/view", "ghost/rating", "b/purchase"}},
		{"u2", []string{"a/purchase"}},
		{"stranger", nil},
		{"", nil},
	}
	for _, tt := range tests {
		h, err := m.History(t.Context(), tt.user)
		if err != nil {
			t.Errorf("History(%q) error = %v; want nil", tt.user, err)
			continue
		}
		if got := itemsOf(h); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("History(%q) = %v; want %v", tt.user, got, tt.want)
		}
		if tt.want == nil && h != nil {
			t.Errorf("History(%q) = %#v; want nil", tt.user, h)
		}
	}
	h, _ := m.History(t.Context(), "u1")
	if h[0] != (dataset.Interaction{UserID: "u1", ItemID: "a", Event: dataset.Cart, Value: 2, Timestamp: 100}) {
		t.Errorf("History(u1)[0] = %+v; want the full cart interaction", h[0])
	}
}

func TestHistoryCancelled(t *testing.T) {
	m := store.New(testData())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := m.History(ctx, "u1"); !errors.Is(err, context.Canceled) {
		t.Errorf("History(cancelled) error = %v; want context.Canceled", err)
	}
}

func TestItems(t *testing.T) {
	m := store.New(testData())
	if got, want := m.ItemIDs(), []string{"a", "b", "c", "ghost"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ItemIDs() = %v; want %v", got, want)
	}
	tests := []struct {
		id   string
		ok   bool
		want dataset.Item
	}{
		{"b", true, dataset.Item{ID: "b", Title: "Boots", Category: "shoes", Brand: "acme", Price: 80, Description: "warm"}},
		{"c", true, dataset.Item{ID: "c"}},         // only in interactions
		{"ghost", true, dataset.Item{ID: "ghost"}}, // only in interactions
		{"nope", false, dataset.Item{}},
	}
	for _, tt := range tests {
		got, ok := m.Item(tt.id)
		if ok != tt.ok {
			t.Errorf("Item(%q) ok = %v; want %v", tt.id, ok, tt.ok)
			continue
		}
		if !ok {
			continue
		}
		// Compare prices separately: an unknown price is NaN.
		wantNaN := tt.want.Price == 0 && tt.id != "b"
		if wantNaN != math.IsNaN(got.Price) {
			t.Errorf("Item(%q).Price = %v; want NaN = %v", tt.id, got.Price, wantNaN)
		}
		got.Price, tt.want.Price = 0, 0
		if got != tt.want {
			t.Errorf("Item(%q) = %+v; want %+v", tt.id, got, tt.want)
		}
	}
	if got, _ := m.Item("a"); got.Title != "Apron" || !math.IsNaN(got.Price) {
		t.Errorf("Item(a) = %+v; want the catalogue entry with NaN price", got)
	}
}

func TestCounts(t *testing.T) {
	m := store.New(testData())
	if got := m.Users(); got != 2 {
		t.Errorf("Users() = %d; want 2", got)
	}
	if got := m.Events(); got != 6 {
		t.Errorf("Events() = %d; want 6", got)
	}
	empty := store.New(&dataset.Dataset{})
	if empty.Users() != 0 || empty.Events() != 0 || len(empty.ItemIDs()) != 0 {
		t.Errorf("empty store = %d users %d events %d items; want 0 0 0", empty.Users(), empty.Events(), len(empty.ItemIDs()))
	}
}

func TestNewDoesNotAliasInput(t *testing.T) {
	d := testData()
	m := store.New(d)
	d.Interactions[0].ItemID = "changed"
	d.Items[0].Title = "changed"
	h, _ := m.History(t.Context(), "u1")
	for _, in := range h {
		if in.ItemID == "changed" {
			t.Errorf("History(u1) saw a later change to the input data set")
		}
	}
	if it, _ := m.Item("b"); it.Title != "Boots" {
		t.Errorf("Item(b).Title = %q after changing the input; want Boots", it.Title)
	}
}

func TestLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := dataset.Write(dir, testData()); err != nil {
		t.Fatal(err)
	}
	m, err := store.Load(dir)
	if err != nil {
		t.Fatalf("Load(%s) error = %v", dir, err)
	}
	h, _ := m.History(t.Context(), "u1")
	if got, want := itemsOf(h), []string{"a/cart", "c/view", "b/view", "ghost/rating", "b/purchase"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Load(%s).History(u1) = %v; want %v", dir, got, want)
	}
	if it, ok := m.Item("b"); !ok || it.Category != "shoes" {
		t.Errorf("Load(%s).Item(b) = %+v, %v; want category shoes", dir, it, ok)
	}
	if _, err := store.Load(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Errorf("Load(missing dir) error = nil; want an error")
	}
}

func TestProfile(t *testing.T) {
	m := store.New(testData())
	tests := []struct {
		user string
		seen []string
	}{
		{"u1", []string{"a", "b", "c", "ghost"}},
		{"u2", []string{"a"}},
		{"stranger", nil},
	}
	for _, tt := range tests {
		p, err := m.Profile(t.Context(), tt.user)
		if err != nil {
			t.Errorf("Profile(%q) error = %v; want nil", tt.user, err)
			continue
		}
		var seen []string
		for id := range p.Seen {
			seen = append(seen, id)
		}
		sort.Strings(seen)
		if !reflect.DeepEqual(seen, tt.seen) {
			t.Errorf("Profile(%q).Seen = %v; want %v", tt.user, seen, tt.seen)
		}
		h, _ := m.History(t.Context(), tt.user)
		if !reflect.DeepEqual(p.History, h) {
			t.Errorf("Profile(%q).History = %v; want History() = %v", tt.user, itemsOf(p.History), itemsOf(h))
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := m.Profile(ctx, "u1"); !errors.Is(err, context.Canceled) {
		t.Errorf("Profile(cancelled) error = %v; want context.Canceled", err)
	}
}
