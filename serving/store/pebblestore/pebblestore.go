// Package pebblestore is the embedded store.Backend: the event log, the
// catalogue, the idempotency keys and the impressions with their
// attributed outcomes (store.ImpressionStore) in a Pebble database in one
// directory, for a server that runs as a single replica and needs no
// service beside it.
//
// # Durability and atomicity
//
// Every write (Append, UpsertItems, DeleteItems, DeleteUser, MarkSeeded,
// AppendOutcomes) is one pebble.Batch committed with pebble.Sync: it is
// applied whole or not at all, and once the call returns it is in the
// synced write-ahead log and survives a crash of the process or the
// machine. Writes of the event log and catalogue are serialised by one
// mutex, which makes the idempotency check and the write one step; a batch
// costs one fsync whatever its size, so callers batch. A read failing half
// way through building a batch (the idempotency lookups read tables)
// abandons the batch uncommitted: nothing is stored.
//
// AppendImpressions is the exception: its batch is committed with
// pebble.NoSync. An impression is written for every answer the server
// gives, on the request path, and an fsync there would cost each answer
// about a millisecond and the disk a write per answer; an impression lost
// in a crash only costs the attribution of the few events that would have
// named it, and no caller was promised it (store.ImpressionStore says
// so). The batch is still atomic and goes to the write-ahead log, which is
// synced by the next synced write (any Append) or Pebble's own flushes.
// Outcomes are synced like events, because they are derived from
// acknowledged events and report revenue; concurrent AppendOutcomes calls
// share fsyncs through Pebble's commit pipeline, and take no mutex.
//
// # Key layout
//
// Every key starts with one byte naming its kind. IDs are arbitrary bytes:
// where an ID is followed by more key, it is length-prefixed, so no
// separator byte is reserved and no ID can be mistaken for another.
//
//	i <item id>                               → item record (with its ID)
//	u <uvarint len(user)> <user> <seq: 8 bytes big-endian> → event record (no user)
//	d <event id>                              → the event's u key
//	m seeded                                  → empty: seeding finished
//	m seq                                     → last sequence assigned, 8 bytes big-endian
//	p <uvarint len(user)> <user> <time: 8 bytes> <impression id> → impression record (no user)
//	o <uvarint len(user)> <user> <time: 8 bytes> <outcome record> → empty
//
// time is the impression's (or the outcome's event's) Unix nanoseconds,
// clamped to an int64 (years 1678 to 2262), with the sign bit flipped and
// written big-endian, so a user's impressions and outcomes sort by time
// under their prefix: UserImpressions reads one user's p range backwards
// from the end to since, ScanImpressions seeks each user's p range to the
// start of the scanned interval and then reads that user's o range, and
// the retention sweep deletes the old part of each user's range with one
// range deletion. The outcome's record (store.AppendOutcome, without the
// user) is the last part of its key rather than its value, so an outcome
// stored twice is one key: a retried AppendOutcomes counts nothing twice,
// as Redis's sorted sets of records behave.
//
// seq is global and grows by one per stored event, so a user's events sort
// in arrival order under their prefix, and Scan reads items then events,
// users grouped, by walking the key space once. The last sequence is
// written in every Append batch and read back at Open. A value is exactly
// one record of the store package's binary codec (store.AppendEvent,
// store.AppendItem), which Redis shares; an item record repeats the ID of
// its key, and reading checks the two agree. An event record starts with
// the event ID, which DeleteUser reads alone (store.DecodeEventID) to find
// the d keys to delete.
//
// # Retention
//
// Impressions and outcomes older than Options.ImpressionRetention (default
// store.DefaultImpressionRetention) are never returned: every read starts
// at the retention's cutoff. They are removed by a sweep that Open runs
// before it returns and a background goroutine repeats hourly until Close:
// for each user whose p or o range starts before the cutoff, one range
// deletion of that part, committed without sync (a sweep lost in a crash
// is run again). The sweep reads one key per user, not every impression.
//
// # Deleting a user
//
// DeleteUser deletes the user's u range with one range deletion and the d
// key of each of the user's events, and the user's p and o ranges, in one
// synced batch. From then on no
// read sees anything of the user, but deletions only hide the bytes: they
// leave the table files when compactions rewrite the files that hold
// them, which Pebble does in the background and a full compaction
// (DB.Compact over the whole key space) forces. Two other files keep them
// longer: write-ahead log segments (until deleted or recycled and
// overwritten) and the MANIFEST, which records each table's first and last
// key, until Pebble rotates it.
//
// # Concurrency
//
// A Store is safe for concurrent use. Reads run in parallel with each
// other and with writes. Close stops the retention sweep, waits for calls
// in progress, including a Scan or ScanImpressions and its callbacks, and
// every call after it fails with an error wrapping store.ErrUnavailable.
// Scan and ScanImpressions callbacks must not call the Store.
package pebblestore

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/serving/store"
)

