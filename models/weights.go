package models

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/recserve/recserve/dataset"
)

// EventWeights say how much each event kind counts: shops weigh a purchase
// above a view. Rating events count their value times the rating weight. The
// same weights turn a history into implicit feedback at training and at
// serving time.
type EventWeights map[dataset.Event]float64

// DefaultEventWeights are view 1, cart 3, purchase 5, rating 1 (× value).
func DefaultEventWeights() EventWeights {
	return EventWeights{dataset.View: 1, dataset.Cart: 3, dataset.Purchase: 5, dataset.Rating: 1}
}

// ParseEventWeights parses "view:1,cart:3,purchase:5"; unspecified events keep
// their defaults.
func ParseEventWeights(s string) (EventWeights, error) {
	w := DefaultEventWeights()
	if strings.TrimSpace(s) == "" {
		return w, nil
	}
	for _, part := range strings.Split(s, ",") {
		name, val, ok := strings.Cut(part, ":")
		if !ok {
			return nil, fmt.Errorf("event weight %q: want event:weight", part)
		}
		ev, err := dataset.ParseEvent(name)
		if err != nil {
			return nil, fmt.Errorf("event weight %q: %w", part, err)
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil || f < 0 {
			return nil, fmt.Errorf("event weight %q: want a non-negative number", part)
		}
		w[ev] = f
	}
	return w, nil
}

// Of returns the weight of one interaction.
func (w EventWeights) Of(in dataset.Interaction) float64 {
	if in.Event == dataset.Rating {
		return w[dataset.Rating] * in.Value
	}
	return w[in.Event]
}

// String formats w as ParseEventWeights reads it.
func (w EventWeights) String() string {
	var parts []string
	for _, ev := range []dataset.Event{dataset.View, dataset.Cart, dataset.Purchase, dataset.Rating} {
		parts = append(parts, fmt.Sprintf("%s:%g", ev, w[ev]))
	}
	return strings.Join(parts, ",")
}
