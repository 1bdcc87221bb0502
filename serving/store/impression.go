package store

import (
	"context"
	"time"
)

// DefaultImpressionRetention is how long a backend keeps impressions and
// outcomes unless configured otherwise: thirty days, enough for a monthly
// experiment report. Any retention must exceed the longest attribution
// window (seven days, for purchases): an event is attributed to an
// impression only while the impression is still stored, so a shorter
// retention would silently drop conversions.
const DefaultImpressionRetention = 30 * 24 * time.Hour

// Impression is one answer as the state store keeps it for attribution and
// experiment reports: who was shown which items, by which route, arm and
// model versions. The router's impression (router.Impression) carries
// scores and sources too; the store keeps what attribution and reports read.
type Impression struct {
	// ID is the answer's recommendation_id.
	ID   string
	Time time.Time
	// Kind is "recommend" or "similar".
	Kind      string
	UserID    string
	SessionID string
	Route     string
	// Arm is "experiment/arm" for an answer an experiment routed, else "".
	Arm    string
	Models []ModelVersion
	// Items are the answer's item ids, position 1 first.
	Items []string
}

// ModelVersion names a model version that contributed to an impression.
type ModelVersion struct {
	Name    string
	Version string
	// Canary is set when the version served as the model's canary.
	Canary bool
}

// Position returns the 1-based position of item in the impression, or 0.
func (imp *Impression) Position(item string) int {
	for i, it := range imp.Items {
		if it == item {
			return i + 1
		}
	}
	return 0
}

// Outcome is a tracked event attributed to an impression: a click-through
// (any positive event on a shown item) and, for a purchase, a conversion
// with its revenue.
type Outcome struct {
	// ImpressionID is the recommendation_id the event is attributed to.
	ImpressionID string
	UserID       string
	// EventID is the event's id ("" when the client sent none).
	EventID string
	ItemID  string
	// Type is the event's type as tracked (view, cart, purchase, ...).
	Type string
	// Purchase marks a conversion.
	Purchase bool
	// Position is the item's 1-based position in the impression, 0 when an
	// event carrying the impression's id is for an item it did not show.
	Position int
	// Revenue is price × quantity of a purchase (0 for other events or an
	// item without a price).
	Revenue float64
	// Time is the event's time.
	Time time.Time
	// ByID is set when the event named the impression's recommendation_id,
	// unset when it was matched by the attribution window.
	ByID bool
}

// ImpressionStore is the part of a Backend that keeps impressions and their
// attributed outcomes, per user, for the backend's retention period. Both
// Pebble and Redis implement it (storetest checks them); Live attributes
// tracked events through it and experiment reports read it.
type ImpressionStore interface {
	// AppendImpressions stores impressions of identified users (an
	// impression without a UserID is skipped). Impressions need not be
	// synced to disk: one lost in a crash costs a little attribution, not
	// an acknowledged write.
	AppendImpressions(ctx context.Context, imps []Impression) error
	// UserImpressions returns the user's stored impressions with Time at or
	// after since, newest first.
	UserImpressions(ctx context.Context, userID string, since time.Time) ([]Impression, error)
	// AppendOutcomes stores attributed outcomes.
	AppendOutcomes(ctx context.Context, outs []Outcome) error
	// ScanImpressions calls fn once per user who has impressions with Time
	// in [since, until), with those impressions oldest first and the
	// user's outcomes attributed to them.
	ScanImpressions(ctx context.Context, since, until time.Time, fn func(userID string, imps []Impression, outs []Outcome) error) error
}

// ImpressionBatchReader is implemented by an ImpressionStore that reads many
// users' impressions at once cheaper than one by one (Redis: one round
// trip). UsersImpressions returns, for each users[i], what
// UserImpressions(users[i], since[i]) would.
type ImpressionBatchReader interface {
	UsersImpressions(ctx context.Context, users []string, since []time.Time) ([][]Impression, error)
}
