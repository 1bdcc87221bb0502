package router

import (
	"context"
	"fmt"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/serving/store"
)

// profile is what the router knows of the shopper: the stored history and
// seen set of userID, with the request's session items appended as views
// (with the timestamp of the last stored event)
// and added to the seen set. The store's profile is not modified.
func (r *Router) profile(ctx context.Context, userID string, session []string) (store.Profile, error) {
	var p store.Profile
	if userID != "" {
		var err error
		if p, err = r.store.Profile(ctx, userID); err != nil {
			return store.Profile{}, fmt.Errorf("profile of %q: %w", userID, err)
		}
	}
	if len(session) == 0 {
		return p, nil
	}
	h := make([]dataset.Interaction, 0, len(p.History)+len(session))
	h = append(h, p.History...)
	var ts int64
	if len(p.History) > 0 {
		ts = p.History[len(p.History)-1].Timestamp
	}
	seen := make(map[string]struct{}, len(p.Seen)+len(session))
	for id := range p.Seen {
		seen[id] = struct{}{}
	}
	for _, id := range session {
		h = append(h, dataset.Interaction{UserID: userID, ItemID: id, Event: dataset.View, Value: 1, Timestamp: ts})
		seen[id] = struct{}{}
	}
	return store.Profile{History: h, Seen: seen, Excluded: p.Excluded}, nil
}
