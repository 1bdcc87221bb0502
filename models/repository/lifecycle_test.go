package repository_test

import (
	"context"
	"errors"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/popularity"
	"github.com/recserve/recserve/models/repository"
)

// deploy uploads files (path → content) as a version of name and commits it.
func deploy(t *testing.T, r *repository.Repository, name, version string, files map[string]string, o repository.DeployOptions) (repository.Info, error) {
	t.Helper()
	u, err := r.NewUpload(name, version)
	if err != nil {
		return repository.Info{}, err
	}
	defer u.Abort()
	for _, p := range slices.Sorted(maps.Keys(files)) {
		if err := u.Write(p, []byte(files[p])); err != nil {
			return repository.Info{}, err
		}
	}
	return r.Commit(t.Context(), u, o)
}

// writePolicyFile writes <repo>/<name>/policy.yaml by hand, as an operator
// or another replica would.
func writePolicyFile(t *testing.T, repo, name, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(repo, name, repository.PolicyFile), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// serving acquires name for unit and returns the version, releasing it.
func serving(t *testing.T, r *repository.Repository, name, unit string) string {
	t.Helper()
	l, err := r.Acquire(name, unit)
	if err != nil {
		t.Fatalf("Acquire(%s) error = %v", name, err)
	}
	defer l.Release()
	return l.Version
}

func TestDeployActivateRollbackPersist(t *testing.T) {
	repo := t.TempDir()
	writeVersion(t, repo, "m", "1", okSpec)
	ks, fk := newKinds(t)
	r := open(t, repo, ks)

	in, err := deploy(t, r, "m", "", map[string]string{"model.yaml": okSpec, "sub/weights.bin": "w"}, repository.DeployOptions{Activate: true})
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	if in.ActiveVersion != "2" || in.Policy != repository.PolicySpecific || in.State != repository.StateReady {
		t.Errorf("after deploy --activate Info = active %q policy %q state %v; want 2 specific ready", in.ActiveVersion, in.Policy, in.State)
	}
	if b, err := os.ReadFile(filepath.Join(repo, "m", "2", "sub", "weights.bin")); err != nil || string(b) != "w" {
		t.Errorf("deployed file = %q, %v; want w", b, err)
	}
	if got := fk.count(fk.closed, "m/1"); got != 1 {
		t.Errorf("m/1 closed %d times after the swap; want 1", got)
	}
	if got := fk.count(fk.builds, "m/2"); got != 1 {
		t.Errorf("m/2 built %d times; want 1 (validated instance serves)", got)
	}

	// A restart serves what was activated, not merely the newest version.
	writeVersion(t, repo, "m", "3", okSpec)
	r2 := open(t, repo, ks)
	if got := serving(t, r2, "m", "u"); got != "2" {
		t.Errorf("after restart m serves %q; want 2", got)
	}
	r2.Close()

	if in, err = r.Rollback(t.Context(), "m"); err != nil || in.ActiveVersion != "1" {
		t.Fatalf("Rollback = active %q, %v; want 1", in.ActiveVersion, err)
	}
	r3 := open(t, repo, ks)
	if got := serving(t, r3, "m", "u"); got != "1" {
		t.Errorf("after rollback and restart m serves %q; want 1", got)
	}
	r3.Close()
	if _, err := r.Rollback(t.Context(), "m"); !errors.Is(err, repository.ErrNoRollback) {
		t.Errorf("second Rollback error = %v; want ErrNoRollback", err)
	}
	// Activate any version on disk; rollback goes back through history.
	for _, v := range []string{"3", "2"} {
		if _, err := r.Activate(t.Context(), "m", v, 0); err != nil {
			t.Fatalf("Activate(%s) = %v", v, err)
		}
	}
	for _, want := range []string{"3", "1"} {
		if in, err := r.Rollback(t.Context(), "m"); err != nil || in.ActiveVersion != want {
			t.Errorf("Rollback = %q, %v; want %s", in.ActiveVersion, err, want)
		}
	}
	if _, err := r.Activate(t.Context(), "m", "9", 0); !errors.Is(err, models.ErrNotFound) {
		t.Errorf("Activate(9) error = %v; want ErrNotFound", err)
	}
	// Back to the latest policy.
	if in, err := r.Activate(t.Context(), "m", repository.PolicyLatest, 0); err != nil || in.ActiveVersion != "3" || in.Policy != repository.PolicyLatest {
		t.Errorf("Activate(latest) = %q %q, %v; want 3 latest", in.ActiveVersion, in.Policy, err)
	}
}

func TestDeployWithoutActivateKeepsServing(t *testing.T) {
	repo := t.TempDir()
	writeVersion(t, repo, "m", "1", okSpec)
	ks, fk := newKinds(t)
	r := open(t, repo, ks)
	in, err := deploy(t, r, "m", "5", map[string]string{"model.yaml": okSpec}, repository.DeployOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if in.ActiveVersion != "1" || !slices.Equal(in.Versions, []string{"1", "5"}) {
		t.Errorf("Info = active %q versions %v; want 1 [1 5]", in.ActiveVersion, in.Versions)
	}
	if got := fk.count(fk.closed, "m/5"); got != 1 {
		t.Errorf("validated but inactive m/5 closed %d times; want 1", got)
	}
	if err := r.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := serving(t, r, "m", ""); got != "1" {
		t.Errorf("after Sync m serves %s; want 1 (a deploy without activate must not go live)", got)
	}
	r2 := open(t, repo, ks)
	if got := serving(t, r2, "m", ""); got != "1" {
		t.Errorf("after restart m serves %s; want 1", got)
	}
	// A new model deployed without activation is unloaded until activated.
	in, err = deploy(t, r, "fresh", "", map[string]string{"model.yaml": okSpec}, repository.DeployOptions{})
	if err != nil || in.State != repository.StateUnloaded || in.ActiveVersion != "" {
		t.Fatalf("deploy fresh = state %v active %q, %v; want unloaded", in.State, in.ActiveVersion, err)
	}
	if _, err := r.Acquire("fresh", ""); !errors.Is(err, models.ErrNotReady) {
		t.Errorf("Acquire(fresh) error = %v; want ErrNotReady", err)
	}
	if in, err := r.Activate(t.Context(), "fresh", "1", 0); err != nil || in.ActiveVersion != "1" {
		t.Errorf("Activate(fresh, 1) = %q, %v; want 1", in.ActiveVersion, err)
	}
}

func TestDeployRejected(t *testing.T) {
	okFiles := map[string]string{"model.yaml": okSpec}
	big := strings.Repeat("x", 2000)
	tests := []struct {
		name, model, version string
		files                map[string]string
		want                 error
		wantMsg              string
		wantArg              string // the FieldError's field, if any
	}{
		{name: "path traversal", model: "m", files: map[string]string{"model.yaml": okSpec, "../../evil": "x"}, want: repository.ErrInvalidName, wantArg: "path"},
		{name: "absolute path", model: "m", files: map[string]string{"/etc/x": "x"}, want: repository.ErrInvalidName, wantArg: "path"},
		{name: "hidden file", model: "m", files: map[string]string{".policy.yaml": "x"}, want: repository.ErrInvalidName, wantArg: "path"},
		{name: "unclean path", model: "m", files: map[string]string{"a//b": "x"}, want: repository.ErrInvalidName, wantArg: "path"},
		{name: "backslash", model: "m", files: map[string]string{`a\..\b`: "x"}, want: repository.ErrInvalidName, wantArg: "path"},
		{name: "model name traversal", model: "../m", files: okFiles, want: repository.ErrInvalidName, wantArg: "name"},
		{name: "model name separator", model: "a/b", files: okFiles, want: repository.ErrInvalidName, wantArg: "name"},
		{name: "hidden model name", model: ".staging", files: okFiles, want: repository.ErrInvalidName, wantArg: "name"},
		{name: "version not an integer", model: "m", version: "v2", files: okFiles, want: repository.ErrInvalidName, wantArg: "version"},
		{name: "version with leading zero", model: "m", version: "02", files: okFiles, want: repository.ErrInvalidName, wantArg: "version"},
		{name: "empty path", model: "m", files: map[string]string{"": "x"}, want: repository.ErrInvalidName, wantArg: "path"},
		{name: "existing version", model: "m", version: "1", files: okFiles, want: repository.ErrExists},
		{name: "oversize", model: "m", files: map[string]string{"model.yaml": okSpec, "w.bin": big}, want: repository.ErrTooLarge},
		{name: "too many files", model: "m", files: map[string]string{"model.yaml": okSpec, "a": "", "b": "", "c": ""}, want: repository.ErrTooLarge},
		{name: "no model.yaml", model: "m", files: map[string]string{"w.bin": "x"}, want: repository.ErrRejected, wantMsg: "no model.yaml"},
		{name: "build fails", model: "m", files: map[string]string{"model.yaml": failSpec}, want: repository.ErrRejected, wantMsg: "fake build failure"},
		{name: "NaN outputs", model: "m", files: map[string]string{"model.yaml": "kind: fake\nparams:\n  nan: true\n"}, want: repository.ErrRejected, wantMsg: "finite"},
		{name: "roles change", model: "m", files: map[string]string{"model.yaml": "kind: popularity\n", popularity.DefaultFile: popularityTable(t)}, want: repository.ErrRejected, wantMsg: "has roles [recommender scorer] but the serving version 1 has [recommender]"},
		{name: "unknown key", model: "m", files: map[string]string{"model.yaml": "kind: fake\nbogus: 1\n"}, want: repository.ErrRejected, wantMsg: "bogus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := t.TempDir()
			writeVersion(t, repo, "m", "1", okSpec)
			ks, _ := newKinds(t)
			r, err := repository.Open(t.Context(), repository.Options{Dir: repo, Registry: ks, MaxUploadBytes: 1000, MaxUploadFiles: 3})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			_, err = deploy(t, r, tt.model, tt.version, tt.files, repository.DeployOptions{Activate: true})
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("deploy error = %v; want %v containing %q", err, tt.want, tt.wantMsg)
			}
			var ae *models.FieldError
			if errors.As(err, &ae) != (tt.wantArg != "") || tt.wantArg != "" && ae.Field != tt.wantArg {
				t.Errorf("deploy error %v: FieldError %+v; want field %q", err, ae, tt.wantArg)
			}
			if got := serving(t, r, "m", "u"); got != "1" {
				t.Errorf("after a rejected deploy m serves %s; want 1", got)
			}
			vs, _ := os.ReadDir(filepath.Join(repo, "m"))
			for _, v := range vs {
				if v.Name() != "1" {
					t.Errorf("rejected deploy left %s in the model directory", v.Name())
				}
			}
			if left, _ := os.ReadDir(filepath.Join(repo, ".staging")); len(left) != 0 {
				t.Errorf("rejected deploy left %d staging directories", len(left))
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(repo), "evil")); err == nil {
				t.Errorf("path traversal wrote outside the repository")
			}
		})
	}
}

