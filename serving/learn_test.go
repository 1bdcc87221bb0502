package serving

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/serving/store"
	"github.com/recserve/recserve/serving/store/pebblestore"
	"github.com/recserve/recserve/training/trainer"
)

// TestStackLearnsOnline opens a live stack and checks that what is tracked
// reaches the serving models: popularity counts the events, the content
// model learns a new catalogue item.
func TestStackLearnsOnline(t *testing.T) {
	data, repo := openDemo(t)
	if _, err := trainer.Run(t.Context(), trainer.Job{Kind: "content", DataDir: data, Out: filepath.Join(repo, "content", "1")}); err != nil {
		t.Fatal(err)
	}
	d, err := dataset.Read(data)
	if err != nil {
		t.Fatal(err)
	}
	b, err := pebblestore.Open(filepath.Join(t.TempDir(), "state"), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.Context(), Options{Repo: repo, Data: data, Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Live == nil {
		t.Fatal("Open with a backend: Stack.Live = nil")
	}
	recommend := func(name string, q models.Query) []models.Scored {
		t.Helper()
		l, err := s.Repository.Acquire(name, "")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Release()
		got, err := l.Model.(models.Recommender).Recommend(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	t.Run("popularity counts tracked events", func(t *testing.T) {
		before := recommend("popularity", models.Query{K: len(d.Items)})
		last := before[len(before)-1].ItemID // the least popular item
		if before[0].ItemID == last {
			t.Fatalf("popularity answer %v: want at least two items", before)
		}
		now := time.Unix(d.Interactions[len(d.Interactions)-1].Timestamp, 0)
		var events []store.Event
		for i := range 500 {
			events = append(events, store.Event{UserID: "shopper", ItemID: last, Type: "purchase", Time: now.Add(time.Duration(i) * time.Second)})
		}
		if n, err := s.Live.Track(t.Context(), events); err != nil || n != len(events) {
			t.Fatalf("Track = %d, %v; want %d stored", n, err, len(events))
		}
		if got := recommend("popularity", models.Query{K: 1}); len(got) != 1 || got[0].ItemID != last {
			t.Errorf("after 500 purchases of %s, popularity Recommend = %v; want %s first (before: %s)", last, got, last, before[0].ItemID)
		}
	})

	t.Run("content learns a new item", func(t *testing.T) {
		src := d.Items[0]
		fresh := src
		fresh.ID = "brand-new-item"
		l, err := s.Repository.Acquire("content", "")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Release()
		sim := l.Model.(models.ItemSimilarity)
		if _, err := sim.SimilarItems(t.Context(), models.SimilarQuery{ItemID: fresh.ID, K: 5}); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("SimilarItems(%s) before the upsert: error = %v; want ErrNotFound", fresh.ID, err)
		}
		if err := s.Live.UpsertItems(t.Context(), []dataset.Item{fresh}); err != nil {
			t.Fatal(err)
		}
		got, err := sim.SimilarItems(t.Context(), models.SimilarQuery{ItemID: src.ID, K: 5})
		if err != nil || len(got) == 0 || got[0].ItemID != fresh.ID {
			t.Errorf("SimilarItems(%s) after upserting a copy = %v, %v; want the copy %s first", src.ID, got, err, fresh.ID)
		}
		if _, err := s.Live.DeleteItems(t.Context(), []string{fresh.ID}); err != nil {
			t.Fatal(err)
		}
		got, _ = sim.SimilarItems(t.Context(), models.SimilarQuery{ItemID: src.ID, K: 5})
		if slices.ContainsFunc(got, func(x models.Scored) bool { return x.ItemID == fresh.ID }) {
			t.Errorf("SimilarItems(%s) after deleting %s = %v; want it gone", src.ID, fresh.ID, got)
		}
	})
}