// Options configure a Store.
type Options struct {
	// Logger receives Pebble's own messages (flushes, compactions, errors
	// it recovers from) at info and error level, and the store's failures
	// in the background (a retention sweep that failed), which no caller
	// would otherwise see. Nil discards them.
	Logger *slog.Logger
	// CacheSize is the block cache in bytes; 0 means DefaultCacheSize.
	// Pebble reserves the memtables' memory out of it, so it must be at
	// least 4 × MemTableSize; what remains caches table blocks, which the
	// idempotency lookup of every appended event reads (index and filter
	// blocks): ingest slows several times once they no longer stay cached.
	CacheSize int64
	// MemTableSize is the size in bytes of one memtable; 0 means
	// DefaultMemTableSize. Larger memtables mean fewer flushes and fewer
	// level-0 tables for each lookup to check.
	MemTableSize uint64
	// ImpressionRetention is how long impressions and outcomes are kept
	// (by their times); 0 or less means store.DefaultImpressionRetention.
	// It must exceed the longest attribution window: see
	// store.DefaultImpressionRetention.
	ImpressionRetention time.Duration

	// sweepInterval is how often the background sweep removes impressions
	// and outcomes past the retention; 0 means defaultSweepInterval. Tests
	// shorten it.
	sweepInterval time.Duration
	// sweepBatchBytes is the batch size at which a sweep commits and
	// starts another batch; 0 means defaultSweepBatchBytes. Tests shrink
	// it, to sweep in several batches without a large store.
	sweepBatchBytes int
}

// defaultSweepInterval is how often the retention sweep runs: expired
// impressions are already hidden from reads, so the sweep only bounds the
// disk they take, and an hour's worth is small against thirty days.
const defaultSweepInterval = time.Hour

// Defaults for Options, chosen with BenchmarkAppend. With Pebble's own
// (8 MiB cache, 4 MiB memtables) the memtables' reservation leaves the
// block cache nearly empty, and ingest into a store of a million events
// falls from about 85,000 events/s to about 38,000 (2 shared cores).
const (
	DefaultCacheSize    = 128 << 20
	DefaultMemTableSize = 32 << 20
)

// Store is a store.Backend on a Pebble database. It is safe for concurrent
// use; see the package doc for the lock order.
type Store struct {
	// mu guards db, which is nil once closed. Every call holds it shared
	// for its duration, Close holds it exclusively. Lock order: mu, then
	// writeMu.
	mu sync.RWMutex
	db *pebble.DB

	// writeMu serialises writes, so an idempotency check and the batch it
	// decides are one step, and guards the fields below.
	writeMu sync.Mutex
	// seq is the last sequence assigned to an event.
	seq uint64
	// buf, dbuf and seen are scratch space reused by every write.
	buf, dbuf []byte
	seen      map[string]struct{}

	// retention is Options.ImpressionRetention with its default,
	// sweepBatchBytes Options.sweepBatchBytes with its.
	retention       time.Duration
	sweepBatchBytes int
	// log receives the background sweep's failures.
	log *slog.Logger
	// stopSweep ends the background sweep, which closes sweepDone when it
	// has returned.
	stopSweep context.CancelFunc
	sweepDone chan struct{}
}

var (
	_ store.Backend         = (*Store)(nil)
	_ store.ImpressionStore = (*Store)(nil)
)

