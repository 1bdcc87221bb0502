package serving

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/serving/store"
	"github.com/recserve/recserve/training/trainer"
)

// memBackend is the smallest store.Backend: the real ones (Pebble, Redis)
// are not on this branch, and Live needs one to open.
type memBackend struct {
	mu     sync.Mutex
	items  map[string]dataset.Item
	events []store.Event
	ids    map[string]bool
	seeded bool
}

func newMemBackend() *memBackend {
	return &memBackend{items: map[string]dataset.Item{}, ids: map[string]bool{}}
}

func (b *memBackend) Append(_ context.Context, events []store.Event) ([]store.Event, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var stored []store.Event
	for _, e := range events {
		if e.ID != "" && b.ids[e.ID] {
			continue
		}
		b.ids[e.ID] = e.ID != ""
		b.events = append(b.events, e)
		stored = append(stored, e)
	}
	return stored, nil
}

func (b *memBackend) UpsertItems(_ context.Context, items []dataset.Item) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, it := range items {
		b.items[it.ID] = it
	}
	return nil
}

func (b *memBackend) DeleteItems(_ context.Context, ids []string) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, id := range ids {
		if _, ok := b.items[id]; ok {
			delete(b.items, id)
			n++
		}
	}
	return n, nil
}

func (b *memBackend) DeleteUser(context.Context, string) (int, error) {
	return 0, errors.New("memBackend: DeleteUser not needed by these tests")
}

func (b *memBackend) UserEvents(context.Context, string, int) ([]store.Event, int, error) {
	return nil, 0, errors.New("memBackend: UserEvents not needed by these tests")
}

func (b *memBackend) Scan(_ context.Context, item func(dataset.Item) error, event func(store.Event) error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, it := range b.items {
		if err := item(it); err != nil {
			return err
		}
	}
	for _, e := range b.events {
		if err := event(e); err != nil {
			return err
		}
	}
	return nil
}

func (b *memBackend) Seeded(context.Context) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seeded, nil
}

func (b *memBackend) MarkSeeded(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seeded = true
	return nil
}

func (b *memBackend) Close() error { return nil }

// TestStackLearnsOnline opens a live stack and checks that what is tracked
// reaches the serving models: popularity counts the events, the content
// model learns a new catalogue item.
func TestStackLearnsOnline(t *testing.T) {
	data, repo := openDemo(t)
	if _, err := trainer.Run(t.Context(), trainer.Job{Kind: "content", DataDir: data, Out: filepath.Join(repo, "content", "1")}); err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.Context(), Options{Repo: repo, Data: data, Backend: newMemBackend()})
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
		before := recommend("popularity", models.Query{K: len(s.Dataset.Items)})
		last := before[len(before)-1].ItemID // the least popular item
		if before[0].ItemID == last {
			t.Fatalf("popularity answer %v: want at least two items", before)
		}
		now := time.Unix(s.Dataset.Interactions[len(s.Dataset.Interactions)-1].Timestamp, 0)
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
		src := s.Dataset.Items[0]
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
