// Package impressionlog writes every answer's impression as one JSON line to
// a file rotated by size, the append-only feed a data warehouse loads
// (lumberjack rotates: FILE, then FILE's timestamped backups, the oldest
// removed beyond Options.Backups). Log never blocks a request: impressions
// queue in a bounded buffer a writer goroutine drains, and when the writer
// falls behind (a stalled disk) the newest are dropped and counted rather
// than slowing answers down.
package impressionlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/recserve/recserve/serving/router"
)

// Defaults of Options.
const (
	DefaultMaxMB   = 100
	DefaultBackups = 10
	DefaultBuffer  = 8192
)

// Options configures a File.
type Options struct {
	// Path is the file written; its directory is created if needed.
	Path string
	// MaxMB is the size in megabytes at which the file is rotated (0:
	// DefaultMaxMB); Backups how many rotated files are kept (0:
	// DefaultBackups).
	MaxMB, Backups int
	// Buffer is how many impressions may wait for the writer (0:
	// DefaultBuffer).
	Buffer int
	// Logger receives write errors (once per error streak); nil discards.
	Logger *slog.Logger
}

// File is an impression log. It implements router.ImpressionLog and is safe
// for concurrent use.
type File struct {
	queue   chan router.Impression
	out     *lumberjack.Logger
	log     *slog.Logger
	dropped atomic.Int64
	written atomic.Int64
	done    chan struct{}
	closing sync.Once
	// mu keeps Log from sending on a closed queue.
	mu     sync.RWMutex
	closed bool
}

var _ router.ImpressionLog = (*File)(nil)

// Open starts an impression log at o.Path.
func Open(o Options) (*File, error) {
	if o.Path == "" {
		return nil, errors.New("impressionlog: a path is required")
	}
	if o.MaxMB < 0 || o.Backups < 0 || o.Buffer < 0 {
		return nil, fmt.Errorf("impressionlog: max MB %d, backups %d and buffer %d must not be negative", o.MaxMB, o.Backups, o.Buffer)
	}
	if err := os.MkdirAll(filepath.Dir(o.Path), 0o755); err != nil {
		return nil, fmt.Errorf("impressionlog: %w", err)
	}
	f, err := os.OpenFile(o.Path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("impressionlog: %w", err)
	}
	f.Close() // lumberjack opens it itself; this only checks it can
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &File{
		queue: make(chan router.Impression, orDefault(o.Buffer, DefaultBuffer)),
		out:   &lumberjack.Logger{Filename: o.Path, MaxSize: orDefault(o.MaxMB, DefaultMaxMB), MaxBackups: orDefault(o.Backups, DefaultBackups)},
		log:   log,
		done:  make(chan struct{}),
	}
	go l.write()
	return l, nil
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// Log queues an impression; when the queue is full it is dropped and
// counted (Dropped).
func (l *File) Log(imp router.Impression) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		l.dropped.Add(1)
		return
	}
	select {
	case l.queue <- imp:
	default:
		l.dropped.Add(1)
	}
}

// Dropped returns how many impressions were dropped because the writer was
// behind or the log closed.
func (l *File) Dropped() int64 { return l.dropped.Load() }

// Written returns how many impressions were encoded and handed to the file
// (a write error after that is logged, not counted).
func (l *File) Written() int64 { return l.written.Load() }

// flushAt is the size of the buffered lines at which they are written.
const flushAt = 64 << 10

// write drains the queue until Close, writing whenever the queue is empty or
// the buffer full. Each write holds whole lines only, so a rotation (which
// lumberjack does between writes) never splits a line across files.
func (l *File) write() {
	defer close(l.done)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	failing := false
	flush := func() {
		if buf.Len() == 0 {
			return
		}
		_, err := l.out.Write(buf.Bytes())
		buf.Reset()
		if err != nil && !failing {
			l.log.Error("impression log: write failed; impressions are lost until it recovers", "err", err)
		}
		failing = err != nil
	}
	for imp := range l.queue {
		if err := enc.Encode(imp); err != nil {
			l.log.Error("impression log: encode", "err", err)
			continue
		}
		l.written.Add(1)
		if len(l.queue) == 0 || buf.Len() >= flushAt {
			flush()
		}
	}
	flush()
}

// Close writes what is queued and closes the file.
func (l *File) Close() error {
	l.closing.Do(func() {
		l.mu.Lock()
		l.closed = true
		close(l.queue)
		l.mu.Unlock()
	})
	<-l.done
	return l.out.Close()
}