// Open opens the store in dir, creating it if needed. Only one Store may
// have a directory open at a time; Pebble's lock file enforces it.
func Open(dir string, opts Options) (*Store, error) {
	return open(dir, opts, nil)
}

// open is Open with tune, if not nil, applied to Pebble's options last, so
// tests can inject I/O failures.
func open(dir string, opts Options, tune func(*pebble.Options)) (*Store, error) {
	po := &pebble.Options{
		Logger:       newLogger(opts.Logger),
		CacheSize:    cmp.Or(opts.CacheSize, DefaultCacheSize),
		MemTableSize: cmp.Or(opts.MemTableSize, DefaultMemTableSize),
	}
	if po.CacheSize < 0 || uint64(po.CacheSize) < 4*po.MemTableSize {
		return nil, fmt.Errorf("pebblestore: open %s: CacheSize %d is less than 4 × MemTableSize %d", dir, po.CacheSize, po.MemTableSize)
	}
	// Every stored event is preceded by a lookup of its idempotency key,
	// almost always a miss: a bloom filter answers a miss from the filter
	// block, kept in the block cache, without reading the table's index
	// and data blocks.
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	if tune != nil {
		tune(po)
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("pebblestore: open %s: %w: %w", dir, store.ErrUnavailable, err)
	}
	s := &Store{
		db:              db,
		seen:            map[string]struct{}{},
		retention:       opts.ImpressionRetention,
		sweepBatchBytes: cmp.Or(opts.sweepBatchBytes, defaultSweepBatchBytes),
		log:             opts.Logger,
	}
	if s.retention <= 0 {
		s.retention = store.DefaultImpressionRetention
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "pebblestore")
	v, ok, err := get(db, []byte(keySeq))
	if err == nil && ok && len(v) != seqLen {
		err = fmt.Errorf("%w: sequence of %d bytes", store.ErrCorrupt, len(v))
	}
	if err != nil {
		_ = db.Close()
		return nil, unavailable("open "+dir+": read sequence", err)
	}
	if ok {
		s.seq = binary.BigEndian.Uint64(v)
	}
	// Sweep before serving: a store closed for long holds impressions that
	// expired meanwhile.
	if err := s.sweep(context.Background(), db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("pebblestore: open %s: %w", dir, err)
	}
	ctx, stop := context.WithCancel(context.Background())
	s.stopSweep, s.sweepDone = stop, make(chan struct{})
	go s.sweepLoop(ctx, cmp.Or(opts.sweepInterval, defaultSweepInterval))
	return s, nil
}

// errClosed is what every call on a closed Store returns, wrapped with the
// call's name.
var errClosed = fmt.Errorf("store closed: %w", store.ErrUnavailable)

// acquire takes mu shared and returns the database, or an error if the
// store is closed or ctx has ended; on success the caller releases mu.
func (s *Store) acquire(ctx context.Context, op string) (*pebble.DB, error) {
	s.mu.RLock()
	if s.db == nil {
		s.mu.RUnlock()
		return nil, fmt.Errorf("pebblestore: %s: %w", op, errClosed)
	}
	if err := ctx.Err(); err != nil {
		s.mu.RUnlock()
		return nil, fmt.Errorf("pebblestore: %s: %w", op, err)
	}
	return s.db, nil
}

// unavailable wraps an error of Pebble's, which is an I/O failure or a
// damaged database, as store.ErrUnavailable.
func unavailable(op string, err error) error {
	return fmt.Errorf("pebblestore: %s: %w: %w", op, store.ErrUnavailable, err)
}

// get returns a copy of the value at key and whether it exists.
func get(db *pebble.DB, key []byte) ([]byte, bool, error) {
	v, closer, err := db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	out := append([]byte(nil), v...)
	return out, true, closer.Close()
}

// has reports whether key exists, without copying its value.
func has(db *pebble.DB, key []byte) (bool, error) {
	_, closer, err := db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, closer.Close()
}

// commit commits b synced and closes it.
func commit(op string, b *pebble.Batch) error {
	defer b.Close()
	if err := b.Commit(pebble.Sync); err != nil {
		return unavailable(op, err)
	}
	return nil
}

