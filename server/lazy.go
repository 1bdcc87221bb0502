package server

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/recserve/recserve/models/repository"
	"github.com/recserve/recserve/serving/router"
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
}

func (l *lazyDeps) set(r *router.Router, repo *repository.Repository) {
	l.repo.Store(repo)
	l.r.Store(r)
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
