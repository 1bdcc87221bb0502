package server

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/recserve/recserve/server/router"
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
func watchRoutes(ctx context.Context, path string, r routesSetter, interval time.Duration, log *slog.Logger) {
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
	}
}