// lockWrite takes mu shared and writeMu for a write and checks that the
// caller did not give up while waiting; unlock releases both (Append
// releases writeMu alone before its fsync, then mu).
func (s *Store) lockWrite(ctx context.Context, op string) (*pebble.DB, func(), error) {
	db, err := s.acquire(ctx, op)
	if err != nil {
		return nil, nil, err
	}
	s.writeMu.Lock()
	if err := ctx.Err(); err != nil {
		s.writeMu.Unlock()
		s.mu.RUnlock()
		return nil, nil, fmt.Errorf("pebblestore: %s: %w", op, err)
	}
	return db, func() { s.writeMu.Unlock(); s.mu.RUnlock() }, nil
}

// Append implements store.Backend. It gives each stored event the next
// sequence and writes the events, their idempotency keys and the last
// sequence in one synced batch. The events it returns are the elements of
// the argument it stored (copied by value; Context maps are shared).
func (s *Store) Append(ctx context.Context, events []store.Event) ([]store.Event, error) {
	// Both locks by hand here: writeMu is released before the fsync, mu
	// (which keeps Close away) after it.
	db, _, err := s.lockWrite(ctx, "append")
	if err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	stored, b, err := s.appendLocked(db, events)
	s.writeMu.Unlock()
	if err != nil || b == nil {
		return stored, err
	}
	// Group commit: the batch is in the memtable (so the next Append's
	// idempotency check sees it) and the WAL, and the fsync is waited for
	// outside writeMu, so concurrent Appends share fsyncs instead of
	// queueing one each. The WAL is ordered: a later batch's sync covers
	// every earlier one, so no Append acknowledges before the events it
	// skipped as duplicates are durable.
	defer b.Close()
	if err := b.SyncWait(); err != nil {
		return nil, unavailable("append", err)
	}
	return stored, nil
}

// appendLocked is Append with s.writeMu held: it applies the batch without
// waiting for its fsync and returns it (nil when nothing was new) for the
// caller to SyncWait and Close.
func (s *Store) appendLocked(db *pebble.DB, events []store.Event) ([]store.Event, *pebble.Batch, error) {
	clear(s.seen)
	b := db.NewBatch()
	stored := make([]store.Event, 0, len(events))
	seq := s.seq
	for i := range events {
		e := &events[i]
		if e.ID != "" {
			if _, dup := s.seen[e.ID]; dup {
				continue
			}
			s.dbuf = dedupKey(s.dbuf[:0], e.ID)
			held, err := has(db, s.dbuf)
			if err != nil {
				b.Close()
				return nil, nil, unavailable("append: check event id", err)
			}
			if held {
				continue
			}
			s.seen[e.ID] = struct{}{}
		}
		seq++
		// One buffer holds the event key, then the value after it; the
		// batch copies both.
		s.buf = eventKey(s.buf[:0], e.UserID, seq)
		k := len(s.buf)
		s.buf = store.AppendEvent(s.buf, e)
		err := b.Set(s.buf[:k], s.buf[k:], nil)
		if err == nil && e.ID != "" {
			err = b.Set(s.dbuf, s.buf[:k], nil)
		}
		if err != nil {
			b.Close()
			return nil, nil, unavailable("append", err)
		}
		stored = append(stored, *e)
	}
	if len(stored) == 0 {
		b.Close()
		return stored, nil, nil
	}
	var seqBuf [seqLen]byte
	binary.BigEndian.PutUint64(seqBuf[:], seq)
	if err := b.Set([]byte(keySeq), seqBuf[:], nil); err != nil {
		b.Close()
		return nil, nil, unavailable("append", err)
	}
	// ApplyNoSyncWait is marked experimental in Pebble (CockroachDB's
	// group commit uses it); it is Commit(pebble.Sync) split in two.
	if err := db.ApplyNoSyncWait(b, pebble.Sync); err != nil {
		b.Close()
		return nil, nil, unavailable("append", err)
	}
	s.seq = seq
	return stored, b, nil
}

