package serving

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/serving/router"
	"github.com/recserve/recserve/serving/store"
	"github.com/recserve/recserve/training/datagen"
	"github.com/recserve/recserve/training/trainer"
)

// flakySyncer fails every Sync and cancels the poll after the third.
type flakySyncer struct {
	calls  atomic.Int32
	cancel context.CancelFunc
}

func (f *flakySyncer) Sync(ctx context.Context) error {
	if f.calls.Add(1) == 3 {
		f.cancel()
	}
	return errors.New("disk went away")
}

func TestPollRepositoryKeepsGoingOnErrors(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	f := &flakySyncer{cancel: cancel}
	rec := &logCounter{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		pollRepository(ctx, f, time.Millisecond, slog.New(rec))
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("pollRepository did not return after its context was cancelled")
	}
	if got := f.calls.Load(); got != 3 {
		t.Errorf("Sync called %d times; want 3 (polling continues after errors, stops on cancel)", got)
	}
	if got := rec.errors.Load(); got != 2 {
		t.Errorf("logged %d sync errors; want 2 (the error after cancellation is not logged)", got)
	}
}

// logCounter is a slog.Handler counting error records.
type logCounter struct{ errors atomic.Int32 }

func (c *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *logCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		c.errors.Add(1)
	}
	return nil
}
func (c *logCounter) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *logCounter) WithGroup(string) slog.Handler      { return c }

func TestProbe(t *testing.T) {
	d := &dataset.Dataset{Interactions: []dataset.Interaction{
		{UserID: "a", ItemID: "i1", Event: dataset.View, Value: 1, Timestamp: 1},
		{UserID: "b", ItemID: "i2", Event: dataset.View, Value: 1, Timestamp: 2},
		{UserID: "b", ItemID: "i3", Event: dataset.View, Value: 1, Timestamp: 3},
		{UserID: "c", ItemID: "i3", Event: dataset.View, Value: 1, Timestamp: 4},
		{UserID: "c", ItemID: "i2", Event: dataset.View, Value: 1, Timestamp: 5},
		{UserID: "c", ItemID: "i3", Event: dataset.Purchase, Value: 1, Timestamp: 6},
	}}
	for i := range 3 {
		d.Items = append(d.Items, dataset.Item{ID: fmt.Sprintf("i%d", i+1)})
	}
	p := probe(t.Context(), store.New(d))
	if p == nil {
		t.Fatal("probe(data set with interactions) = nil; want a probe")
	}
	if p.Query.UserID != "c" || len(p.Query.History) != 3 || p.Query.K != 10 {
		t.Errorf("probe query = user %q, %d history events, k %d; want the most active user c, 3 events, k 10", p.Query.UserID, len(p.Query.History), p.Query.K)
	}
	if want := []string{"i3", "i2", "i1"}; !slices.Equal(p.Items, want) {
		t.Errorf("probe items = %v; want %v (most interactions first, ties by id)", p.Items, want)
	}
	if p := probe(t.Context(), store.New(&dataset.Dataset{})); p != nil {
		t.Errorf("probe(empty data set) = %+v; want nil (the repository's cold-start probe)", p)
	}
}

// openDemo writes a small generated data set and a repository with a
// popularity and an item-kNN model, and returns their directories.
func openDemo(t *testing.T) (data, repo string) {
	t.Helper()
	d, err := datagen.Generate(datagen.Config{Users: 200, Items: 80, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	data, repo = t.TempDir(), t.TempDir()
	if err := dataset.Write(data, d); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"popularity", "itemknn"} {
		if _, err := trainer.Run(t.Context(), trainer.Job{Kind: kind, DataDir: data, Out: filepath.Join(repo, kind, "1")}); err != nil {
			t.Fatalf("train %s: %v", kind, err)
		}
	}
	routes := "default_route: blend\nroutes:\n  - name: blend\n    sources: [{model: itemknn}, {model: popularity, weight: 0.5}]\n"
	if err := os.WriteFile(filepath.Join(repo, router.ConfigFile), []byte(routes), 0o644); err != nil {
		t.Fatal(err)
	}
	return data, repo
}

// TestOpen assembles the stack the server and eval share and asks it for an
// answer: every part is wired (store, repository, routes, router).
func TestOpen(t *testing.T) {
	data, repo := openDemo(t)
	s, err := Open(t.Context(), Options{Repo: repo, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.Repository.Names(); !slices.Equal(got, []string{"itemknn", "popularity"}) {
		t.Errorf("Repository.Names() = %v; want [itemknn popularity]", got)
	}
	if got := s.Router.Config().DefaultRoute; got != "blend" {
		t.Errorf("default route = %q; want blend (from %s)", got, s.RoutesFile)
	}
	user := s.Dataset.Interactions[0].UserID
	resp, err := s.Router.Recommend(t.Context(), router.Request{UserID: user, K: 5})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Route != "blend" || len(resp.Items) != 5 || len(resp.Models) == 0 {
		t.Errorf("Recommend(%s) = route %q, %d items, models %v; want route blend, 5 items, the models used", user, resp.Route, len(resp.Items), resp.Models)
	}
	prof, err := s.Store.Profile(t.Context(), user)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range resp.Items {
		if _, ok := prof.Seen[it.ItemID]; ok {
			t.Errorf("Recommend(%s) returned seen item %s", user, it.ItemID)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	data, repo := openDemo(t)
	badRoutes := t.TempDir()
	if err := os.WriteFile(filepath.Join(badRoutes, router.ConfigFile), []byte("routes: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no repository", Options{Data: data}, "a model repository is required"},
		{"no data set", Options{Repo: repo}, "a data set is required"},
		{"missing data set", Options{Repo: repo, Data: filepath.Join(data, "nope")}, "load data set"},
		{"bad routes", Options{Repo: badRoutes, Data: data}, "load routes"},
	}
	for _, tt := range tests {
		s, err := Open(t.Context(), tt.opts)
		if err == nil {
			s.Close()
			t.Errorf("%s: Open() = nil error; want one containing %q", tt.name, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Open() = %v; want an error containing %q", tt.name, err, tt.want)
		}
	}
}
