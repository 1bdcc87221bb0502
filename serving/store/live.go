package store

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/recserve/recserve/dataset"
)

// Live is a Memory kept in step with a durable Backend: writes go to the
// backend first and, once it has acknowledged them, into the indexes, so the
// next request on this server sees them. With a shared backend (a Follower)
// the writes of other replicas are applied as they arrive. It is safe for
// concurrent use.
type Live struct {
	*Memory
	backend  Backend
	types    EventTypes
	log      *slog.Logger
	observer Observer

	// impressions is the backend as an ImpressionStore (nil when it is
	// not one), written through writer; windows bound attribution.
	impressions ImpressionStore
	writer      *impressionWriter
	windows     Windows

	stop context.CancelFunc
	done chan struct{}
	// scanMu keeps Export's Scan and a resync's apart: a shared backend
	// may take the position of the last Scan during a resync as where to
	// follow from, which must be the resync's own.
	scanMu sync.Mutex
}

// LiveOptions configures OpenLive.
type LiveOptions struct {
	// Types are the event types accepted; nil means DefaultEventTypes.
	Types EventTypes
	// Seed is the data set a backend that was never seeded is filled from,
	// once (nil: start empty).
	Seed *dataset.Dataset
	// Logger receives seeding and replication logs; nil discards them.
	Logger *slog.Logger
	// Observer, when set, hears every change after the indexes applied it,
	// this replica's and (with a shared backend) the others'. If it is also
	// an AttributionObserver it hears this replica's attributions.
	Observer Observer
	// Windows are the attribution windows (zero fields: the defaults).
	Windows Windows
	// ImpressionQueue is how many impressions may wait to be written
	// (0: DefaultImpressionQueue).
	ImpressionQueue int
	// NoImpressions keeps no impressions even when the backend can (no
	// attribution, no reports), to measure what keeping them costs.
	NoImpressions bool
}

// AttributionObserver hears the outcomes Track attributed, with the
// impressions they were attributed to (counters per route, arm and model
// version).
type AttributionObserver interface {
	Attributed(outs []Outcome, imps []*Impression)
}

// Observer hears what the live store applied, after it applied it: models
// that learn online (popularity counters, the content model's new items)
// follow the shop through it. Calls are serialised per kind of change
// only as far as the writes are; implementations must be safe for
// concurrent use.
type Observer interface {
	// Interactions entered histories.
	Interactions(in []dataset.Interaction)
	// Items were upserted, and the ids in deleted removed, from the
	// catalogue.
	Items(upserted []dataset.Item, deleted []string)
}

// seedChunk is how many rows one seeding write carries.
const seedChunk = 5000

