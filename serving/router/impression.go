package router

import (
	"time"

	"github.com/google/uuid"

	"github.com/recserve/recserve/serving/store"
)

// Impression is one answer as the shopper was shown it: what the
// experiment reports attribute clicks and purchases to. Every Recommend and
// SimilarItems answer is one, named by its RecommendationID.
type Impression struct {
	// ID is the answer's recommendation_id: a UUIDv7, so ids sort by time.
	ID   string    `json:"recommendation_id"`
	Time time.Time `json:"time"`
	// Kind is "recommend" or "similar"; Item is the query item of a
	// SimilarItems answer.
	Kind      string `json:"kind"`
	Item      string `json:"item_id,omitempty"`
	UserID    string `json:"user_id,omitempty"`
	SessionID string `json:"session_id,omitempty"`
	Route     string `json:"route,omitempty"`
	Arm       string `json:"arm,omitempty"`
	// Models are the model versions that answered (a canary appears as its
	// own version).
	Models []ModelVersion `json:"models"`
	// Items are the answer's items, Position 1 first.
	Items []ImpressedItem `json:"items"`
}

// Stored returns the part of the impression the state store keeps for
// attribution and experiment reports (store.Impression): its items as ids
// in position order, without scores and sources. It is the one conversion
// the live store and a log read back (impressionlog.Read) share, so both
// report the same numbers.
func (imp Impression) Stored() store.Impression {
	out := store.Impression{
		ID: imp.ID, Time: imp.Time, Kind: imp.Kind, UserID: imp.UserID, SessionID: imp.SessionID,
		Route: imp.Route, Arm: imp.Arm,
		Models: make([]store.ModelVersion, len(imp.Models)),
		Items:  make([]string, len(imp.Items)),
	}
	for i, mv := range imp.Models {
		out.Models[i] = store.ModelVersion{Name: mv.Name, Version: mv.Version, Canary: mv.Canary}
	}
	for i, it := range imp.Items {
		out.Items[i] = it.ItemID
	}
	return out
}

// ImpressedItem is one item of an impression.
type ImpressedItem struct {
	ItemID   string   `json:"item_id"`
	Position int      `json:"position"`
	Score    float64  `json:"score"`
	Sources  []string `json:"sources,omitempty"`
}

// ImpressionLog receives every answer's impression. Log is called on the
// request path, so it must not block: an implementation queues and writes
// elsewhere.
type ImpressionLog interface {
	Log(Impression)
}

// newRecommendationID returns a fresh UUIDv7 (random in its low bits; its
// time prefix orders impressions without an index).
func newRecommendationID() string {
	id, err := uuid.NewV7()
	if err != nil {
		// NewV7 fails only when the system's random source does; a v4
		// from the same source would fail alike, so the time alone names
		// the answer.
		return "t" + time.Now().UTC().Format("20060102T150405.000000000")
	}
	return id.String()
}

// impression counts the impression of an answer (imp without its items and
// time) and hands it, completed with items, to the log.
func (r *Router) impression(imp Impression, items []Item) {
	route := imp.Route
	if imp.Kind == "similar" {
		route = "similar"
	}
	r.metrics.observeImpression(route, imp.Arm, imp.Models)
	if r.impressions == nil {
		return
	}
	imp.Time = time.Now().UTC()
	imp.Items = make([]ImpressedItem, len(items))
	for i, it := range items {
		imp.Items[i] = ImpressedItem{ItemID: it.ItemID, Position: i + 1, Score: it.Score, Sources: it.Sources}
	}
	r.impressions.Log(imp)
}
