// Package impressionlog writes every answer's impression, and every tracked
// event attributed to one, as JSON lines to a file rotated by size: the
// append-only feed a data warehouse loads, and that `recctl eval
// --impressions` reads back (Read) to replay experiments offline.
// lumberjack rotates: FILE, then FILE's timestamped backups, the oldest
// removed beyond Options.Backups. Log and LogOutcome never block a request
// or a Track: lines queue in one bounded buffer (so they are written in the
// order they were logged) that a writer goroutine drains, and when the
// writer falls behind (a stalled disk) the newest are dropped and counted
// rather than slowing answers down.
//
// # Line formats
//
// Every line is one JSON object; its "kind" tells the two apart.
//
// An impression (router.Impression) has kind "recommend" or "similar":
//
//	{"recommendation_id":"0193…","time":"2026-12-01T10:00:00.123Z","kind":"recommend",
//	 "user_id":"u1","session_id":"s1","route":"main","arm":"homepage/b",
//	 "models":[{"name":"itemknn","version":"3"},{"name":"rnn","version":"7","canary":true}],
//	 "items":[{"item_id":"i9","position":1,"score":0.91,"sources":["itemknn","rnn"]}]}
//
// item_id (the query item of a "similar" answer), user_id, session_id,
// route, arm ("experiment/arm") and an item's sources are left out when
// empty, a model's canary when false.
//
// An outcome (store.Outcome: a tracked event attributed to an impression)
// has kind "outcome" and every field, always:
//
//	{"kind":"outcome","recommendation_id":"0193…","user_id":"u1","event_id":"e42",
//	 "item_id":"i9","event":"purchase","purchase":true,"position":1,"revenue":59.8,
//	 "time":"2026-12-01T10:03:00Z","by_id":true}
//
// recommendation_id is the impression the event is attributed to; event the
// event's type as tracked; purchase marks a conversion, whose revenue is
// price × quantity; position is the item's 1-based position in the answer (0
// when an event naming the answer is for an item it did not show); by_id
// tells an event that named the recommendation_id from one matched by the
// attribution window. An outcome line follows its impression's line in the
// same log, unless the impression was answered by another replica (each
// writes its own log: read them together) or fell out of the log's
// retention.
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
	"time"

	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/recserve/recserve/serving/router"
	"github.com/recserve/recserve/serving/store"
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
	// Buffer is how many lines (impressions and outcomes) may wait for the
	// writer (0: DefaultBuffer).
	Buffer int
	// Logger receives write errors (once per error streak); nil discards.
	Logger *slog.Logger
}

// File is an impression log. It implements router.ImpressionLog and, with
// LogOutcome, the serving core's outcome log, so one file holds the answers
// and what followed from them. It is safe for concurrent use.
type File struct {
	queue   chan entry
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
		queue: make(chan entry, orDefault(o.Buffer, DefaultBuffer)),
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

// entry is one queued line: an impression, or an outcome when out is set.
type entry struct {
	imp router.Impression
	out *outcomeLine
}

// outcomeLine is the JSON line of an outcome (see the package doc).
type outcomeLine struct {
	Kind         string    `json:"kind"`
	ImpressionID string    `json:"recommendation_id"`
	UserID       string    `json:"user_id"`
	EventID      string    `json:"event_id"`
	ItemID       string    `json:"item_id"`
	Event        string    `json:"event"`
	Purchase     bool      `json:"purchase"`
	Position     int       `json:"position"`
	Revenue      float64   `json:"revenue"`
	Time         time.Time `json:"time"`
	ByID         bool      `json:"by_id"`
}

// kindOutcome is the kind of an outcome line.
const kindOutcome = "outcome"

func newOutcomeLine(o *store.Outcome) *outcomeLine {
	return &outcomeLine{
		Kind: kindOutcome, ImpressionID: o.ImpressionID, UserID: o.UserID, EventID: o.EventID, ItemID: o.ItemID,
		Event: o.Type, Purchase: o.Purchase, Position: o.Position, Revenue: o.Revenue, Time: o.Time, ByID: o.ByID,
	}
}

func (ol *outcomeLine) outcome() store.Outcome {
	return store.Outcome{
		ImpressionID: ol.ImpressionID, UserID: ol.UserID, EventID: ol.EventID, ItemID: ol.ItemID,
		Type: ol.Event, Purchase: ol.Purchase, Position: ol.Position, Revenue: ol.Revenue, Time: ol.Time, ByID: ol.ByID,
	}
}

// Log queues an impression; when the queue is full it is dropped and
// counted (Dropped).
func (l *File) Log(imp router.Impression) { l.enqueue(entry{imp: imp}) }

// LogOutcome queues an attributed outcome as an "outcome" line, behind the
// lines logged before it; like Log it never blocks, and when the queue is
// full the outcome is dropped and counted (Dropped). The serving core calls
// it for every event it attributes (serving.OutcomeLog).
func (l *File) LogOutcome(o store.Outcome) { l.enqueue(entry{out: newOutcomeLine(&o)}) }

func (l *File) enqueue(e entry) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		l.dropped.Add(1)
		return
	}
	select {
	case l.queue <- e:
	default:
		l.dropped.Add(1)
	}
}

// Dropped returns how many lines (impressions and outcomes) were dropped
// because the writer was behind or the log closed.
func (l *File) Dropped() int64 { return l.dropped.Load() }

// Written returns how many lines (impressions and outcomes) were encoded
// and handed to the file (a write error after that is logged, not counted).
func (l *File) Written() int64 { return l.written.Load() }

// flushAfter bounds how long a line waits in the buffer: what a crash of
// the process may lose of the log.
const flushAfter = 100 * time.Millisecond

// flushAt is the size of the buffered lines at which they are written.
const flushAt = 64 << 10

// write drains the queue until Close, writing when the buffer is full or
// its oldest line has waited flushAfter. Each write holds whole lines only, so a rotation (which
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
	// Lines are buffered and written at flushAt bytes or flushAfter after
	// the first unwritten one, not per line: a write system call per
	// answer cost more than encoding it (PERFORMANCE.md).
	linger := time.NewTimer(flushAfter)
	linger.Stop()
	armed := false
	for {
		select {
		case e, ok := <-l.queue:
			if !ok {
				linger.Stop()
				flush()
				return
			}
			var v any = &e.imp
			if e.out != nil {
				v = e.out
			}
			if err := enc.Encode(v); err != nil {
				l.log.Error("impression log: encode", "err", err)
				continue
			}
			l.written.Add(1)
			switch {
			case buf.Len() >= flushAt:
				flush()
			case !armed:
				linger.Reset(flushAfter)
				armed = true
			}
		case <-linger.C:
			armed = false
			flush()
		}
	}
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
