package server_test

import (
	"path/filepath"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/recserve/recserve/dataset"
	pb "github.com/recserve/recserve/proto/recserve/v1"
	"github.com/recserve/recserve/training/datagen"
	"github.com/recserve/recserve/training/trainer"
)

// TestKindsEndToEnd trains every Go-native kind with the real trainers on a
// small generated data set, serves the repository with server.Run and checks
// Recommend (and SimilarItems where the kind has that role) through a real
// gRPC client.
func TestKindsEndToEnd(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	repo := filepath.Join(dir, "repo")
	d, err := datagen.Generate(datagen.Config{Users: 300, Items: 200, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := dataset.Write(data, d); err != nil {
		t.Fatal(err)
	}
	kinds := []struct {
		kind    string
		similar bool
	}{
		{"popularity", false},
		{"itemknn", true},
		{"userknn", false},
		{"content", true},
	}
	for _, k := range kinds {
		if _, err := trainer.Run(t.Context(), trainer.Job{Kind: k.kind, DataDir: data, Out: filepath.Join(repo, k.kind, "1")}); err != nil {
			t.Fatalf("train %s: %v", k.kind, err)
		}
	}
	conn := runServer(t, data, repo)
	rc := pb.NewRecommendServiceClient(conn)

	// The user with the longest history, and what they have seen.
	seen := map[string]map[string]bool{}
	for _, in := range d.Interactions {
		if seen[in.UserID] == nil {
			seen[in.UserID] = map[string]bool{}
		}
		seen[in.UserID][in.ItemID] = true
	}
	user := ""
	for u, s := range seen {
		if user == "" || len(s) > len(seen[user]) || (len(s) == len(seen[user]) && u < user) {
			user = u
		}
	}
	item := d.Interactions[0].ItemID

	mv, err := pb.NewModelServiceClient(conn).ListModels(t.Context(), &pb.ListModelsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mv.GetModels() {
		if m.GetState() != pb.ModelState_MODEL_STATE_READY {
			t.Errorf("model %s state %v (%s); want READY", m.GetName(), m.GetState(), m.GetError())
		}
	}

	for _, k := range kinds {
		t.Run(k.kind, func(t *testing.T) {
			resp, err := rc.Recommend(t.Context(), &pb.RecommendRequest{UserId: user, K: 10, Model: k.kind})
			if err != nil {
				t.Fatalf("Recommend(model=%s) error = %v", k.kind, err)
			}
			if got := len(resp.GetItems()); got != 10 {
				t.Errorf("Recommend(model=%s) = %d items; want 10", k.kind, got)
			}
			for i, it := range resp.GetItems() {
				if seen[user][it.GetItemId()] {
					t.Errorf("Recommend(model=%s) returned %s from the user's history", k.kind, it.GetItemId())
				}
				if !slices.Equal(it.GetSources(), []string{k.kind}) {
					t.Errorf("item %s sources = %v; want [%s]", it.GetItemId(), it.GetSources(), k.kind)
				}
				if i > 0 && it.GetScore() > resp.GetItems()[i-1].GetScore() {
					t.Errorf("Recommend(model=%s) scores not descending at %d: %v > %v", k.kind, i, it.GetScore(), resp.GetItems()[i-1].GetScore())
				}
			}

			sim, err := rc.SimilarItems(t.Context(), &pb.SimilarItemsRequest{ItemId: item, K: 5, Model: k.kind})
			if !k.similar {
				if status.Code(err) != codes.InvalidArgument {
					t.Errorf("SimilarItems(model=%s) error = %v; want InvalidArgument (no such role)", k.kind, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("SimilarItems(model=%s) error = %v", k.kind, err)
			}
			if got := len(sim.GetItems()); got != 5 {
				t.Errorf("SimilarItems(model=%s) = %d items; want 5", k.kind, got)
			}
			for _, it := range sim.GetItems() {
				if it.GetItemId() == item {
					t.Errorf("SimilarItems(model=%s) returned the query item %s", k.kind, item)
				}
			}
			_, err = rc.SimilarItems(t.Context(), &pb.SimilarItemsRequest{ItemId: "no-such-item", Model: k.kind})
			if status.Code(err) != codes.NotFound {
				t.Errorf("SimilarItems(model=%s, unknown item) error = %v; want NotFound", k.kind, err)
			}
		})
	}
}
