package content_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/content"
	"github.com/recserve/recserve/models/vocab"
	"github.com/recserve/recserve/training/trainer"
)

// shop is a small catalogue: leather accessories, clothing and kitchen.
func shop() []dataset.Item {
	return []dataset.Item{
		{ID: "p1", Title: "red leather wallet", Category: "accessories", Brand: "acme"},
		{ID: "p2", Title: "blue cotton shirt", Category: "clothing", Brand: "zen"},
		{ID: "p3", Title: "black leather belt", Category: "accessories", Brand: "acme"},
		{ID: "p4", Title: "green wool sweater", Category: "clothing", Brand: "zen"},
		{ID: "p5", Title: "steel kitchen knife", Description: "sharp steel blade", Category: "kitchen"},
		{ID: "p6", Title: "cotton kitchen towel", Category: "kitchen"},
	}
}

func fitShop(t testing.TB) *content.Model {
	t.Helper()
	m, err := trainer.FitContent(t.Context(), shop(), trainer.ContentOptions{Serving: content.DefaultOptions()})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func ids(s []models.Scored) []string {
	out := []string{}
	for _, x := range s {
		out = append(out, x.ItemID)
	}
	return out
}

// TestLearnItems applies catalogue changes one after the other and checks
// the model's answers after each.
func TestLearnItems(t *testing.T) {
	m := fitShop(t)
	wallet := views("p1")
	type check struct {
		rec      []string // Recommend for a user who viewed p1 (p1 excluded)
		similar  map[string][]string
		notFound []string // SimilarItems is ErrNotFound
	}
	steps := []struct {
		name     string
		upserted []dataset.Item
		deleted  []string
		want     check
	}{
		{
			name: "trained",
			want: check{
				rec:      []string{"p3"},
				similar:  map[string][]string{"p1": {"p3"}, "p5": {"p6"}},
				notFound: []string{"n1"},
			},
		},
		{
			name: "a new wallet is recommended and similar at once",
			// "brown" and "genuine" are not in the vocabulary: dropped.
			upserted: []dataset.Item{{ID: "n1", Title: "brown genuine leather wallet", Category: "accessories", Brand: "acme"}},
			want: check{
				rec:     []string{"n1", "p3"},
				similar: map[string][]string{"p1": {"n1", "p3"}, "n1": {"p1", "p3"}},
			},
		},
		{
			name:     "a re-described item moves",
			upserted: []dataset.Item{{ID: "p3", Title: "steel kitchen knife block", Category: "kitchen"}},
			want: check{
				rec:     []string{"n1"},
				similar: map[string][]string{"p1": {"n1"}, "p5": {"p3", "p6"}, "p3": {"p5", "p6"}},
			},
		},
		{
			name:    "a deleted new item is gone",
			deleted: []string{"n1"},
			want: check{
				rec:      []string{},
				similar:  map[string][]string{"p1": {}},
				notFound: []string{"n1"},
			},
		},
		{
			name:    "a deleted trained item is gone",
			deleted: []string{"p6", "never-existed"},
			want: check{
				similar:  map[string][]string{"p5": {"p3"}, "p2": {"p4"}},
				notFound: []string{"p6"},
			},
		},
		{
			name:     "a deleted item upserted again is back",
			upserted: []dataset.Item{{ID: "n1", Title: "leather wallet", Category: "accessories"}},
			want: check{
				rec:     []string{"n1"},
				similar: map[string][]string{"n1": {"p1"}},
			},
		},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			m.LearnItems(st.upserted, st.deleted)
			if st.want.rec != nil {
				got, err := m.Recommend(t.Context(), models.Query{K: 10, History: wallet, Allow: notSeen(wallet)})
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(ids(got), st.want.rec) {
					t.Errorf("Recommend(viewed p1) = %v; want %v", got, st.want.rec)
				}
				// Score agrees with Recommend, learned items included.
				for _, s := range got {
					sc, _ := m.Score(t.Context(), models.Query{History: wallet}, []string{s.ItemID})
					if !near(sc[0], s.Score) {
						t.Errorf("Score(%s) = %v; Recommend gave %v", s.ItemID, sc[0], s.Score)
					}
				}
			}
			for item, want := range st.want.similar {
				got, err := m.SimilarItems(t.Context(), models.SimilarQuery{ItemID: item, K: 10})
				if err != nil {
					t.Fatalf("SimilarItems(%s) error = %v", item, err)
				}
				if !slices.Equal(ids(got), want) {
					t.Errorf("SimilarItems(%s) = %v; want %v", item, got, want)
				}
			}
			for _, item := range st.want.notFound {
				if _, err := m.SimilarItems(t.Context(), models.SimilarQuery{ItemID: item, K: 10}); !errors.Is(err, models.ErrNotFound) {
					t.Errorf("SimilarItems(%s) error = %v; want ErrNotFound", item, err)
				}
				if sc, _ := m.Score(t.Context(), models.Query{History: wallet}, []string{item}); sc[0] != 0 {
					t.Errorf("Score(%s) = %v; want 0 (unknown)", item, sc[0])
				}
			}
		})
	}
}

