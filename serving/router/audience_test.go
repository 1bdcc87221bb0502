package router_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/serving/router"
	"github.com/recserve/recserve/serving/store"
)

// userScorer scores a user "uN" as N for every item, and counts calls.
type userScorer struct{}

func (userScorer) Close() error { return nil }

func (userScorer) Score(_ context.Context, q models.Query, ids []string) ([]float64, error) {
	var n int
	fmt.Sscanf(q.UserID, "u%d", &n)
	out := make([]float64, len(ids))
	for i := range out {
		out[i] = float64(n)
	}
	return out, nil
}

// audienceRouter serves a store where users u0..u(n-1) viewed item a (cat
// x); every third user bought it.
func audienceRouter(t *testing.T, n int, sc models.Model) *router.Router {
	t.Helper()
	d := &dataset.Dataset{Items: []dataset.Item{{ID: "a", Category: "x"}, {ID: "b", Category: "x"}}}
	for u := range n {
		ev := dataset.View
		if u%3 == 0 {
			ev = dataset.Purchase
		}
		d.Interactions = append(d.Interactions, dataset.Interaction{UserID: fmt.Sprintf("u%d", u), ItemID: "a", Event: ev, Value: 1, Timestamp: int64(u)})
	}
	ms := fakeModels{}
	ms.add("main", "fake", &fakeRec{items: ranked("a", "b")})
	ms.add("scorer", "gbm", sc)
	cfg := baseConfig()
	cfg.Fallback, cfg.DefaultScorer = "main", "scorer"
	r, err := router.New(router.Options{Models: ms, Store: store.New(d), Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestTargetAudienceWorkers scores 1,000 candidates on several workers: the
// best users come back in order, buyers left out, under -race.
func TestTargetAudienceWorkers(t *testing.T) {
	r := audienceRouter(t, 1000, userScorer{})
	resp, err := r.TargetAudience(t.Context(), router.AudienceRequest{ItemID: "a", N: 5})
	if err != nil {
		t.Fatal(err)
	}
	// u999 bought (999 % 3 == 0); u998, u997, u995, u994, u992 did not.
	want := []string{"u998", "u997", "u995", "u994", "u992"}
	if len(resp.Users) != len(want) {
		t.Fatalf("users = %v; want %v", resp.Users, want)
	}
	for i, w := range want {
		if resp.Users[i].UserID != w {
			t.Errorf("users[%d] = %v; want %s", i, resp.Users[i], w)
		}
	}
	if resp.Candidates != 1000 {
		t.Errorf("candidates = %d; want 1000", resp.Candidates)
	}
	resp, err = r.TargetAudience(t.Context(), router.AudienceRequest{ItemID: "a", N: 1, IncludeBuyers: true})
	if err != nil || len(resp.Users) != 1 || resp.Users[0].UserID != "u999" {
		t.Errorf("TargetAudience(include buyers) = %v, %v; want [u999]", resp.Users, err)
	}
	resp, err = r.TargetAudience(t.Context(), router.AudienceRequest{Category: "x", N: 2, MaxCandidates: 10})
	if err != nil || resp.Candidates != 10 || len(resp.Items) != 2 {
		t.Errorf("TargetAudience(category, 10 candidates) = %+v, %v; want 10 candidates over 2 items", resp, err)
	}
}

func TestTargetAudienceErrors(t *testing.T) {
	r := audienceRouter(t, 300, &fakeScorer{err: errBoom})
	if _, err := r.TargetAudience(t.Context(), router.AudienceRequest{ItemID: "a"}); !errors.Is(err, errBoom) {
		t.Errorf("TargetAudience(failing scorer) error = %v; want errBoom", err)
	}
	r = audienceRouter(t, 300, userScorer{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := r.TargetAudience(ctx, router.AudienceRequest{ItemID: "a"}); !errors.Is(err, context.Canceled) {
		t.Errorf("TargetAudience(cancelled) error = %v; want context.Canceled", err)
	}
	var fe *models.FieldError
	tests := []struct {
		req   router.AudienceRequest
		field string
	}{
		{router.AudienceRequest{}, "item_id"},
		{router.AudienceRequest{ItemID: "a", Category: "x"}, "category"},
		{router.AudienceRequest{ItemID: "zz"}, "item_id"},
		{router.AudienceRequest{Category: "zz"}, "category"},
		{router.AudienceRequest{ItemID: "a", N: -1}, "n"},
		{router.AudienceRequest{ItemID: "a", MaxCandidates: router.MaxCandidates + 1}, "max_candidates"},
		{router.AudienceRequest{ItemID: "a", Model: "main"}, "model"}, // a recommender without Score
	}
	for _, tt := range tests {
		_, err := r.TargetAudience(t.Context(), tt.req)
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("TargetAudience(%+v) error = %v; want a FieldError on %s", tt.req, err, tt.field)
		}
	}
}