// popularityTable returns a saved popularity model.
func popularityTable(t *testing.T) string {
	t.Helper()
	m, err := popularity.New([]popularity.Entry{{ItemID: "x", Score: 1}}, popularity.Global)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := m.Save(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestSwapDrainsBeforeClose(t *testing.T) {
	repo := t.TempDir()
	writeVersion(t, repo, "m", "1", okSpec)
	writeVersion(t, repo, "m", "2", okSpec)
	ks, fk := newKinds(t)
	r := open(t, repo, ks)
	held, err := r.Acquire("m", "u")
	if err != nil || held.Version != "2" {
		t.Fatalf("Acquire = %v, %v; want version 2", held, err)
	}
	if _, err := r.Activate(t.Context(), "m", "1", 0); err != nil {
		t.Fatal(err)
	}
	if got := serving(t, r, "m", "u"); got != "1" {
		t.Errorf("after Activate(1) new requests get %s; want 1", got)
	}
	if got := fk.count(fk.closed, "m/2"); got != 0 {
		t.Fatalf("m/2 closed while a request holds it")
	}
	if _, err := held.Model.(models.Recommender).Recommend(t.Context(), models.Query{K: 1}); err != nil {
		t.Errorf("in-flight request on the old version: %v", err)
	}
	held.Release()
	<-held.Closed()
	if got := fk.count(fk.closed, "m/2"); got != 1 {
		t.Errorf("m/2 closed %d times after its last release; want 1", got)
	}
}

func TestCanary(t *testing.T) {
	repo := t.TempDir()
	writeVersion(t, repo, "m", "1", okSpec)
	writeVersion(t, repo, "m", "2", okSpec)
	writePolicyFile(t, repo, "m", "version_policy: specific\nstable: \"1\"\n")
	ks, fk := newKinds(t)
	r := open(t, repo, ks)
	in, err := r.Activate(t.Context(), "m", "2", 30)
	if err != nil || in.ActiveVersion != "1" || in.CanaryVersion != "2" || in.CanaryPercent != 30 {
		t.Fatalf("Activate(2, canary 30) = %+v, %v", in, err)
	}
	const n = 20000
	canary := 0
	for i := range n {
		u := "user" + strconv.Itoa(i)
		v := serving(t, r, "m", u)
		if v == "2" {
			canary++
		}
		if i%1000 == 0 && serving(t, r, "m", u) != v {
			t.Fatalf("user %s moved between versions", u)
		}
	}
	if share := float64(canary) / n; math.Abs(share-0.3) > 0.02 {
		t.Errorf("canary share %.3f; want 0.30 ± 0.02", share)
	}
	// A restart keeps the canary and its split.
	r2 := open(t, repo, ks)
	if in, _ := r2.Info("m"); in.CanaryVersion != "2" || in.CanaryPercent != 30 {
		t.Errorf("after restart canary %q %v; want 2 30", in.CanaryVersion, in.CanaryPercent)
	}
	r2.Close()
	// Rollback removes the canary only.
	if in, err := r.Rollback(t.Context(), "m"); err != nil || in.CanaryVersion != "" || in.ActiveVersion != "1" {
		t.Errorf("Rollback = canary %q active %q, %v; want no canary, 1", in.CanaryVersion, in.ActiveVersion, err)
	}
	// Promoting a canary reuses the loaded instance.
	if _, err := r.Activate(t.Context(), "m", "2", 10); err != nil {
		t.Fatal(err)
	}
	builds := fk.count(fk.builds, "m/2")
	in, err = r.Activate(t.Context(), "m", "2", 0)
	if err != nil || in.ActiveVersion != "2" || in.CanaryVersion != "" {
		t.Fatalf("promote = active %q canary %q, %v", in.ActiveVersion, in.CanaryVersion, err)
	}
	if got := fk.count(fk.builds, "m/2"); got != builds {
		t.Errorf("promotion built m/2 again (%d → %d builds)", builds, got)
	}
	if _, err := r.Activate(t.Context(), "m", "2", 50); !errors.Is(err, repository.ErrConflict) {
		t.Errorf("canary of the stable version: error = %v; want ErrConflict", err)
	}
	labels := map[string]string{}
	for _, d := range in.Details {
		labels[d.Version] = d.Label + "/" + d.State.String()
	}
	if want := map[string]string{"1": "/available", "2": "stable/ready"}; !maps.Equal(labels, want) {
		t.Errorf("Details = %v; want %v", labels, want)
	}
}

func TestUnloadPersists(t *testing.T) {
	repo := t.TempDir()
	writeVersion(t, repo, "m", "1", okSpec)
	ks, fk := newKinds(t)
	r := open(t, repo, ks)
	in, err := r.Unload(t.Context(), "m")
	if err != nil || in.State != repository.StateUnloaded {
		t.Fatalf("Unload = %v, %v; want unloaded", in.State, err)
	}
	if got := fk.count(fk.closed, "m/1"); got != 1 {
		t.Errorf("m/1 closed %d times after Unload; want 1", got)
	}
	if _, err := r.Acquire("m", ""); !errors.Is(err, models.ErrNotReady) {
		t.Errorf("Acquire after Unload error = %v; want ErrNotReady", err)
	}
	r2 := open(t, repo, ks)
	if in, _ := r2.Info("m"); in.State != repository.StateUnloaded || in.Kind != "fake" {
		t.Errorf("after restart state %v kind %q; want unloaded fake", in.State, in.Kind)
	}
	r2.Close()
	if in, err := r.Activate(t.Context(), "m", "1", 0); err != nil || in.State != repository.StateReady {
		t.Errorf("Activate after Unload = %v, %v; want ready", in.State, err)
	}
	if _, err := r.Unload(t.Context(), "nope"); !errors.Is(err, models.ErrNotFound) {
		t.Errorf("Unload(nope) error = %v; want ErrNotFound", err)
	}
}

func TestSyncAppliesDiskChanges(t *testing.T) {
	repo := t.TempDir()
	writeVersion(t, repo, "m", "1", okSpec)
	writeVersion(t, repo, "gone", "1", okSpec)
	ks, fk := newKinds(t)
	r := open(t, repo, ks)
	sync := func() {
		t.Helper()
		if err := r.Sync(t.Context()); err != nil {
			t.Fatal(err)
		}
	}

	// Another replica activated version 1 of a new model and pinned m.
	writeVersion(t, repo, "new", "1", okSpec)
	writeVersion(t, repo, "m", "2", okSpec)
	writePolicyFile(t, repo, "m", "version_policy: specific\nstable: \"1\"\n")
	if err := os.RemoveAll(filepath.Join(repo, "gone")); err != nil {
		t.Fatal(err)
	}
	sync()
	if got := serving(t, r, "new", ""); got != "1" {
		t.Errorf("new serves %s; want 1", got)
	}
	if got := serving(t, r, "m", ""); got != "1" {
		t.Errorf("pinned m serves %s; want 1", got)
	}
	if _, err := r.Acquire("gone", ""); !errors.Is(err, models.ErrNotFound) {
		t.Errorf("Acquire(gone) error = %v; want ErrNotFound", err)
	}
	if got := fk.count(fk.closed, "gone/1"); got != 1 {
		t.Errorf("gone/1 closed %d times; want 1", got)
	}

	// A broken policy file keeps what serves.
	writePolicyFile(t, repo, "m", "version_policy: sometimes\n")
	sync()
	if in, _ := r.Info("m"); in.ActiveVersion != "1" || !strings.Contains(in.Err, "sometimes") {
		t.Errorf("bad policy: active %q err %q; want 1 and the policy error", in.ActiveVersion, in.Err)
	}

	// A broken version is not rebuilt on every Sync, only once it changes.
	if err := os.Remove(filepath.Join(repo, "m", repository.PolicyFile)); err != nil {
		t.Fatal(err)
	}
	writeVersion(t, repo, "m", "3", failSpec)
	sync()
	sync()
	if got := serving(t, r, "m", ""); got != "2" {
		t.Errorf("latest policy with broken 3: serves %s; want 2", got)
	}
	writeVersion(t, repo, "m", "3", okSpec)
	sync()
	if got := serving(t, r, "m", ""); got != "3" {
		t.Errorf("after fixing 3 in place: serves %s; want 3", got)
	}
	// A serving version changed in place is reloaded.
	b3 := fk.count(fk.builds, "m/3")
	if err := os.WriteFile(filepath.Join(repo, "m", "3", "weights.bin"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	sync()
	if got := fk.count(fk.builds, "m/3"); got != b3+1 {
		t.Errorf("m/3 built %d times after an in-place change; want %d", got, b3+1)
	}
}

// TestAcquireNeverSeesClosedVersions races requests against activations and
// rollbacks: every request must run on an open version.
func TestAcquireNeverSeesClosedVersions(t *testing.T) {
	repo := t.TempDir()
	writeVersion(t, repo, "m", "1", okSpec)
	writeVersion(t, repo, "m", "2", okSpec)
	ks, fk := newKinds(t)
	r := open(t, repo, ks)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	var failures failureLog
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				l, err := r.Acquire("m", strconv.Itoa(g*1_000_000+i))
				if err != nil {
					failures.add(err)
					continue
				}
				if _, err := l.Model.(models.Recommender).Recommend(ctx, models.Query{K: 1}); err != nil {
					failures.add(err)
				}
				l.Release()
			}
		})
	}
	for i := range 100 {
		var err error
		switch i % 3 {
		case 0:
			_, err = r.Activate(t.Context(), "m", "2", 0)
		case 1:
			_, err = r.Activate(t.Context(), "m", "1", 20)
		default:
			_, err = r.Rollback(t.Context(), "m")
		}
		if err != nil {
			t.Errorf("cycle %d: %v", i, err)
		}
	}
	cancel()
	wg.Wait()
	if n, first := failures.get(); n > 0 {
		t.Errorf("%d requests failed during swaps; first: %v", n, first)
	}
	r.Close()
	for _, id := range []string{"m/1", "m/2"} {
		if b, c := fk.count(fk.builds, id), fk.count(fk.closed, id); b != c {
			t.Errorf("%s built %d times, closed %d times; want equal (no leak)", id, b, c)
		}
	}
}

type failureLog struct {
	mu    sync.Mutex
	n     int
	first error
}

func (a *failureLog) add(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n == 0 {
		a.first = err
	}
	a.n++
}

func (a *failureLog) get() (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n, a.first
}
