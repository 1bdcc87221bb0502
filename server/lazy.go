package server

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models/repository"
	"github.com/recserve/recserve/serving"
	"github.com/recserve/recserve/serving/experiment"
	"github.com/recserve/recserve/serving/router"
	"github.com/recserve/recserve/serving/store"
)

// errLoading is returned by services called before the repository loaded
// (mapped to Unavailable); health is NOT_SERVING then, so well-behaved
// clients do not call.
var errLoading = errors.New("server is still loading its models")

// lazyDeps lets the gRPC server start (and answer health checks) before the
// router and repository exist.
type lazyDeps struct {
	r    atomic.Pointer[router.Router]
	repo atomic.Pointer[repository.Repository]
	ev   atomic.Pointer[store.Live]
	// stack answers experiment reports.
	stack atomic.Pointer[serving.Stack]
}

// set publishes the loaded core (its Live may be nil: no state store).
func (l *lazyDeps) set(s *serving.Stack) {
	l.stack.Store(s)
	l.ev.Store(s.Live)
	l.repo.Store(s.Repository)
	l.r.Store(s.Router)
}

// Report implements Reporter.
func (l *lazyDeps) Report(ctx context.Context, q experiment.Query) (experiment.Report, error) {
	s := l.stack.Load()
	if s == nil {
		return experiment.Report{}, errLoading
	}
	if s.Live == nil {
		return experiment.Report{}, errNoStateStore
	}
	return s.Report(ctx, q)
}

func (l *lazyDeps) Recommend(ctx context.Context, req router.Request) (router.Response, error) {
	r := l.r.Load()
	if r == nil {
		return router.Response{}, errLoading
	}
	return r.Recommend(ctx, req)
}

func (l *lazyDeps) Score(ctx context.Context, req router.ScoreRequest) (router.ScoreResponse, error) {
	r := l.r.Load()
	if r == nil {
		return router.ScoreResponse{}, errLoading
	}
	return r.Score(ctx, req)
}

func (l *lazyDeps) SimilarItems(ctx context.Context, req router.SimilarRequest) (router.SimilarResponse, error) {
	r := l.r.Load()
	if r == nil {
		return router.SimilarResponse{}, errLoading
	}
	return r.SimilarItems(ctx, req)
}

func (l *lazyDeps) TargetAudience(ctx context.Context, req router.AudienceRequest) (router.AudienceResponse, error) {
	r := l.r.Load()
	if r == nil {
		return router.AudienceResponse{}, errLoading
	}
	return r.TargetAudience(ctx, req)
}

func (l *lazyDeps) List() ([]repository.Info, error) {
	if repo := l.repo.Load(); repo != nil {
		return repo.List(), nil
	}
	return nil, errLoading
}

func (l *lazyDeps) Info(name string) (repository.Info, error) {
	if repo := l.repo.Load(); repo != nil {
		return repo.Info(name)
	}
	return repository.Info{}, errLoading
}

// repository returns the loaded repository, or errLoading.
func (l *lazyDeps) repository() (*repository.Repository, error) {
	if repo := l.repo.Load(); repo != nil {
		return repo, nil
	}
	return nil, errLoading
}

func (l *lazyDeps) NewUpload(name, version string) (*repository.Upload, error) {
	repo, err := l.repository()
	if err != nil {
		return nil, err
	}
	return repo.NewUpload(name, version)
}

func (l *lazyDeps) Commit(ctx context.Context, u *repository.Upload, o repository.DeployOptions) (repository.Info, error) {
	repo, err := l.repository()
	if err != nil {
		return repository.Info{}, err
	}
	return repo.Commit(ctx, u, o)
}

func (l *lazyDeps) Activate(ctx context.Context, name, version string, canaryPercent float64) (repository.Info, error) {
	repo, err := l.repository()
	if err != nil {
		return repository.Info{}, err
	}
	return repo.Activate(ctx, name, version, canaryPercent)
}

func (l *lazyDeps) Rollback(ctx context.Context, name string) (repository.Info, error) {
	repo, err := l.repository()
	if err != nil {
		return repository.Info{}, err
	}
	return repo.Rollback(ctx, name)
}

func (l *lazyDeps) Unload(ctx context.Context, name string) (repository.Info, error) {
	repo, err := l.repository()
	if err != nil {
		return repository.Info{}, err
	}
	return repo.Unload(ctx, name)
}

// events returns the live store, errLoading before it loaded, or
// errNoStateStore when the server runs without one.
func (l *lazyDeps) events() (*store.Live, error) {
	if l.r.Load() == nil {
		return nil, errLoading
	}
	if ev := l.ev.Load(); ev != nil {
		return ev, nil
	}
	return nil, errNoStateStore
}

func (l *lazyDeps) Types() store.EventTypes {
	if ev := l.ev.Load(); ev != nil {
		return ev.Types()
	}
	return store.DefaultEventTypes()
}

func (l *lazyDeps) Track(ctx context.Context, events []store.Event) (int, error) {
	ev, err := l.events()
	if err != nil {
		return 0, err
	}
	return ev.Track(ctx, events)
}

func (l *lazyDeps) UpsertItems(ctx context.Context, items []dataset.Item) error {
	ev, err := l.events()
	if err != nil {
		return err
	}
	return ev.UpsertItems(ctx, items)
}

func (l *lazyDeps) DeleteItems(ctx context.Context, ids []string) (int, error) {
	ev, err := l.events()
	if err != nil {
		return 0, err
	}
	return ev.DeleteItems(ctx, ids)
}

func (l *lazyDeps) DeleteUser(ctx context.Context, userID string) (int, error) {
	ev, err := l.events()
	if err != nil {
		return 0, err
	}
	return ev.DeleteUser(ctx, userID)
}

func (l *lazyDeps) UserEvents(ctx context.Context, userID string, limit int) ([]store.Event, int, error) {
	ev, err := l.events()
	if err != nil {
		return nil, 0, err
	}
	return ev.UserEvents(ctx, userID, limit)
}

func (l *lazyDeps) Export(ctx context.Context, item func(dataset.Item) error, event func(store.Event) error) error {
	ev, err := l.events()
	if err != nil {
		return err
	}
	return ev.Export(ctx, item, event)
}
