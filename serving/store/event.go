package store

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/recserve/recserve/dataset"
)

// Event is one shopper action as the store keeps it: what the client sent,
// validated, with its time resolved. The durable log holds Events; the
// in-memory indexes hold the dataset.Interaction each one stands for.
type Event struct {
	// ID makes a retry idempotent: a backend stores an event whose ID it
	// already holds only once. Empty means no deduplication.
	ID     string
	UserID string
	ItemID string
	// Type is the event's name as tracked: view, cart, purchase, rating or
	// a type declared in EventTypes.
	Type             string
	Value            float64
	Time             time.Time
	SessionID        string
	RecommendationID string
	Context          map[string]string
}

// EventType is how a tracked event type counts.
type EventType struct {
	// As is the canonical event the type enters histories as. Custom types
	// enter as dataset.Rating with Value = Weight, so every model that
	// weighs events (models.EventWeights) counts them with their weight.
	As dataset.Event
	// Weight is a custom type's weight (unused for the built-in types, whose
	// weights are the models' own).
	Weight float64
	// Negative types (dislike, return) keep the item out of the user's
	// answers and do not enter the history.
	Negative bool
}

// EventTypes maps an event name to how it counts. Built-in names are view,
// cart, purchase and rating; a server declares more in its event
// configuration.
type EventTypes map[string]EventType

// DefaultEventTypes returns the built-in types plus two common negative
// ones, dislike and return.
func DefaultEventTypes() EventTypes {
	return EventTypes{
		"view":     {As: dataset.View},
		"cart":     {As: dataset.Cart},
		"purchase": {As: dataset.Purchase},
		"rating":   {As: dataset.Rating},
		"dislike":  {Negative: true},
		"return":   {Negative: true},
	}
}

// Interaction returns what e stands for in a history, and false for a
// negative or unknown type.
func (t EventTypes) Interaction(e Event) (dataset.Interaction, bool) {
	et, ok := t[e.Type]
	if !ok || et.Negative {
		return dataset.Interaction{}, false
	}
	in := dataset.Interaction{
		UserID: e.UserID, ItemID: e.ItemID, Event: et.As, Value: e.Value,
		Timestamp: e.Time.Unix(), SessionID: e.SessionID,
	}
	if et.As == dataset.EventUnknown {
		in.Event, in.Value = dataset.Rating, et.Weight
	}
	if in.Value == 0 && in.Event != dataset.Rating {
		in.Value = 1
	}
	return in, true
}

// FromInteraction returns the event a data set row stands for, with id as
// its ID (the seed gives every row a stable id, so a seed interrupted and
// run again stores each row once).
func FromInteraction(in dataset.Interaction, id string) Event {
	return Event{
		ID: id, UserID: in.UserID, ItemID: in.ItemID, Type: in.Event.String(),
		Value: in.Value, Time: time.Unix(in.Timestamp, 0).UTC(), SessionID: in.SessionID,
	}
}

// SeedEventID is the ID of the i-th interaction of the data set a store was
// seeded from.
func SeedEventID(i int) string { return fmt.Sprintf("seed:%d", i) }

// ParseEventTypes parses a server's declared event types,
// "wishlist=2,dislike=negative": a positive weight, or negative. The result
// holds the defaults too; a declaration may not redefine view, cart,
// purchase or rating.
func ParseEventTypes(s string) (EventTypes, error) {
	t := DefaultEventTypes()
	if strings.TrimSpace(s) == "" {
		return t, nil
	}
	for _, part := range strings.Split(s, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		name, val = strings.TrimSpace(name), strings.TrimSpace(val)
		if !ok || name == "" {
			return nil, fmt.Errorf("event type %q: want name=weight or name=negative", part)
		}
		if _, err := dataset.ParseEvent(name); err == nil {
			return nil, fmt.Errorf("event type %q: %s is built in", part, name)
		}
		if err := checkID(name, true); err != nil {
			return nil, fmt.Errorf("event type %q: %w", part, err)
		}
		if val == "negative" {
			t[name] = EventType{Negative: true}
			continue
		}
		w, err := strconv.ParseFloat(val, 64)
		if err != nil || !(w > 0) || math.IsInf(w, 0) {
			return nil, fmt.Errorf("event type %q: want a positive weight or negative", part)
		}
		t[name] = EventType{Weight: w}
	}
	return t, nil
}
