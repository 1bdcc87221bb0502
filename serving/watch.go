package serving

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/recserve/recserve/serving/router"
)

// DefaultRoutesReload is how often routes.yaml is checked for changes.
const DefaultRoutesReload = 2 * time.Second

// routesSetter is what watchRoutes needs of the router.
type routesSetter interface {
	SetConfig(router.Config) error
}

// watchRoutes polls path every interval and, when its modification time or
// size changes, loads it into r. An invalid file is logged and the previous
// configuration keeps serving; a removed file keeps it too (deleting the
// routes of a live server is more likely an accident than a wish). Polling
// rather than inotify works the same on every file system a model
// repository lives on, network ones included. It returns when ctx is done.
func watchRoutes(ctx context.Context, path string, r routesSetter, interval time.Duration, known func() []string, log *slog.Logger) {
	stamp := func() (time.Time, int64, bool) {
		fi, err := os.Stat(path)
		if err != nil {
			return time.Time{}, 0, false
		}
		return fi.ModTime(), fi.Size(), true
	}
	mod, size, _ := stamp()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m, s, ok := stamp()
		if !ok || m.Equal(mod) && s == size {
			continue
		}
		mod, size = m, s
		cfg, err := router.LoadConfig(path)
		if err == nil {
			err = r.SetConfig(cfg)
		}
		if err != nil {
			log.Error("routes.yaml rejected; the previous routes keep serving", "path", path, "err", err)
			continue
		}
		log.Info("routes.yaml reloaded", "path", path, "routes", len(cfg.Routes), "default_route", cfg.DefaultRoute)
		warnUnknownModels(&cfg, known(), log)
	}
}

// warnUnknownModels logs the models cfg names that the repository does not
// have: routes may name a model before it is deployed (its sources are then
// dropped and its fallbacks answer), but a typo should not wait for a
// request to show.
func warnUnknownModels(cfg *router.Config, known []string, log *slog.Logger) {
	for _, m := range cfg.Models() {
		if !slices.Contains(known, m) {
			log.Warn("routes.yaml names a model the repository does not have; requests drop it until it is deployed", "model", m)
		}
	}
}

// syncer is what pollRepository needs of the repository.
type syncer interface {
	Sync(ctx context.Context) error
}

// pollRepository calls repo.Sync every interval until ctx is done. A failed
// sync is logged and retried at the next tick: the models already serving
// keep serving.
func pollRepository(ctx context.Context, repo syncer, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := repo.Sync(ctx); err != nil && ctx.Err() == nil {
			log.Error("repository sync failed; the models serving are unchanged", "err", err)
		}
	}
}

// WatchRoutes reloads RoutesFile into the router whenever it changes, checked
// every interval (0 means DefaultRoutesReload), until ctx is done.
func (s *Stack) WatchRoutes(ctx context.Context, interval time.Duration) {
	if interval == 0 {
		interval = DefaultRoutesReload
	}
	watchRoutes(ctx, s.RoutesFile, s.Router, interval, s.Repository.Names, s.log)
}

// PollRepository applies what changed in the repository directory (versions
// copied in by another replica or a deploy job) every interval, until ctx is
// done.
func (s *Stack) PollRepository(ctx context.Context, interval time.Duration) {
	pollRepository(ctx, s.Repository, interval, s.log)
}
