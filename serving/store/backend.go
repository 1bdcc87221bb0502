package store

import (
	"context"
	"errors"

	"github.com/recserve/recserve/dataset"
)

// ErrUnavailable marks a backend that cannot be reached (Redis down, disk
// failing). Backends wrap it so the server answers Unavailable.
var ErrUnavailable = errors.New("state store unavailable")

// Backend is the durable state behind the live indexes: the event log, the
// catalogue and the idempotency keys. Pebble (embedded) and Redis (shared by
// replicas) implement it, and both pass the conformance suite in
// serving/store/storetest. Implementations are safe for concurrent use.
type Backend interface {
	// Append stores events atomically, all or none, and durably (an
	// acknowledged event survives a crash of the process). An event whose
	// ID the backend already holds is skipped, as is a repeat of an ID
	// within the batch; Append returns the events it stored, in order, which
	// the caller applies to its indexes.
	Append(ctx context.Context, events []Event) ([]Event, error)
	// UpsertItems stores whole catalogue items, replacing any with the same
	// ID.
	UpsertItems(ctx context.Context, items []dataset.Item) error
	// DeleteItems removes catalogue items and returns how many existed.
	DeleteItems(ctx context.Context, ids []string) (int, error)
	// DeleteUser removes everything the backend holds of a user (events,
	// their idempotency keys, anything indexed by the user) and returns the
	// number of events removed.
	DeleteUser(ctx context.Context, userID string) (int, error)
	// UserEvents returns up to limit of the user's most recent events,
	// newest first, and how many the backend holds.
	UserEvents(ctx context.Context, userID string, limit int) ([]Event, int, error)
	// Scan calls item for every catalogue item, then event for every event
	// with each user's events oldest first. Start-up and export read the
	// whole state through it.
	Scan(ctx context.Context, item func(dataset.Item) error, event func(Event) error) error
	// Seeded reports whether MarkSeeded was called: a new store is seeded
	// from the data set once, on its first start.
	Seeded(ctx context.Context) (bool, error)
	// MarkSeeded records that seeding finished.
	MarkSeeded(ctx context.Context) error
	// Close releases the backend.
	Close() error
}

// Change is a write another replica made to a shared backend.
type Change struct {
	// Events were appended (already deduplicated).
	Events []Event
	// Items were upserted.
	Items []dataset.Item
	// DeletedItems were deleted.
	DeletedItems []string
	// DeletedUser was deleted ("" for none).
	DeletedUser string
	// Resync says the follower fell behind the backend's change log: the
	// reader must reload the whole state with Scan.
	Resync bool
}

// Follower is a Backend shared by replicas: Follow calls apply, in order,
// with every change other replicas write, until ctx ends. Writes made
// through this Backend value are not reported back to it.
type Follower interface {
	Follow(ctx context.Context, apply func(Change)) error
}
