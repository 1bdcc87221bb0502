package repository

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/recserve/recserve/models"
)

// Loaded is a loaded model version. Its fields are immutable once published.
//
// A Loaded is reference counted: the repository holds one reference while the
// version serves, and every Acquire holds one until its Release. Retiring a
// version (a swap, a rollback, an unload) drops the repository's reference,
// and the model is closed when the last holder releases it, so requests in
// flight finish on the version they started with.
//
// Only a Repository makes a Loaded: the reference count and the close
// channel are set up by it, and a Loaded built elsewhere cannot be released.
type Loaded struct {
	Name     string
	Version  string
	Spec     models.Spec
	Model    models.Model
	LoadedAt time.Time

	fp       fingerprint // of the version directory when it was loaded
	refs     atomic.Int64
	log      *slog.Logger
	closed   chan struct{} // closed once Model.Close has returned
	closeErr error         // what Model.Close returned; read after closed
}

func newLoaded(name, version string, spec models.Spec, m models.Model, fp fingerprint, log *slog.Logger) *Loaded {
	l := &Loaded{Name: name, Version: version, Spec: spec, Model: m, LoadedAt: time.Now(),
		fp: fp, log: log, closed: make(chan struct{})}
	l.refs.Store(1)
	return l
}

// acquire takes a reference unless the version is already closing.
func (l *Loaded) acquire() bool {
	for {
		n := l.refs.Load()
		if n <= 0 {
			return false
		}
		if l.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Release ends an Acquire. The last Release of a retired version closes its
// model.
func (l *Loaded) Release() {
	switch n := l.refs.Add(-1); {
	case n == 0:
		l.close()
	case n < 0:
		// A Release without its Acquire: a bug in the caller. Closing twice
		// would be worse than the leak of one reference.
		l.log.Error("model version released more often than acquired", "model", l.Name, "version", l.Version)
	}
}

// retire drops the repository's own reference.
func (l *Loaded) retire() { l.Release() }

func (l *Loaded) close() {
	start := time.Now()
	l.closeErr = l.Model.Close()
	if err := l.closeErr; err != nil {
		l.log.Warn("model version close", "model", l.Name, "version", l.Version, "err", err)
	} else {
		l.log.Info("model version closed", "model", l.Name, "version", l.Version, "dur", time.Since(start))
	}
	close(l.closed)
}

// Closed is closed once the version has drained and its model is closed.
func (l *Loaded) Closed() <-chan struct{} { return l.closed }
