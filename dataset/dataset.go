// Package dataset defines recserve's canonical data set: the in-memory types for
// interactions, items and users, and the CSV directory format they are stored in
// (interactions.csv, items.csv, optional users.csv; see DESIGN.md).
//
// Every other part of recserve — the serving store, the importers, the generator,
// the splitter, the trainers and the evaluator — reads and writes data sets only
// through this package, so the format has exactly one implementation.
package dataset

import (
	"fmt"
	"strings"
)

// File names inside a data set directory.
const (
	InteractionsFile = "interactions.csv"
	ItemsFile        = "items.csv"
	UsersFile        = "users.csv"
)

// Event is the kind of a user–item interaction. The zero value is invalid so a
// forgotten assignment is caught by validation.
type Event uint8

// Event kinds, ordered by increasing purchase intent.
const (
	EventUnknown Event = iota
	View
	Cart
	Purchase
	Rating
)

var eventNames = [...]string{"", "view", "cart", "purchase", "rating"}

// String returns the canonical lower-case name written to interactions.csv.
func (e Event) String() string {
	if int(e) < len(eventNames) && e != EventUnknown {
		return eventNames[e]
	}
	return fmt.Sprintf("event(%d)", e)
}

// ParseEvent parses a canonical event name, case-insensitively and ignoring
// surrounding space.
func ParseEvent(s string) (Event, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	for i, n := range eventNames {
		if i > 0 && n == s {
			return Event(i), nil
		}
	}
	return EventUnknown, fmt.Errorf("unknown event %q (want view, cart, purchase or rating)", s)
}

// Interaction is one user–item event. Value carries the rating for Rating events
// and a quantity or weight (usually 1) for the others. Timestamp is Unix seconds.
type Interaction struct {
	UserID    string
	ItemID    string
	Event     Event
	Value     float64
	Timestamp int64
	SessionID string
}

// Item is one catalogue entry. Price is NaN when unknown; the text fields may be
// empty.
type Item struct {
	ID          string
	Title       string
	Category    string
	Brand       string
	Price       float64
	Description string
	// OutOfStock and Hidden come from the optional items.csv columns
	// in_stock (false = out of stock) and hidden; routes can filter such
	// items out while models keep them (an item may come back in stock).
	OutOfStock bool
	Hidden     bool
}

// User is one row of the optional users.csv: the id plus any further columns,
// kept verbatim by column name.
type User struct {
	ID    string
	Attrs map[string]string
}

// Dataset is a whole data set held in memory. Interactions keep file order;
// Items and Users keep file order too.
type Dataset struct {
	Interactions []Interaction
	Items        []Item
	Users        []User
}
