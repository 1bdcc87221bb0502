package popularity_test

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/popularity"
)

const day = 86400

func event(item string, ev dataset.Event, ts int64) dataset.Interaction {
	return dataset.Interaction{UserID: "u", ItemID: item, Event: ev, Value: 1, Timestamp: ts}
}

func TestLearnInteractions(t *testing.T) {
	t0 := time.Unix(100*day, 0)
	tests := []struct {
		name   string
		opts   popularity.Options
		learn  []dataset.Interaction
		q      models.Query
		want   []string
		scores map[string]float64 // normalised, after learning
	}{
		{
			name:  "a count moves an item up",
			opts:  popularity.Options{},
			learn: []dataset.Interaction{event("c1", dataset.Purchase, 0), event("c1", dataset.Purchase, 0)},
			q:     models.Query{K: 3},
			// c1: 1 + 2×5 = 11 passes b1 (5) and b2 (3) but not a3 (8000).
			want: []string{"a1", "a2", "a3"},
		},
		{
			name:   "scores normalised by the new maximum",
			opts:   popularity.Options{Weights: models.EventWeights{dataset.View: 10000}},
			learn:  []dataset.Interaction{event("b1", dataset.View, 0)},
			q:      models.Query{K: 2},
			want:   []string{"b1", "a1"},
			scores: map[string]float64{"b1": 1, "a1": 10000.0 / 10005, "zz": 0},
		},
		{
			name:   "a new item enters",
			opts:   popularity.Options{Weights: models.EventWeights{dataset.Purchase: 20000}},
			learn:  []dataset.Interaction{event("new", dataset.Purchase, 0)},
			q:      models.Query{K: 2},
			want:   []string{"new", "a1"},
			scores: map[string]float64{"new": 1, "a1": 0.5},
		},
		{
			name:  "zero weight ignored",
			opts:  popularity.Options{Weights: models.EventWeights{dataset.View: 0}},
			learn: []dataset.Interaction{event("c2", dataset.View, 0), event("new", dataset.View, 0)},
			q:     models.Query{K: 10},
			want:  []string{"a1", "a2", "a3", "b1", "b2", "c1", "c2"},
		},
		{
			name: "decay: an event one half-life after T0 counts double",
			opts: popularity.Options{HalfLifeDays: 7, NewestEvent: t0, Weights: models.EventWeights{dataset.View: 2000}},
			// a3: 8000 + 2000×2 = 12000 passes a1 (10000).
			learn:  []dataset.Interaction{event("a3", dataset.View, t0.Unix()+7*day)},
			q:      models.Query{K: 2},
			want:   []string{"a3", "a1"},
			scores: map[string]float64{"a3": 1, "a1": 10000.0 / 12000},
		},
		{
			name: "decay: an event older than T0 counts less",
			opts: popularity.Options{HalfLifeDays: 7, NewestEvent: t0, Weights: models.EventWeights{dataset.View: 4000}},
			// a3: 8000 + 4000/2 = 10000 ties a1; the id breaks the tie.
			learn:  []dataset.Interaction{event("a3", dataset.View, t0.Unix()-7*day)},
			q:      models.Query{K: 2},
			want:   []string{"a1", "a3"},
			scores: map[string]float64{"a3": 1, "a1": 1},
		},
		{
			name: "decay without T0: the first event learned is T0",
			opts: popularity.Options{HalfLifeDays: 7, Weights: models.EventWeights{dataset.View: 1000}},
			learn: []dataset.Interaction{
				event("b1", dataset.View, 50*day),  // T0: counts 1000
				event("b1", dataset.View, 64*day),  // two half-lives later: 4000
				event("a3", dataset.View, 36*day)}, // two before: 250
			q:      models.Query{K: 3},
			want:   []string{"a1", "a2", "a3"},
			scores: map[string]float64{"b1": 5005.0 / 10000, "a3": 8250.0 / 10000},
		},
		{
			name:  "category scope: a learned item rises within its category",
			opts:  popularity.Options{Scope: popularity.Category, Weights: models.EventWeights{dataset.View: 10}},
			learn: []dataset.Interaction{event("b2", dataset.View, 0)},
			q:     models.Query{K: 2, History: history("c1"), Allow: notSeen(history("c1"))},
			want:  []string{"c2", "a1"},
		},
		{
			name:  "category scope: learned counts order the category",
			opts:  popularity.Options{Scope: popularity.Category, Weights: models.EventWeights{dataset.View: 10}},
			learn: []dataset.Interaction{event("b2", dataset.View, 0)},
			q:     models.Query{K: 3, History: history("c1", "b1"), Allow: notSeen(history("c1", "b1"))},
			want:  []string{"b2", "c2", "a1"},
		},
		{
			name:  "category scope: a new item has no category and fills after the user's categories",
			opts:  popularity.Options{Scope: popularity.Category, Weights: models.EventWeights{dataset.View: 1e6}},
			learn: []dataset.Interaction{event("new", dataset.View, 0)},
			q:     models.Query{K: 3, History: history("b2"), Allow: notSeen(history("b2"))},
			want:  []string{"b1", "new", "a1"},
		},
		{
			name:  "category scope: a history of new items only falls back to global",
			opts:  popularity.Options{Scope: popularity.Category, Weights: models.EventWeights{dataset.View: 1e6}},
			learn: []dataset.Interaction{event("new", dataset.View, 0)},
			q:     models.Query{K: 2, History: history("new")},
			want:  []string{"new", "a1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := popularity.NewWithOptions(longTail(), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			m.LearnInteractions(tt.learn)
			got, err := m.Recommend(t.Context(), tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if ids := itemIDs(got); !reflect.DeepEqual(ids, tt.want) {
				t.Errorf("Recommend after learning = %v; want %v", got, tt.want)
			}
			for id, want := range tt.scores {
				s, _ := m.Score(t.Context(), models.Query{}, []string{id})
				if math.Abs(s[0]-want) > 1e-9 {
					t.Errorf("Score(%s) = %v; want %v", id, s[0], want)
				}
			}
		})
	}
}

// TestLearnFolds learns enough distinct items to fold the overlay several
// times and checks every answer against a model built from scratch with the
// same counts.
func TestLearnFolds(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts popularity.Options
	}{
		{"global", popularity.Options{}},
		{"category, decayed", popularity.Options{Scope: popularity.Category, HalfLifeDays: 1, NewestEvent: time.Unix(0, 0)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var entries []popularity.Entry
			for i := range 300 {
				entries = append(entries, popularity.Entry{ItemID: fmt.Sprintf("i%03d", i), Category: fmt.Sprintf("c%d", i%7), Score: float64(i % 13)})
			}
			m, err := popularity.NewWithOptions(entries, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			// 1,200 distinct items (half of them new), at times a day
			// apart at most: four folds of 256, each rebasing T0.
			var batch []dataset.Interaction
			for i := range 1200 {
				ts := int64(i / 100 * day / 4)
				batch = append(batch, event(fmt.Sprintf("i%03d", (i*7)%600), dataset.Event(1+i%3), ts))
				if len(batch) == 50 {
					m.LearnInteractions(batch)
					batch = batch[:0]
				}
			}
			fresh, err := popularity.NewWithOptions(m.Entries(), popularity.Options{Scope: tt.opts.Scope})
			if err != nil {
				t.Fatal(err)
			}
			if n := len(m.Entries()); n != 600 {
				t.Errorf("len(Entries()) = %d; want 600 (300 trained, 300 learned)", n)
			}
			// Histories of trained items: a learned item has no category,
			// unlike in a table built from Entries.
			for _, h := range [][]dataset.Interaction{nil, history("i001", "i002"), history("i006")} {
				q := models.Query{K: 25, History: h, Allow: notSeen(h)}
				got, _ := m.Recommend(t.Context(), q)
				want, _ := fresh.Recommend(t.Context(), q)
				if !reflect.DeepEqual(itemIDs(got), itemIDs(want)) {
					t.Errorf("history %v: Recommend = %v; want %v (a model built from the same counts)", itemsOf(h), itemIDs(got), itemIDs(want))
				}
			}
		})
	}
}

func TestSaveLoadNewestEvent(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	m, err := popularity.NewWithOptions(longTail(), popularity.Options{HalfLifeDays: 7, NewestEvent: t0})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := m.Save(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"newest_event":1700000000`) {
		t.Errorf("Save() = %s; want newest_event 1700000000", buf.String())
	}
	tests := []struct {
		name     string
		artifact []byte
		// An event one half-life after the time below counts double.
		eventAt int64
	}{
		{"T0 from the artifact", buf.Bytes(), t0.Unix() + 7*day},
		{"artifact without T0: the first event is T0", []byte(`{"items":[{"id":"a1","score":10000},{"id":"a3","score":8000}]}`), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := popularity.Load(bytes.NewReader(tt.artifact), popularity.Options{HalfLifeDays: 7, Weights: models.EventWeights{dataset.View: 1000}})
			if err != nil {
				t.Fatal(err)
			}
			got.LearnInteractions([]dataset.Interaction{event("a3", dataset.View, tt.eventAt)})
			want := (8000.0 + 1000) / 10000
			if tt.eventAt != 0 {
				want = (8000.0 + 2000) / 10000
			}
			if s, _ := got.Score(t.Context(), models.Query{}, []string{"a3"}); math.Abs(s[0]-want) > 1e-9 {
				t.Errorf("Score(a3) = %v; want %v", s[0], want)
			}
		})
	}
}

func TestBuildOnlineParams(t *testing.T) {
	table := mustNew(t, longTail(), popularity.Global)
	tests := []struct {
		name   string
		params map[string]any
		want   float64 // a3's score after one view
	}{
		{"defaults: no decay, view weighs 1", nil, 8001.0 / 10000},
		{"event weights", map[string]any{"event_weights": "view:1000"}, 9000.0 / 10000},
		{"half-life ignored without T0 for the first event", map[string]any{"half_life_days": 7, "event_weights": "view:1000"}, 9000.0 / 10000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := build(t, writeModel(t, table, popularity.DefaultFile, models.Spec{Kind: popularity.Kind, Params: tt.params}))
			if err != nil {
				t.Fatal(err)
			}
			m.(models.InteractionLearner).LearnInteractions([]dataset.Interaction{event("a3", dataset.View, 5)})
			if s, _ := m.(models.Scorer).Score(t.Context(), models.Query{}, []string{"a3"}); math.Abs(s[0]-tt.want) > 1e-9 {
				t.Errorf("Score(a3) = %v; want %v", s[0], tt.want)
			}
		})
	}
	dir := writeModel(t, table, popularity.DefaultFile, models.Spec{Kind: popularity.Kind, Params: map[string]any{"event_weights": "like:3"}})
	if _, err := build(t, dir); err == nil || !strings.Contains(err.Error(), "event_weights") {
		t.Errorf("Build(bad event_weights) error = %v; want one naming event_weights", err)
	}
}

// TestLearnConcurrent learns and queries at once (run with -race): every
// answer must be full, sorted and free of duplicates, and every count must
// arrive.
func TestLearnConcurrent(t *testing.T) {
	var entries []popularity.Entry
	for i := range 500 {
		entries = append(entries, popularity.Entry{ItemID: fmt.Sprintf("i%03d", i), Category: fmt.Sprintf("c%d", i%5), Score: float64(i)})
	}
	for _, scope := range []popularity.Scope{popularity.Global, popularity.Category} {
		t.Run(string(scope), func(t *testing.T) {
			m, err := popularity.New(entries, scope)
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			const writers, batches = 4, 100
			for w := range writers {
				wg.Go(func() {
					for b := range batches {
						var in []dataset.Interaction
						for k := range 10 {
							in = append(in, event(fmt.Sprintf("n%d-%d-%d", w, b, k), dataset.View, 0), event(fmt.Sprintf("i%03d", (b*10+k)%500), dataset.View, 0))
						}
						m.LearnInteractions(in)
					}
				})
			}
			for range 4 {
				wg.Go(func() {
					for range 200 {
						got, err := m.Recommend(t.Context(), models.Query{K: 30, History: history("i001")})
						if err != nil || len(got) != 30 {
							t.Errorf("Recommend = %d items, %v; want 30", len(got), err)
							return
						}
						seen := map[string]bool{}
						for i, s := range got {
							if seen[s.ItemID] || i > 0 && s.Score > got[i-1].Score {
								t.Errorf("Recommend = %v: duplicate or unsorted", got)
								return
							}
							seen[s.ItemID] = true
						}
					}
				})
			}
			wg.Wait()
			total := 0.0
			for _, e := range m.Entries() {
				total += e.Score
			}
			want := 499.0*500/2 + 2*writers*batches*10
			if total != want {
				t.Errorf("sum of scores = %v; want %v (every learned view counted once)", total, want)
			}
		})
	}
}
