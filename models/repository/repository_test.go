package repository_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/popularity"
	"github.com/recserve/recserve/models/repository"
)

// fakeKind builds "fake" models: params.fail makes the build fail, params.nan
// makes the model score NaN; every build and close is counted per
// name/version.
type fakeKind struct {
	mu     sync.Mutex
	builds map[string]int
	closed map[string]int
}

type fakeModel struct {
	id     string
	nan    bool
	kind   *fakeKind
	closed atomic.Bool
}

func (m *fakeModel) Close() error {
	if m.closed.Swap(true) {
		panic("fake model " + m.id + " closed twice")
	}
	m.kind.mu.Lock()
	defer m.kind.mu.Unlock()
	m.kind.closed[m.id]++
	return nil
}

// Recommend makes fakeModel a models.Recommender, so Info reports a role. It
// fails once the model is closed, so a test sees a request served by a
// closed version.
func (m *fakeModel) Recommend(context.Context, models.Query) ([]models.Scored, error) {
	if m.closed.Load() {
		return nil, errors.New("fake model " + m.id + " used after Close")
	}
	if m.nan {
		return []models.Scored{{ItemID: "x", Score: math.NaN()}}, nil
	}
	return []models.Scored{{ItemID: "x", Score: 1}}, nil
}

func (k *fakeKind) build(_ context.Context, _ models.Env, v models.Version) (models.Model, error) {
	if fail, _ := v.Spec.Params["fail"].(bool); fail {
		return nil, errors.New("fake build failure")
	}
	id := v.Name + "/" + v.ID
	k.mu.Lock()
	defer k.mu.Unlock()
	k.builds[id]++
	nan, _ := v.Spec.Params["nan"].(bool)
	return &fakeModel{id: id, nan: nan, kind: k}, nil
}

func (k *fakeKind) count(m map[string]int, id string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return m[id]
}

func newKinds(t *testing.T) (*models.Registry, *fakeKind) {
	t.Helper()
	fk := &fakeKind{builds: map[string]int{}, closed: map[string]int{}}
	ks := models.NewRegistry()
	if err := ks.Register("fake", fk.build); err != nil {
		t.Fatal(err)
	}
	if err := ks.Register(popularity.Kind, popularity.Build); err != nil {
		t.Fatal(err)
	}
	return ks, fk
}

