package serving

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/recserve/recserve/serving/store"
	"github.com/recserve/recserve/serving/store/pebblestore"
	"github.com/recserve/recserve/serving/store/redisstore"
)

// OpenBackend opens the durable state store a process is configured with:
// Redis when url is set (redis://HOST:PORT/DB, shared by every replica),
// else Pebble in the directory state (embedded, one process). With neither
// it returns nil, nil: the server then runs on a read-only snapshot of its
// data set.
func OpenBackend(ctx context.Context, state, url string, log *slog.Logger) (store.Backend, error) {
	switch {
	case url != "" && state != "":
		return nil, errors.New("state store: give --state DIR or --store URL, not both")
	case url != "":
		if !strings.HasPrefix(url, "redis://") && !strings.HasPrefix(url, "rediss://") {
			return nil, fmt.Errorf("state store %q: want redis://HOST:PORT/DB", url)
		}
		b, err := redisstore.Open(ctx, url, redisstore.Options{})
		if err != nil {
			return nil, fmt.Errorf("state store %s: %w", url, err)
		}
		return b, nil
	case state != "":
		b, err := pebblestore.Open(state, pebblestore.Options{Logger: log})
		if err != nil {
			return nil, fmt.Errorf("state store %s: %w", state, err)
		}
		return b, nil
	}
	return nil, nil
}