func TestVectorize(t *testing.T) {
	m := fitShop(t)
	tests := []struct {
		name string
		item dataset.Item
		same string // a trained item of the same text: same vector
		want []string
	}{
		{"same text as a trained item", dataset.Item{ID: "x", Title: "red leather wallet", Category: "accessories", Brand: "acme"}, "p1", nil},
		{"unknown terms dropped", dataset.Item{ID: "x", Title: "brown leather gizmo"}, "", []string{"leather"}},
		{"nothing known: empty", dataset.Item{ID: "x", Title: "quantum flux", Category: "physics"}, "", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := m.Vectorize(tt.item)
			got := map[string]float64{}
			for k, term := range v.Terms {
				got[m.Terms()[term]] = float64(v.Weights[k])
			}
			if tt.same != "" {
				want, _ := m.Weights(tt.same)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("Vectorize = %v; want %v (the trained vector of %s)", got, want, tt.same)
				}
				return
			}
			var terms []string
			for term := range got {
				terms = append(terms, term)
			}
			slices.Sort(terms)
			if !slices.Equal(append([]string{}, terms...), tt.want) {
				t.Errorf("Vectorize terms = %v; want %v", terms, tt.want)
			}
		})
	}
}

// TestLearnItemsFolds learns enough items to fold the delta into a rebuilt
// index, and compares every answer with a model built from the same vectors.
func TestLearnItemsFolds(t *testing.T) {
	m := fitShop(t)
	words := []string{"leather", "cotton", "steel", "wool", "kitchen", "wallet", "shirt", "knife"}
	var added []dataset.Item
	for i := range 150 {
		added = append(added, dataset.Item{ID: fmt.Sprintf("n%03d", i), Title: words[i%8] + " " + words[(i/8)%8], Category: []string{"kitchen", "clothing"}[i%2]})
	}
	for lo := 0; lo < len(added); lo += 10 {
		m.LearnItems(added[lo:lo+10], []string{fmt.Sprintf("n%03d", lo)})
	}
	m.LearnItems(nil, []string{"p2"})
	all := append(shop(), added...)
	var keep []string
	var vectors []content.Vector
	for _, it := range all {
		if it.ID == "p2" || it.ID[0] == 'n' && isDeleted(it.ID) {
			continue
		}
		keep = append(keep, it.ID)
		vectors = append(vectors, m.Vectorize(it))
	}
	voc, err := vocab.New(keep)
	if err != nil {
		t.Fatal(err)
	}
	want, err := content.New(voc, m.Terms(), m.IDF(), vectors, m.Analyzer(), m.Options())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range [][]dataset.Interaction{views("p1"), views("n007", "p5"), views("n149")} {
		q := models.Query{K: 20, History: h, Allow: notSeen(h)}
		got, _ := m.Recommend(t.Context(), q)
		exp, _ := want.Recommend(t.Context(), q)
		if !reflect.DeepEqual(got, exp) {
			t.Errorf("history %v: Recommend = %v; want %v", h, got, exp)
		}
	}
	for _, item := range []string{"p1", "n011", "n149"} {
		q := models.SimilarQuery{ItemID: item, K: 20}
		got, err := m.SimilarItems(t.Context(), q)
		exp, _ := want.SimilarItems(t.Context(), q)
		if err != nil || !reflect.DeepEqual(got, exp) {
			t.Errorf("SimilarItems(%s) = %v, %v; want %v", item, got, err, exp)
		}
	}
	if _, err := m.SimilarItems(t.Context(), models.SimilarQuery{ItemID: "n010", K: 5}); !errors.Is(err, models.ErrNotFound) {
		t.Errorf("SimilarItems(deleted n010) error = %v; want ErrNotFound", err)
	}
}

// isDeleted reports the items TestLearnItemsFolds deletes: n000, n010, ….
func isDeleted(id string) bool {
	var n int
	fmt.Sscanf(id, "n%03d", &n)
	return n%10 == 0
}

// TestLearnItemsConcurrent learns items while queries run (run with -race).
func TestLearnItemsConcurrent(t *testing.T) {
	m := fitShop(t)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 200 {
			id := fmt.Sprintf("n%03d", i)
			m.LearnItems([]dataset.Item{{ID: id, Title: "leather wallet", Category: "accessories"}}, nil)
			if i%3 == 0 {
				m.LearnItems(nil, []string{id})
			}
		}
	})
	for range 3 {
		wg.Go(func() {
			for range 300 {
				got, err := m.Recommend(t.Context(), models.Query{K: 10, History: views("p1"), Allow: notSeen(views("p1"))})
				if err != nil || len(got) == 0 {
					t.Errorf("Recommend = %v, %v", got, err)
					return
				}
				seen := map[string]bool{}
				for _, s := range got {
					if seen[s.ItemID] {
						t.Errorf("Recommend = %v: %s twice", got, s.ItemID)
						return
					}
					seen[s.ItemID] = true
				}
				if _, err := m.SimilarItems(t.Context(), models.SimilarQuery{ItemID: "p1", K: 10}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	got, _ := m.SimilarItems(t.Context(), models.SimilarQuery{ItemID: "p1", K: 500})
	if n := len(got); n != 1+133 { // p3 and the 133 items not deleted
		t.Errorf("SimilarItems(p1) after learning = %d items; want 134", n)
	}
}
