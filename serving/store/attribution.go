package store

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/recserve/recserve/dataset"
)

// Default attribution windows: a click-through within half an hour of the
// answer, a purchase within a week (shoppers come back to buy).
const (
	DefaultClickWindow    = 30 * time.Minute
	DefaultPurchaseWindow = 7 * 24 * time.Hour
)

// Windows bound how long after an impression an event without a
// recommendation_id is still attributed to it.
type Windows struct {
	// Click applies to every positive event but purchases.
	Click time.Duration
	// Purchase applies to purchases.
	Purchase time.Duration
}

// DefaultWindows returns the default attribution windows.
func DefaultWindows() Windows {
	return Windows{Click: DefaultClickWindow, Purchase: DefaultPurchaseWindow}
}

// longest is the longest of the windows: how far back Track must read a
// user's impressions.
func (w Windows) longest() time.Duration { return max(w.Click, w.Purchase) }

// ParseWindows parses "click=30m,purchase=168h" (Go durations; either part
// may be left out and keeps its default).
func ParseWindows(s string) (Windows, error) {
	w := DefaultWindows()
	if strings.TrimSpace(s) == "" {
		return w, nil
	}
	for _, part := range strings.Split(s, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return Windows{}, fmt.Errorf("attribution window %q: want click=DURATION or purchase=DURATION", part)
		}
		d, err := time.ParseDuration(strings.TrimSpace(val))
		if err != nil || d <= 0 {
			return Windows{}, fmt.Errorf("attribution window %q: want a positive duration such as 30m or 168h", part)
		}
		switch strings.TrimSpace(name) {
		case "click":
			w.Click = d
		case "purchase":
			w.Purchase = d
		default:
			return Windows{}, fmt.Errorf("attribution window %q: unknown kind %q (want click or purchase)", part, name)
		}
	}
	return w, nil
}

// Attribute decides which impression, if any, the event e of type et
// follows from, given the same user's impressions newest first, and returns
// the outcome. Negative events are never attributed.
//
//   - An event naming a recommendation_id is attributed to that impression
//     if it is one of the user's (an id of another user's answer attributes
//     nothing), whatever its item and age within the store's retention; an
//     item the answer did not show has Position 0.
//   - Otherwise (or when the id is not found), to the newest impression
//     that showed the item no later than the event and no longer before it
//     than the window of the event's kind.
//
// price gives the item's price for a purchase's revenue (NaN or ≤ 0: no
// revenue); the quantity is the event's value (0 means 1).
func Attribute(e *Event, et EventType, imps []Impression, w Windows, price func(item string) float64) (Outcome, bool) {
	if et.Negative || e.UserID == "" {
		return Outcome{}, false
	}
	purchase := et.As == dataset.Purchase
	var imp *Impression
	pos := 0
	byID := false
	if e.RecommendationID != "" {
		for i := range imps {
			if imps[i].ID == e.RecommendationID {
				imp, pos, byID = &imps[i], imps[i].Position(e.ItemID), true
				break
			}
		}
	}
	if imp == nil {
		window := w.Click
		if purchase {
			window = w.Purchase
		}
		for i := range imps {
			age := e.Time.Sub(imps[i].Time)
			if age < 0 {
				continue
			}
			if age > window {
				break
			}
			if p := imps[i].Position(e.ItemID); p > 0 {
				imp, pos = &imps[i], p
				break
			}
		}
	}
	if imp == nil {
		return Outcome{}, false
	}
	out := Outcome{
		ImpressionID: imp.ID, UserID: e.UserID, EventID: e.ID, ItemID: e.ItemID, Type: e.Type,
		Purchase: purchase, Position: pos, Time: e.Time, ByID: byID,
	}
	if purchase && price != nil {
		if p := price(e.ItemID); p > 0 && !math.IsInf(p, 0) {
			q := e.Value
			if q <= 0 {
				q = 1
			}
			out.Revenue = p * q
		}
	}
	return out, true
}