// writeVersion writes <repo>/<name>/<version>/model.yaml with the given text.
func writeVersion(t *testing.T, repo, name, version, yaml string) {
	t.Helper()
	dir := filepath.Join(repo, name, version)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if yaml == noSpec {
		return
	}
	if err := os.WriteFile(filepath.Join(dir, models.SpecFile), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
}

const (
	noSpec   = "" // writeVersion creates the directory without model.yaml
	okSpec   = "kind: fake\n"
	failSpec = "kind: fake\nparams:\n  fail: true\n"
)

func open(t *testing.T, repo string, ks *models.Registry) *repository.Repository {
	t.Helper()
	r, err := repository.Open(t.Context(), repository.Options{Dir: repo, Registry: ks})
	if err != nil {
		t.Fatalf("repository.Open(%s) error = %v", repo, err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestOpenChoosesActiveVersion(t *testing.T) {
	tests := []struct {
		name       string
		versions   map[string]string // version → model.yaml
		wantActive string
		wantState  repository.State
		wantErr    string // substring of Info.Err; "" for none
		wantVers   []string
	}{
		{
			name:       "numeric versions sort numerically",
			versions:   map[string]string{"1": okSpec, "2": okSpec, "10": okSpec},
			wantActive: "10", wantState: repository.StateReady,
			wantVers: []string{"1", "2", "10"},
		},
		{
			name:       "non-numeric versions sort lexically",
			versions:   map[string]string{"2024-01-02": okSpec, "2024-01-10": okSpec, "v3": okSpec},
			wantActive: "v3", wantState: repository.StateReady,
			wantVers: []string{"2024-01-02", "2024-01-10", "v3"},
		},
		{
			name:       "broken newest falls back to older",
			versions:   map[string]string{"1": okSpec, "2": okSpec, "3": failSpec},
			wantActive: "2", wantState: repository.StateReady,
			wantErr:  "fake build failure",
			wantVers: []string{"1", "2", "3"},
		},
		{
			name:       "unknown key in model.yaml falls back",
			versions:   map[string]string{"1": okSpec, "2": "kind: fake\nfiel: x.bin\n"},
			wantActive: "1", wantState: repository.StateReady,
			wantErr:  "field fiel not found",
			wantVers: []string{"1", "2"},
		},
		{
			name:       "missing model.yaml falls back",
			versions:   map[string]string{"1": okSpec, "2": noSpec},
			wantActive: "1", wantState: repository.StateReady,
			wantErr:  "model m version 2: open",
			wantVers: []string{"1", "2"},
		},
		{
			name:      "every version broken",
			versions:  map[string]string{"1": failSpec, "2": failSpec},
			wantState: repository.StateFailed,
			wantErr:   "load m/2 (fake): fake build failure",
			wantVers:  []string{"1", "2"},
		},
		{
			name:       "model.yaml without kind falls back",
			versions:   map[string]string{"1": okSpec, "2": "file: x.bin\n"},
			wantActive: "1", wantState: repository.StateReady,
			wantErr:  "kind is required",
			wantVers: []string{"1", "2"},
		},
		{
			name:      "unknown kind",
			versions:  map[string]string{"1": "kind: mystery\n"},
			wantState: repository.StateFailed,
			wantErr:   `unknown model kind "mystery"`,
			wantVers:  []string{"1"},
		},
		{
			name:      "no versions",
			versions:  map[string]string{},
			wantState: repository.StateFailed,
			wantErr:   "no version directories",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := t.TempDir()
			if err := os.MkdirAll(filepath.Join(repo, "m"), 0o755); err != nil {
				t.Fatal(err)
			}
			for v, spec := range tt.versions {
				writeVersion(t, repo, "m", v, spec)
			}
			ks, _ := newKinds(t)
			r := open(t, repo, ks)

			in, err := r.Info("m")
			if err != nil {
				t.Fatalf("Info(m) error = %v", err)
			}
			if in.ActiveVersion != tt.wantActive || in.State != tt.wantState {
				t.Errorf("Info(m) active, state = %q, %v; want %q, %v", in.ActiveVersion, in.State, tt.wantActive, tt.wantState)
			}
			if !reflect.DeepEqual(in.Versions, tt.wantVers) {
				t.Errorf("Info(m).Versions = %q; want %q", in.Versions, tt.wantVers)
			}
			if tt.wantErr == "" && in.Err != "" || !strings.Contains(in.Err, tt.wantErr) {
				t.Errorf("Info(m).Err = %q; want %q", in.Err, tt.wantErr)
			}
			l, err := r.Get("m")
			if tt.wantActive == "" {
				if !errors.Is(err, models.ErrNotReady) {
					t.Errorf("Get(m) = %v, %v; want ErrNotReady", l, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Get(m) error = %v", err)
			}
			if l.Version != tt.wantActive || l.Name != "m" || l.Model == nil || l.LoadedAt.IsZero() {
				t.Errorf("Get(m) = %+v; want version %q with a model and load time", l, tt.wantActive)
			}
		})
	}
}

func TestFailureDoesNotAffectOthers(t *testing.T) {
	repo := t.TempDir()
	writeVersion(t, repo, "good", "1", okSpec)
	writeVersion(t, repo, "broken", "1", failSpec)
	writeVersion(t, repo, "weird", "1", "kind: mystery\n")
	if err := os.MkdirAll(filepath.Join(repo, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	ks, _ := newKinds(t)
	r := open(t, repo, ks)

	if l, err := r.Get("good"); err != nil || l.Version != "1" {
		t.Errorf("Get(good) = %v, %v; want version 1", l, err)
	}
	want := map[string]repository.State{
		"broken": repository.StateFailed,
		"empty":  repository.StateFailed,
		"good":   repository.StateReady,
		"weird":  repository.StateFailed,
	}
	list := r.List()
	var names []string
	for _, in := range list {
		names = append(names, in.Name)
		if in.State != want[in.Name] {
			t.Errorf("List() %s state = %v; want %v", in.Name, in.State, want[in.Name])
		}
	}
	if wantNames := []string{"broken", "empty", "good", "weird"}; !reflect.DeepEqual(names, wantNames) {
		t.Errorf("List() names = %v; want %v", names, wantNames)
	}
	if got := r.Names(); !reflect.DeepEqual(got, names) {
		t.Errorf("Names() = %v; want %v", got, names)
	}
	// The kind is reported for a failed model whose model.yaml could be read.
	if in, _ := r.Info("weird"); in.Kind != "mystery" {
		t.Errorf("Info(weird).Kind = %q; want mystery", in.Kind)
	}
	if in, _ := r.Info("broken"); in.Kind != "fake" {
		t.Errorf("Info(broken).Kind = %q; want fake", in.Kind)
	}
}

func TestGetAndInfoUnknown(t *testing.T) {
	repo := t.TempDir()
	writeVersion(t, repo, "good", "1", okSpec)
	ks, _ := newKinds(t)
	r := open(t, repo, ks)
	if l, err := r.Get("nope"); !errors.Is(err, models.ErrNotFound) {
		t.Errorf("Get(nope) = %v, %v; want ErrNotFound", l, err)
	}
	if in, err := r.Info("nope"); !errors.Is(err, models.ErrNotFound) {
		t.Errorf("Info(nope) = %+v, %v; want ErrNotFound", in, err)
	}
}

func TestHiddenDirectoriesIgnored(t *testing.T) {
	repo := t.TempDir()
	writeVersion(t, repo, "m", "1", okSpec)
	writeVersion(t, repo, "m", ".2-upload", okSpec)
	writeVersion(t, repo, "m", "_3", okSpec)
	writeVersion(t, repo, ".staging", "1", okSpec)
	writeVersion(t, repo, "_tmp", "1", okSpec)
	// A stray file is neither a model nor a version.
	if err := os.WriteFile(filepath.Join(repo, "routes.yaml"), []byte("routes: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "m", "README"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ks, _ := newKinds(t)
	r := open(t, repo, ks)
	if got := r.Names(); !reflect.DeepEqual(got, []string{"m"}) {
		t.Errorf("Names() = %v; want [m]", got)
	}
	in, _ := r.Info("m")
	if in.ActiveVersion != "1" || !reflect.DeepEqual(in.Versions, []string{"1"}) {
		t.Errorf("Info(m) active %q versions %v; want 1 [1]", in.ActiveVersion, in.Versions)
	}
}

func TestInfoDescribesActiveVersion(t *testing.T) {
	repo := t.TempDir()
	writeVersion(t, repo, "m", "1", "kind: fake\nsignature: user_vector\nmetadata:\n  dataset: demo\n  ndcg: 0.25\n")
	ks, _ := newKinds(t)
	r := open(t, repo, ks)
	in, err := r.Info("m")
	if err != nil {
		t.Fatal(err)
	}
	want := repository.Info{
		Name: "m", Kind: "fake", Signature: "user_vector", ActiveVersion: "1",
		Versions: []string{"1"}, State: repository.StateReady,
		Roles:    []string{"recommender"},
		Metadata: map[string]string{"dataset": "demo", "ndcg": "0.25"},
		Policy:   repository.PolicyLatest,
		Details: []repository.VersionInfo{{Version: "1", Label: "stable", State: repository.StateReady,
			Kind: "fake", Signature: "user_vector"}},
	}
	if in.LoadedAt.IsZero() || len(in.Details) != 1 || !in.Details[0].LoadedAt.Equal(in.LoadedAt) {
		t.Errorf("Info(m) load times %v and details %+v; want one set time", in.LoadedAt, in.Details)
	} else {
		in.Details[0].LoadedAt = time.Time{}
	}
	in.LoadedAt = want.LoadedAt
	if !reflect.DeepEqual(in, want) {
		t.Errorf("Info(m) = %+v; want %+v", in, want)
	}
}

func TestReloadSwapsAndKeepsUnchanged(t *testing.T) {
	repo := t.TempDir()
	writeVersion(t, repo, "a", "1", okSpec)
	writeVersion(t, repo, "b", "1", okSpec)
	ks, fk := newKinds(t)
	r := open(t, repo, ks)
	b1, _ := r.Get("b")

	writeVersion(t, repo, "a", "2", okSpec)
	if err := r.Sync(t.Context()); err != nil {
		t.Fatalf("Sync() = %v", err)
	}
	if l, err := r.Get("a"); err != nil || l.Version != "2" {
		t.Errorf("after reload Get(a) = %v, %v; want version 2", l, err)
	}
	if got := fk.count(fk.closed, "a/1"); got != 1 {
		t.Errorf("a/1 closed %d times after being replaced; want 1", got)
	}
	if b2, _ := r.Get("b"); b2 != b1 {
		t.Errorf("reload replaced unchanged model b (%p → %p); want the same Loaded", b1, b2)
	}
	if got := fk.count(fk.builds, "b/1"); got != 1 {
		t.Errorf("b/1 built %d times; want 1", got)
	}

	// A broken new version keeps the serving one.
	writeVersion(t, repo, "a", "3", failSpec)
	if err := r.Sync(t.Context()); err != nil {
		t.Fatalf("Sync() = %v", err)
	}
	in, _ := r.Info("a")
	if in.ActiveVersion != "2" || in.State != repository.StateReady || !strings.Contains(in.Err, "fake build failure") {
		t.Errorf("after broken upload Info(a) = active %q state %v err %q; want 2 ready with the build error", in.ActiveVersion, in.State, in.Err)
	}
	if got := fk.count(fk.closed, "a/2"); got != 0 {
		t.Errorf("a/2 closed %d times although still active; want 0", got)
	}
}

func TestClose(t *testing.T) {
	repo := t.TempDir()
	writeVersion(t, repo, "a", "1", okSpec)
	writeVersion(t, repo, "b", "7", okSpec)
	ks, fk := newKinds(t)
	r, err := repository.Open(t.Context(), repository.Options{Dir: repo, Registry: ks})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	for _, id := range []string{"a/1", "b/7"} {
		if got := fk.count(fk.closed, id); got != 1 {
			t.Errorf("%s closed %d times; want 1", id, got)
		}
	}
	for _, in := range r.List() {
		if in.State != repository.StateUnloaded {
			t.Errorf("after Close %s state = %v; want unloaded", in.Name, in.State)
		}
	}
	if _, err := r.Get("a"); !errors.Is(err, models.ErrNotReady) {
		t.Errorf("after Close Get(a) error = %v; want ErrNotReady", err)
	}
}

func TestOpenErrors(t *testing.T) {
	ks, _ := newKinds(t)
	if _, err := repository.Open(t.Context(), repository.Options{Dir: t.TempDir()}); err == nil {
		t.Errorf("Open(no Kinds) error = nil; want an error")
	}
	missing := filepath.Join(t.TempDir(), "nope")
	if _, err := repository.Open(t.Context(), repository.Options{Dir: missing, Registry: ks}); err == nil {
		t.Errorf("Open(%s) error = nil; want an error", missing)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	repo := t.TempDir()
	writeVersion(t, repo, "a", "1", okSpec)
	if _, err := repository.Open(ctx, repository.Options{Dir: repo, Registry: ks}); !errors.Is(err, context.Canceled) {
		t.Errorf("Open(cancelled ctx) error = %v; want context.Canceled", err)
	}
}

func TestOpenEmptyRepository(t *testing.T) {
	ks, _ := newKinds(t)
	r := open(t, t.TempDir(), ks)
	if got := r.List(); len(got) != 0 {
		t.Errorf("List() of an empty repository = %v; want none", got)
	}
}

func TestStateString(t *testing.T) {
	tests := []struct {
		s    repository.State
		want string
	}{
		{repository.StateLoading, "loading"},
		{repository.StateReady, "ready"},
		{repository.StateFailed, "failed"},
		{repository.StateUnloaded, "unloaded"},
		{repository.State(0), "unknown"},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("State(%d).String() = %q; want %q", int(tt.s), got, tt.want)
		}
	}
}

func TestLoadsRealPopularityModel(t *testing.T) {
	repo := t.TempDir()
	dir := filepath.Join(repo, "popularity", "1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	m, err := popularity.New([]popularity.Entry{{ItemID: "x", Score: 2}, {ItemID: "y", Score: 1}}, popularity.Global)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, popularity.DefaultFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Save(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := models.WriteSpec(dir, models.Spec{Kind: popularity.Kind}); err != nil {
		t.Fatal(err)
	}
	ks, _ := newKinds(t)
	r := open(t, repo, ks)
	in, _ := r.Info("popularity")
	if in.State != repository.StateReady || !reflect.DeepEqual(in.Roles, []string{"recommender", "scorer"}) {
		t.Errorf("Info(popularity) = state %v roles %v err %q; want ready [recommender scorer]", in.State, in.Roles, in.Err)
	}
}

// visited lists what EachServing visits, as name/version, sorted; it fails
// the test if a visited model is closed.
func visited(t *testing.T, r *repository.Repository) []string {
	t.Helper()
	var got []string
	r.EachServing(func(l *repository.Loaded) {
		if m, ok := l.Model.(*fakeModel); ok && m.closed.Load() {
			t.Errorf("EachServing visited %s/%s after its Close", l.Name, l.Version)
		}
		got = append(got, l.Name+"/"+l.Version)
	})
	slices.Sort(got)
	return got
}

func TestEachServing(t *testing.T) {
	repo := t.TempDir()
	writeVersion(t, repo, "a", "1", okSpec)
	writeVersion(t, repo, "a", "2", okSpec)
	writeVersion(t, repo, "b", "1", okSpec)
	writeVersion(t, repo, "broken", "1", failSpec)
	writeVersion(t, repo, "gone", "1", okSpec)
	ks, _ := newKinds(t)
	r := open(t, repo, ks)
	steps := []struct {
		name   string
		change func(t *testing.T)
		want   []string
	}{
		{"the serving version of each loaded model", func(*testing.T) {}, []string{"a/2", "b/1", "gone/1"}},
		{"stable and canary", func(t *testing.T) {
			if _, err := r.Activate(t.Context(), "a", "1", 0); err != nil {
				t.Fatal(err)
			}
			if _, err := r.Activate(t.Context(), "a", "2", 30); err != nil {
				t.Fatal(err)
			}
		}, []string{"a/1", "a/2", "b/1", "gone/1"}},
		{"not unloaded ones", func(t *testing.T) {
			if _, err := r.Unload(t.Context(), "gone"); err != nil {
				t.Fatal(err)
			}
		}, []string{"a/1", "a/2", "b/1"}},
		{"not retired ones", func(t *testing.T) {
			writeVersion(t, repo, "b", "2", okSpec)
			if err := r.Sync(t.Context()); err != nil {
				t.Fatal(err)
			}
		}, []string{"a/1", "a/2", "b/2"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.change(t)
			if got := visited(t, r); !slices.Equal(got, st.want) {
				t.Errorf("EachServing visited %v; want %v", got, st.want)
			}
		})
	}
	r.Close()
	if got := visited(t, r); len(got) != 0 {
		t.Errorf("after Close EachServing visited %v; want none", got)
	}
}

// TestEachServingDuringSwaps visits the versions while new ones replace them
// (run with -race): no visit may reach a closed model.
func TestEachServingDuringSwaps(t *testing.T) {
	repo := t.TempDir()
	writeVersion(t, repo, "a", "1", okSpec)
	ks, _ := newKinds(t)
	r := open(t, repo, ks)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
				visited(t, r)
			}
		}
	})
	for v := 2; v < 30; v++ {
		writeVersion(t, repo, "a", strconv.Itoa(v), okSpec)
		if err := r.Sync(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
}
