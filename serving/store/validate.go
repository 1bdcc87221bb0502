package store

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
)

// Limits on what one write may carry.
const (
	// MaxBatch is the most events (or items) one Track (UpsertItems) call
	// stores atomically.
	MaxBatch = 10000
	// MaxIDBytes bounds user, item, event, session and recommendation ids.
	MaxIDBytes = 256
	// MaxFuture is how far ahead of the server's clock an event may be
	// stamped (clock skew, not scheduling).
	MaxFuture = 24 * time.Hour
)

// Validate checks e, stamps a zero Time with now and fills a rating-less
// Value, and returns a models.FieldError naming the field under prefix
// ("events[17].item_id") for the first fault.
func (t EventTypes) Validate(prefix string, e *Event, now time.Time) error {
	for _, f := range []struct {
		name, v  string
		required bool
	}{
		{"user_id", e.UserID, true},
		{"item_id", e.ItemID, true},
		{"event_id", e.ID, false},
		{"session_id", e.SessionID, false},
		{"recommendation_id", e.RecommendationID, false},
	} {
		if err := checkID(f.v, f.required); err != nil {
			return &models.FieldError{Field: prefix + f.name, Err: err}
		}
	}
	if _, ok := t[e.Type]; !ok {
		return models.NewFieldError(prefix+"event", "unknown event type %q (want one of %s)", e.Type, t.names())
	}
	if math.IsNaN(e.Value) || math.IsInf(e.Value, 0) {
		return models.NewFieldError(prefix+"value", "must be a finite number, got %v", e.Value)
	}
	if e.Time.IsZero() {
		e.Time = now
	} else if e.Time.After(now.Add(MaxFuture)) {
		return models.NewFieldError(prefix+"timestamp", "%s is more than %s ahead of the server's clock", e.Time.UTC().Format(time.RFC3339), MaxFuture)
	}
	for k, v := range e.Context {
		if len(k) > MaxIDBytes || len(v) > 4*MaxIDBytes {
			return models.NewFieldError(prefix+"context", "key %q: keys are limited to %d bytes and values to %d", truncate(k), MaxIDBytes, 4*MaxIDBytes)
		}
	}
	return nil
}

// ValidateItem checks a catalogue item under prefix ("items[3].").
func ValidateItem(prefix string, it dataset.Item) error {
	if err := checkID(it.ID, true); err != nil {
		return &models.FieldError{Field: prefix + "item_id", Err: err}
	}
	if math.IsInf(it.Price, 0) || it.Price < 0 {
		return models.NewFieldError(prefix+"price", "must be a finite non-negative number, got %v", it.Price)
	}
	return nil
}

// CheckID validates one id a write names (required, at most MaxIDBytes,
// valid UTF-8 without control characters).
func CheckID(field, id string) error {
	if err := checkID(id, true); err != nil {
		return &models.FieldError{Field: field, Err: err}
	}
	return nil
}

func checkID(id string, required bool) error {
	switch {
	case id == "":
		if required {
			return fmt.Errorf("required")
		}
	case len(id) > MaxIDBytes:
		return fmt.Errorf("%d bytes exceed the limit of %d", len(id), MaxIDBytes)
	case strings.ContainsFunc(id, func(r rune) bool { return r < ' ' || r == 0x7f || r == '\uFFFD' }):
		return fmt.Errorf("%s: control characters and invalid UTF-8 are not allowed", strconv.Quote(truncate(id)))
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

func (t EventTypes) names() string {
	return strings.Join(slices.Sorted(maps.Keys(t)), ", ")
}
