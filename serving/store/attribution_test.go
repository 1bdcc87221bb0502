package store_test

import (
	"math"
	"testing"
	"time"

	"github.com/recserve/recserve/serving/store"
)

func TestAttribute(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	// The user's impressions, newest first: r2 showed b and c ten minutes
	// after r1 showed a and b.
	imps := []store.Impression{
		{ID: "r2", Time: t0.Add(10 * time.Minute), UserID: "u1", Items: []string{"b", "c"}},
		{ID: "r1", Time: t0, UserID: "u1", Items: []string{"a", "b"}},
	}
	types := store.DefaultEventTypes()
	prices := map[string]float64{"a": 10, "b": 4, "c": math.NaN()}
	price := func(item string) float64 {
		if p, ok := prices[item]; ok {
			return p
		}
		return math.NaN()
	}
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	tests := []struct {
		name string
		ev   store.Event
		want *store.Outcome // nil: not attributed
	}{
		{"by id", store.Event{ID: "e1", UserID: "u1", ItemID: "a", Type: "view", Time: at(time.Hour), RecommendationID: "r1"},
			&store.Outcome{ImpressionID: "r1", Position: 1, ByID: true}},
		{"by id beyond the window", store.Event{UserID: "u1", ItemID: "a", Type: "view", Time: at(48 * time.Hour), RecommendationID: "r1"},
			&store.Outcome{ImpressionID: "r1", Position: 1, ByID: true}},
		{"by id, an item the answer did not show", store.Event{UserID: "u1", ItemID: "z", Type: "purchase", Time: at(time.Minute), RecommendationID: "r1"},
			&store.Outcome{ImpressionID: "r1", Position: 0, ByID: true, Purchase: true}},
		{"unknown id falls back to the window", store.Event{UserID: "u1", ItemID: "a", Type: "view", Time: at(5 * time.Minute), RecommendationID: "nope"},
			&store.Outcome{ImpressionID: "r1", Position: 1}},
		{"by window: newest impression showing the item", store.Event{UserID: "u1", ItemID: "b", Type: "cart", Time: at(15 * time.Minute)},
			&store.Outcome{ImpressionID: "r2", Position: 1}},
		{"by window: an older impression when the newer did not show it", store.Event{UserID: "u1", ItemID: "a", Type: "view", Time: at(15 * time.Minute)},
			&store.Outcome{ImpressionID: "r1", Position: 1}},
		{"by window: an impression after the event does not count", store.Event{UserID: "u1", ItemID: "b", Type: "view", Time: at(5 * time.Minute)},
			&store.Outcome{ImpressionID: "r1", Position: 2}},
		{"click outside the 30 min window", store.Event{UserID: "u1", ItemID: "c", Type: "view", Time: at(41 * time.Minute)}, nil},
		{"click just inside the window", store.Event{UserID: "u1", ItemID: "c", Type: "view", Time: at(40 * time.Minute)},
			&store.Outcome{ImpressionID: "r2", Position: 2}},
		{"purchase within 7 days", store.Event{UserID: "u1", ItemID: "a", Type: "purchase", Value: 3, Time: at(6 * 24 * time.Hour)},
			&store.Outcome{ImpressionID: "r1", Position: 1, Purchase: true, Revenue: 30}},
		{"purchase after 7 days", store.Event{UserID: "u1", ItemID: "a", Type: "purchase", Time: at(8 * 24 * time.Hour)}, nil},
		{"purchase of an item without a price", store.Event{UserID: "u1", ItemID: "c", Type: "purchase", Time: at(11 * time.Minute)},
			&store.Outcome{ImpressionID: "r2", Position: 2, Purchase: true}},
		{"an item no impression showed", store.Event{UserID: "u1", ItemID: "z", Type: "view", Time: at(time.Minute)}, nil},
		{"negative events are never attributed", store.Event{UserID: "u1", ItemID: "a", Type: "dislike", Time: at(time.Minute), RecommendationID: "r1"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := store.Attribute(&tt.ev, types[tt.ev.Type], imps, store.DefaultWindows(), price)
			if tt.want == nil {
				if ok {
					t.Fatalf("attributed to %+v; want not attributed", got)
				}
				return
			}
			if !ok {
				t.Fatal("not attributed")
			}
			want := *tt.want
			want.UserID, want.EventID, want.ItemID, want.Type, want.Time = tt.ev.UserID, tt.ev.ID, tt.ev.ItemID, tt.ev.Type, tt.ev.Time
			if got != want {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestAttributeOtherUser: Live reads only the event's own user's
// impressions, so another user's recommendation_id finds nothing; Attribute
// itself refuses an event without a user.
func TestAttributeNoUser(t *testing.T) {
	imps := []store.Impression{{ID: "r1", Time: time.Unix(0, 0), UserID: "u1", Items: []string{"a"}}}
	ev := store.Event{ItemID: "a", Type: "view", Time: time.Unix(60, 0), RecommendationID: "r1"}
	if got, ok := store.Attribute(&ev, store.EventType{}, imps, store.DefaultWindows(), nil); ok {
		t.Fatalf("attributed %+v", got)
	}
}

func TestParseWindows(t *testing.T) {
	tests := []struct {
		in      string
		want    store.Windows
		wantErr bool
	}{
		{"", store.DefaultWindows(), false},
		{"click=10m", store.Windows{Click: 10 * time.Minute, Purchase: store.DefaultPurchaseWindow}, false},
		{"purchase=24h, click=1h", store.Windows{Click: time.Hour, Purchase: 24 * time.Hour}, false},
		{"click=0s", store.Windows{}, true},
		{"click=-1m", store.Windows{}, true},
		{"view=1m", store.Windows{}, true},
		{"click", store.Windows{}, true},
		{"click=soon", store.Windows{}, true},
	}
	for _, tt := range tests {
		got, err := store.ParseWindows(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseWindows(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
