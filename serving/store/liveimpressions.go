package store

import (
	"context"
	"errors"
	"math"
	"time"
)

// ErrNoImpressions is returned by the impression reads of a Live store
// whose backend keeps no impressions.
var ErrNoImpressions = errors.New("the state store keeps no impressions")

// LogImpression queues an answer's impression to be stored for attribution
// and reports. It never blocks: when the writer falls behind, impressions
// are dropped and counted (ImpressionStats). An impression without a user,
// or a store that keeps none, is ignored.
func (l *Live) LogImpression(imp Impression) {
	if l.writer == nil || imp.UserID == "" {
		return
	}
	l.writer.put(imp)
}

// ImpressionStats reports the impressions queued, written (or failed) so
// far, dropped because the queue was full, and lost to store errors.
func (l *Live) ImpressionStats() (queued, handled, dropped, failed int64) {
	if l.writer == nil {
		return 0, 0, 0, 0
	}
	w := l.writer
	return w.queued.Load(), w.done.Load(), w.dropped.Load(), w.failed.Load()
}

// ScanImpressions reads the stored impressions with Time in [since, until)
// and their outcomes, a user at a time (ImpressionStore.ScanImpressions),
// after writing those still queued.
func (l *Live) ScanImpressions(ctx context.Context, since, until time.Time, fn func(userID string, imps []Impression, outs []Outcome) error) error {
	if l.impressions == nil {
		return ErrNoImpressions
	}
	if err := l.writer.flush(ctx); err != nil {
		return err
	}
	return l.impressions.ScanImpressions(ctx, since, until, fn)
}

// span is where a user's events start in a Track batch and how far back
// their impressions are read.
type span struct {
	since time.Time
	first int
}

// attribute matches the stored events to the impressions they follow from
// and stores the outcomes. It runs after the events were acknowledged by
// the backend, so a failure here loses attributions (logged), never
// events; a retried event is not stored again and so not attributed twice.
func (l *Live) attribute(ctx context.Context, events []Event) {
	if l.impressions == nil || len(events) == 0 {
		return
	}
	// The user's impressions are read once per user of the batch, from
	// the earliest time any of its events may reach back to.
	users := map[string]*span{}
	var order []string
	for i := range events {
		e := &events[i]
		et, ok := l.types[e.Type]
		if !ok || et.Negative {
			continue
		}
		since := e.Time.Add(-l.windows.longest())
		if e.RecommendationID != "" {
			since = time.Time{} // any age the store still holds
		}
		s, ok := users[e.UserID]
		if !ok {
			users[e.UserID] = &span{since: since, first: i}
			order = append(order, e.UserID)
			continue
		}
		if since.Before(s.since) {
			s.since = since
		}
	}
	if len(users) == 0 {
		return
	}
	if err := l.writer.flush(ctx); err != nil {
		l.log.Warn("attribution: waiting for queued impressions", "err", err)
	}
	lists, err := l.usersImpressions(ctx, order, users)
	if err != nil {
		l.log.Error("attribution: reading impressions failed; the events are stored but not attributed", "users", len(order), "err", err)
		return
	}
	var outs []Outcome
	var imps []*Impression
	for u, user := range order {
		s, list := users[user], lists[u]
		if len(list) == 0 {
			continue
		}
		for i := s.first; i < len(events); i++ {
			e := &events[i]
			if e.UserID != user {
				continue
			}
			out, ok := Attribute(e, l.types[e.Type], list, l.windows, l.price)
			if !ok {
				continue
			}
			outs = append(outs, out)
			for j := range list {
				if list[j].ID == out.ImpressionID {
					imps = append(imps, &list[j])
					break
				}
			}
		}
	}
	if len(outs) == 0 {
		return
	}
	if err := l.impressions.AppendOutcomes(ctx, outs); err != nil {
		l.log.Error("attribution: storing outcomes failed; the events are stored but not attributed", "outcomes", len(outs), "err", err)
		return
	}
	if ao, ok := l.observer.(AttributionObserver); ok {
		ao.Attributed(outs, imps)
	}
}

// usersImpressions reads the impressions of each user of order since its
// span's start: in one call when the store can batch, else one by one.
func (l *Live) usersImpressions(ctx context.Context, order []string, spans map[string]*span) ([][]Impression, error) {
	if br, ok := l.impressions.(ImpressionBatchReader); ok {
		since := make([]time.Time, len(order))
		for i, u := range order {
			since[i] = spans[u].since
		}
		return br.UsersImpressions(ctx, order, since)
	}
	lists := make([][]Impression, len(order))
	for i, u := range order {
		list, err := l.impressions.UserImpressions(ctx, u, spans[u].since)
		if err != nil {
			return nil, err
		}
		lists[i] = list
	}
	return lists, nil
}

// price is an item's catalogue price, NaN when unknown.
func (l *Live) price(item string) float64 {
	it, ok := l.Item(item)
	if !ok {
		return math.NaN()
	}
	return it.Price
}