// UpsertItems implements store.Backend: each item's value is replaced
// whole, in one synced batch.
func (s *Store) UpsertItems(ctx context.Context, items []dataset.Item) error {
	db, unlock, err := s.lockWrite(ctx, "upsert items")
	if err != nil {
		return err
	}
	defer unlock()
	b := db.NewBatch()
	for i := range items {
		s.buf = itemKey(s.buf[:0], items[i].ID)
		k := len(s.buf)
		s.buf = store.AppendItem(s.buf, &items[i])
		if err := b.Set(s.buf[:k], s.buf[k:], nil); err != nil {
			b.Close()
			return unavailable("upsert items", err)
		}
	}
	return commit("upsert items", b)
}

// DeleteItems implements store.Backend. Writes are serialised, so the count
// is exact: no upsert lands between the check and the deletion.
func (s *Store) DeleteItems(ctx context.Context, ids []string) (int, error) {
	db, unlock, err := s.lockWrite(ctx, "delete items")
	if err != nil {
		return 0, err
	}
	defer unlock()
	clear(s.seen)
	b := db.NewBatch()
	n := 0
	for _, id := range ids {
		if _, dup := s.seen[id]; dup {
			continue
		}
		s.seen[id] = struct{}{}
		s.buf = itemKey(s.buf[:0], id)
		ok, err := has(db, s.buf)
		if err == nil && ok {
			n++
			err = b.Delete(s.buf, nil)
		}
		if err != nil {
			b.Close()
			return 0, unavailable("delete items", err)
		}
	}
	if n == 0 {
		b.Close()
		return 0, nil
	}
	if err := commit("delete items", b); err != nil {
		return 0, err
	}
	return n, nil
}

// DeleteUser implements store.Backend: one range deletion of the user's
// events, a deletion of each one's idempotency key, and range deletions
// of the user's impressions and outcomes, in one synced batch. See the
// package doc for when the bytes leave the disk.
func (s *Store) DeleteUser(ctx context.Context, userID string) (int, error) {
	db, unlock, err := s.lockWrite(ctx, "delete user")
	if err != nil {
		return 0, err
	}
	defer unlock()
	lower := userPrefix(nil, userID)
	upper := prefixEnd(lower)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return 0, unavailable("delete user", err)
	}
	b := db.NewBatch()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			err = unavailable("delete user", err)
		} else if id, derr := store.DecodeEventID(v); derr != nil {
			err = fmt.Errorf("pebblestore: delete user: event at %q: %w", it.Key(), derr)
		} else if id != "" {
			if derr := b.Delete(dedupKey(s.buf[:0], id), nil); derr != nil {
				err = unavailable("delete user", derr)
			}
		}
		if err != nil {
			it.Close()
			b.Close()
			return 0, err
		}
		n++
	}
	if err := it.Close(); err != nil {
		b.Close()
		return 0, unavailable("delete user", err)
	}
	if n > 0 {
		err = b.DeleteRange(lower, upper, nil)
	}
	// The impression and outcome ranges are deleted only when they hold
	// keys, so deleting an unknown user writes nothing.
	for _, kind := range []byte{prefixImpression, prefixOutcome} {
		if err != nil {
			break
		}
		lo := userSpace(nil, kind, userID)
		hi := prefixEnd(lo)
		var held bool
		if held, err = anyKey(db, lo, hi); err == nil && held {
			err = b.DeleteRange(lo, hi, nil)
		}
	}
	if err != nil {
		b.Close()
		return 0, unavailable("delete user", err)
	}
	if b.Empty() {
		b.Close()
		return 0, nil
	}
	if err := commit("delete user", b); err != nil {
		return 0, err
	}
	return n, nil
}

// anyKey reports whether db holds a key in [lower, upper).
func anyKey(db *pebble.DB, lower, upper []byte) (bool, error) {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return false, err
	}
	found := it.First()
	if err := it.Close(); err != nil {
		return false, err
	}
	return found, nil
}

