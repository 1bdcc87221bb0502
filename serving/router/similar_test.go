package router_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/serving/router"
)

// fakeSimilar knows items i1..i20; the neighbours of iN are the other items
// by increasing distance |N-M|, scored 1/(1+|N-M|).
type fakeSimilar struct{}

func (fakeSimilar) Close() error { return nil }

func (fakeSimilar) SimilarItems(_ context.Context, q models.SimilarQuery) ([]models.Scored, error) {
	var n int
	if _, err := fmt.Sscanf(q.ItemID, "i%d", &n); err != nil || n < 1 || n > 20 {
		return nil, fmt.Errorf("item %q: %w", q.ItemID, models.ErrNotFound)
	}
	var out []models.Scored
	for d := 0; d < 20 && len(out) < q.K; d++ {
		for _, m := range []int{n - d, n + d} {
			id := fmt.Sprintf("i%d", m)
			if m < 1 || m > 20 || (d == 0 && m != n) || len(out) >= q.K || !q.Allowed(id) {
				continue
			}
			out = append(out, models.Scored{ItemID: id, Score: 1 / float64(1+d)})
			if d == 0 {
				break
			}
		}
	}
	return out, nil
}

func similarModels() fakeModels {
	ms := fakeModels{}
	ms.add("itemknn", "itemknn", fakeSimilar{})
	ms.add("content", "content", fakeSimilar{})
	ms.add("pop", "popularity", &fakeRec{items: allItems()})
	return ms
}

func TestSimilarItems(t *testing.T) {
	tests := []struct {
		name string
		req  router.SimilarRequest
		want []string
	}{
		{"nearest first, item itself excluded", router.SimilarRequest{ItemID: "i10", K: 4}, []string{"i9", "i11", "i8", "i12"}},
		{"default k is 10", router.SimilarRequest{ItemID: "i1"}, []string{"i2", "i3", "i4", "i5", "i6", "i7", "i8", "i9", "i10", "i11"}},
		{"exclude items", router.SimilarRequest{ItemID: "i10", K: 2, Filters: router.Filters{ExcludeItems: []string{"i9"}}}, []string{"i11", "i8"}},
		{"include categories", router.SimilarRequest{ItemID: "i10", K: 3, Filters: router.Filters{IncludeCategories: []string{"bags"}}}, []string{"i15", "i16", "i17"}},
		// u1 has seen i1 and i2.
		{"user's seen items excluded", router.SimilarRequest{ItemID: "i3", K: 2, UserID: "u1"}, []string{"i4", "i5"}},
		{"include_seen", router.SimilarRequest{ItemID: "i3", K: 2, UserID: "u1", Filters: router.Filters{IncludeSeen: true}}, []string{"i2", "i4"}},
		{"named model", router.SimilarRequest{ItemID: "i3", K: 1, Model: "content"}, []string{"i2"}},
	}
	r := newRouter(t, similarModels(), baseConfig())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := r.SimilarItems(t.Context(), tt.req)
			if err != nil {
				t.Fatalf("SimilarItems(%+v) error = %v", tt.req, err)
			}
			if got := ids(resp.Items); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SimilarItems(%+v) = %v; want %v", tt.req, got, tt.want)
			}
			wantModel := tt.req.Model
			if wantModel == "" {
				wantModel = router.DefaultSimilarModel
			}
			if resp.Model.Name != wantModel || resp.Model.Version != "v1" {
				t.Errorf("SimilarItems(%+v).Model = %+v; want %s v1", tt.req, resp.Model, wantModel)
			}
			for _, it := range resp.Items {
				if !reflect.DeepEqual(it.Sources, []string{wantModel}) {
					t.Errorf("item %s sources = %v; want [%s]", it.ItemID, it.Sources, wantModel)
				}
			}
		})
	}
}

func TestSimilarItemsErrors(t *testing.T) {
	noDefault := baseConfig()
	noDefault.DefaultSimilar = "nope"
	popDefault := baseConfig()
	popDefault.DefaultSimilar = "pop"
	tests := []struct {
		name   string
		cfg    router.Config
		req    router.SimilarRequest
		field  string
		target error
	}{
		{"no item", baseConfig(), router.SimilarRequest{}, "item_id", nil},
		{"unknown item", baseConfig(), router.SimilarRequest{ItemID: "zz"}, "item_id", models.ErrNotFound},
		{"k too large", baseConfig(), router.SimilarRequest{ItemID: "i1", K: 1001}, "k", nil},
		{"negative k", baseConfig(), router.SimilarRequest{ItemID: "i1", K: -1}, "k", nil},
		{"unknown model", baseConfig(), router.SimilarRequest{ItemID: "i1", Model: "nope"}, "model", models.ErrNotFound},
		{"model without the role", baseConfig(), router.SimilarRequest{ItemID: "i1", Model: "pop"}, "model", nil},
		{"default missing is the server's problem", noDefault, router.SimilarRequest{ItemID: "i1"}, "", models.ErrNotReady},
		{"default without the role", popDefault, router.SimilarRequest{ItemID: "i1"}, "", models.ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRouter(t, similarModels(), tt.cfg)
			_, err := r.SimilarItems(t.Context(), tt.req)
			if err == nil {
				t.Fatalf("SimilarItems(%+v) error = nil; want an error", tt.req)
			}
			if got := fieldOf(err); got != tt.field {
				t.Errorf("SimilarItems(%+v) error field = %q (%v); want %q", tt.req, got, err, tt.field)
			}
			if tt.target != nil && !errors.Is(err, tt.target) {
				t.Errorf("SimilarItems(%+v) error = %v; want errors.Is %v", tt.req, err, tt.target)
			}
		})
	}
}