// OpenLive seeds b from o.Seed if it was never seeded, reads the whole state
// into memory and, for a shared backend, starts following the other
// replicas' writes. Close stops following; it does not close b.
func OpenLive(ctx context.Context, b Backend, o LiveOptions) (*Live, error) {
	types := o.Types
	if types == nil {
		types = DefaultEventTypes()
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	seeded, err := b.Seeded(ctx)
	if err != nil {
		return nil, fmt.Errorf("state store: %w", err)
	}
	if !seeded && o.Seed != nil {
		start := time.Now()
		if err := Seed(ctx, b, o.Seed); err != nil {
			return nil, err
		}
		log.Info("state store seeded from the data set", "items", len(o.Seed.Items), "events", len(o.Seed.Interactions), "dur", time.Since(start))
	}
	start := time.Now()
	m, err := load(ctx, b, types)
	if err != nil {
		return nil, err
	}
	l := &Live{Memory: m, backend: b, types: types, log: log, observer: o.Observer, windows: o.Windows}
	def := DefaultWindows()
	if l.windows.Click <= 0 {
		l.windows.Click = def.Click
	}
	if l.windows.Purchase <= 0 {
		l.windows.Purchase = def.Purchase
	}
	if is, ok := b.(ImpressionStore); ok && !o.NoImpressions {
		l.impressions = is
		l.writer = newImpressionWriter(is, log, o.ImpressionQueue)
	}
	log.Info("state store loaded", "users", l.Users(), "items", len(l.ItemIDs()), "events", l.Events(), "dur", time.Since(start))
	if f, ok := b.(Follower); ok {
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		l.stop, l.done = cancel, make(chan struct{})
		go l.follow(fctx, f)
	}
	return l, nil
}

// load indexes a backend's whole state straight from its Scan.
func load(ctx context.Context, b Backend, types EventTypes) (*Memory, error) {
	bld := newBuilder()
	negatives, err := scan(ctx, b, types, bld.item, bld.interaction)
	if err != nil {
		return nil, err
	}
	m := bld.finish()
	m.Apply(types, negatives)
	return m, nil
}

// scan reads a backend's whole state: items, then the interactions its
// events stand for; the negative events, which are no interactions, are
// returned apart.
func scan(ctx context.Context, b Backend, types EventTypes, item func(dataset.Item), interaction func(dataset.Interaction)) ([]Event, error) {
	var negatives []Event
	err := b.Scan(ctx, func(it dataset.Item) error {
		item(it)
		return nil
	}, func(e Event) error {
		if et, ok := types[e.Type]; ok && et.Negative {
			negatives = append(negatives, e)
		} else if in, ok := types.Interaction(e); ok {
			interaction(in)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read state store: %w", err)
	}
	return negatives, nil
}

// Seed writes a data set into b (items, then every interaction with the
// stable id SeedEventID, so a seed interrupted and run again stores each row
// once) and marks b seeded.
func Seed(ctx context.Context, b Backend, d *dataset.Dataset) error {
	for lo := 0; lo < len(d.Items); lo += seedChunk {
		if err := b.UpsertItems(ctx, d.Items[lo:min(lo+seedChunk, len(d.Items))]); err != nil {
			return fmt.Errorf("seed items: %w", err)
		}
	}
	batch := make([]Event, 0, seedChunk)
	for lo := 0; lo < len(d.Interactions); lo += seedChunk {
		batch = batch[:0]
		for i, in := range d.Interactions[lo:min(lo+seedChunk, len(d.Interactions))] {
			batch = append(batch, FromInteraction(in, SeedEventID(lo+i)))
		}
		if _, err := b.Append(ctx, batch); err != nil {
			return fmt.Errorf("seed events: %w", err)
		}
	}
	if err := b.MarkSeeded(ctx); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	return nil
}

// Read reads a backend's whole state as a data set (negative events, which
// have no place in one, are returned apart). Items known only from events
// are not added to the catalogue here; New adds them.
func Read(ctx context.Context, b Backend, types EventTypes) (*dataset.Dataset, []Event, error) {
	d := &dataset.Dataset{}
	negatives, err := scan(ctx, b, types,
		func(it dataset.Item) { d.Items = append(d.Items, it) },
		func(in dataset.Interaction) { d.Interactions = append(d.Interactions, in) })
	if err != nil {
		return nil, nil, err
	}
	return d, negatives, nil
}

// Types returns the event types the store accepts.
func (l *Live) Types() EventTypes { return l.types }

// Track stores events durably and indexes them. It returns how many were
// new (a retry of a stored event ID is acknowledged but stored once).
func (l *Live) Track(ctx context.Context, events []Event) (int, error) {
	stored, err := l.backend.Append(ctx, events)
	if err != nil {
		return 0, err
	}
	l.apply(stored)
	l.attribute(ctx, stored)
	return len(stored), nil
}

// apply indexes stored events and tells the observer.
func (l *Live) apply(events []Event) {
	in := l.Apply(l.types, events)
	if l.observer != nil && len(in) > 0 {
		l.observer.Interactions(in)
	}
}

// UpsertItems stores catalogue items and indexes them.
func (l *Live) UpsertItems(ctx context.Context, items []dataset.Item) error {
	if err := l.backend.UpsertItems(ctx, items); err != nil {
		return err
	}
	l.Memory.UpsertItems(items)
	if l.observer != nil {
		l.observer.Items(items, nil)
	}
	return nil
}

// DeleteItems removes catalogue items and returns how many existed.
func (l *Live) DeleteItems(ctx context.Context, ids []string) (int, error) {
	n, err := l.backend.DeleteItems(ctx, ids)
	if err != nil {
		return 0, err
	}
	l.Memory.DeleteItems(ids)
	if l.observer != nil {
		l.observer.Items(nil, ids)
	}
	return n, nil
}

// DeleteUser removes a user from the backend and the indexes and returns
// the number of events removed.
func (l *Live) DeleteUser(ctx context.Context, userID string) (int, error) {
	if l.writer != nil {
		// An impression of the user still queued would be written after
		// the deletion.
		if err := l.writer.flush(ctx); err != nil {
			return 0, err
		}
	}
	n, err := l.backend.DeleteUser(ctx, userID)
	if err != nil {
		return 0, err
	}
	l.Memory.DeleteUser(userID)
	return n, nil
}

// UserEvents returns up to limit of the user's most recent events, newest
// first, and how many the backend holds.
func (l *Live) UserEvents(ctx context.Context, userID string, limit int) ([]Event, int, error) {
	return l.backend.UserEvents(ctx, userID, limit)
}

// Export reads the backend's whole state (Backend.Scan): the catalogue, then
// every event, each user's oldest first. It reads the backend, not the
// indexes, so negative and custom events come out as they were tracked.
func (l *Live) Export(ctx context.Context, item func(dataset.Item) error, event func(Event) error) error {
	l.scanMu.Lock()
	defer l.scanMu.Unlock()
	return l.backend.Scan(ctx, item, event)
}

// follow applies other replicas' changes until ctx ends, restarting Follow
// after an error with a capped backoff.
func (l *Live) follow(ctx context.Context, f Follower) {
	defer close(l.done)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := f.Follow(ctx, l.applyChange(ctx))
		if ctx.Err() != nil {
			return
		}
		l.log.Warn("state store: following other replicas failed; retrying", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (l *Live) applyChange(ctx context.Context) func(Change) {
	return func(c Change) {
		if c.Resync {
			l.resync(ctx)
		}
		if len(c.Items) > 0 {
			l.Memory.UpsertItems(c.Items)
		}
		if len(c.DeletedItems) > 0 {
			l.Memory.DeleteItems(c.DeletedItems)
		}
		if l.observer != nil && len(c.Items)+len(c.DeletedItems) > 0 {
			l.observer.Items(c.Items, c.DeletedItems)
		}
		if c.DeletedUser != "" {
			l.Memory.DeleteUser(c.DeletedUser)
		}
		if len(c.Events) > 0 {
			l.apply(c.Events)
		}
	}
}

// resync reloads the whole state after the follower fell behind the
// backend's change log.
func (l *Live) resync(ctx context.Context) {
	start := time.Now()
	l.scanMu.Lock()
	n, err := load(ctx, l.backend, l.types)
	l.scanMu.Unlock()
	if err != nil {
		l.log.Error("state store: resync failed; serving the state held", "err", err)
		return
	}
	l.replace(n)
	l.log.Warn("state store: resynced after falling behind the change log", "events", n.events, "dur", time.Since(start))
}

// replace swaps in the state of n.
func (m *Memory) replace(n *Memory) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.users, m.events, m.audience = n.users, n.events, n.audience
	m.cat.Store(n.cat.Load())
	m.sorted.invalidate()
}

// Close stops following other replicas. The backend stays open: its owner
// closes it.
func (l *Live) Close() error {
	if l.stop != nil {
		l.stop()
		<-l.done
	}
	if l.writer != nil {
		l.writer.close()
	}
	return nil
}