// UserEvents implements store.Backend by iterating the user's prefix
// backwards. Counting the total reads every key of the user, so it costs
// in proportion to the user's history, not to limit.
func (s *Store) UserEvents(ctx context.Context, userID string, limit int) ([]store.Event, int, error) {
	db, err := s.acquire(ctx, "user events")
	if err != nil {
		return nil, 0, err
	}
	defer s.mu.RUnlock()
	lower := userPrefix(nil, userID)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
	if err != nil {
		return nil, 0, unavailable("user events", err)
	}
	defer it.Close()
	var out []store.Event
	total := 0
	for ok := it.Last(); ok; ok = it.Prev() {
		if total < limit {
			v, err := it.ValueAndErr()
			if err != nil {
				return nil, 0, unavailable("user events", err)
			}
			e, err := eventValue(userID, v)
			if err != nil {
				return nil, 0, fmt.Errorf("pebblestore: user events: event at %q: %w", it.Key(), err)
			}
			out = append(out, e)
		}
		total++
	}
	if err := it.Error(); err != nil {
		return nil, 0, unavailable("user events", err)
	}
	return out, total, nil
}

// scanCheckEvery is how many keys Scan reads between checks of its
// context.
const scanCheckEvery = 256

// Scan implements store.Backend: it walks the item keys, then the event
// keys, from one consistent view of the database. It stops at the first
// callback error or when ctx ends, and returns that error.
func (s *Store) Scan(ctx context.Context, item func(dataset.Item) error, event func(store.Event) error) error {
	db, err := s.acquire(ctx, "scan")
	if err != nil {
		return err
	}
	defer s.mu.RUnlock()
	snap := db.NewSnapshot()
	defer snap.Close()
	n := 0
	walk := func(prefix byte, visit func(k, v []byte) error) error {
		it, err := snap.NewIter(&pebble.IterOptions{LowerBound: []byte{prefix}, UpperBound: []byte{prefix + 1}})
		if err != nil {
			return unavailable("scan", err)
		}
		defer it.Close()
		for ok := it.First(); ok; ok = it.Next() {
			if n++; n%scanCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					return fmt.Errorf("pebblestore: scan: %w", err)
				}
			}
			v, err := it.ValueAndErr()
			if err != nil {
				return unavailable("scan", err)
			}
			if err := visit(it.Key(), v); err != nil {
				return err
			}
		}
		if err := it.Error(); err != nil {
			return unavailable("scan", err)
		}
		return nil
	}
	err = walk(prefixItem, func(k, v []byte) error {
		it, err := itemValue(k, v)
		if err != nil {
			return fmt.Errorf("pebblestore: scan: item at %q: %w", k, err)
		}
		return item(it)
	})
	if err != nil {
		return err
	}
	return walk(prefixUser, func(k, v []byte) error {
		user, _, err := parseEventKey(k)
		if err != nil {
			return fmt.Errorf("pebblestore: scan: %w", err)
		}
		e, err := eventValue(user, v)
		if err != nil {
			return fmt.Errorf("pebblestore: scan: event at %q: %w", k, err)
		}
		return event(e)
	})
}

// Seeded implements store.Backend.
func (s *Store) Seeded(ctx context.Context) (bool, error) {
	db, err := s.acquire(ctx, "seeded")
	if err != nil {
		return false, err
	}
	defer s.mu.RUnlock()
	ok, err := has(db, []byte(keySeeded))
	if err != nil {
		return false, unavailable("seeded", err)
	}
	return ok, nil
}

// MarkSeeded implements store.Backend with a synced write, so a crash
// after it returns does not seed the store a second time.
func (s *Store) MarkSeeded(ctx context.Context) error {
	db, err := s.acquire(ctx, "mark seeded")
	if err != nil {
		return err
	}
	defer s.mu.RUnlock()
	if err := db.Set([]byte(keySeeded), nil, pebble.Sync); err != nil {
		return unavailable("mark seeded", err)
	}
	return nil
}

// Close stops the retention sweep, waits for calls in progress and closes
// the database. Later calls fail with store.ErrUnavailable; a later Close
// does nothing and returns nil.
func (s *Store) Close() error {
	// The sweep holds mu shared while it runs: stop it first, so Close
	// waits for a sweep's next context check, not for the whole sweep.
	s.stopSweep()
	<-s.sweepDone
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	if err != nil {
		return unavailable("close", err)
	}
	return nil
}
