package pebblestore

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/recserve/recserve/serving/store"
)

// cutoff returns the oldest time a read returns: older impressions and
// outcomes are past the retention, whether or not a sweep removed them.
func (s *Store) cutoff() time.Time { return time.Now().Add(-s.retention) }

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// AppendImpressions implements store.ImpressionStore: one batch, committed
// without waiting for an fsync (the package doc says why), of every
// impression with a UserID. An impression of the same user, ID and time
// as one held replaces it. It takes no mutex beyond Close's, so answers
// recording impressions do not queue behind event writes.
func (s *Store) AppendImpressions(ctx context.Context, imps []store.Impression) error {
	db, err := s.acquire(ctx, "append impressions")
	if err != nil {
		return err
	}
	defer s.mu.RUnlock()
	b := db.NewBatch()
	defer b.Close()
	// Sized for a typical ten-item impression's key and record, so it
	// rarely grows.
	buf := make([]byte, 0, 512)
	for i := range imps {
		m := &imps[i]
		if m.UserID == "" {
			continue
		}
		// One buffer holds the key, then the value after it; the batch
		// copies both.
		buf = impressionKey(buf[:0], m.UserID, m.Time, m.ID)
		k := len(buf)
		buf = store.AppendImpression(buf, m)
		if err := b.Set(buf[:k], buf[k:], nil); err != nil {
			return unavailable("append impressions", err)
		}
	}
	if b.Empty() {
		return nil
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return unavailable("append impressions", err)
	}
	return nil
}

// AppendOutcomes implements store.ImpressionStore: one synced batch of
// every outcome with a UserID (one without could name no stored
// impression: those of unidentified users are not kept). An outcome equal
// to one held is the same key, stored once.
func (s *Store) AppendOutcomes(ctx context.Context, outs []store.Outcome) error {
	db, err := s.acquire(ctx, "append outcomes")
	if err != nil {
		return err
	}
	defer s.mu.RUnlock()
	b := db.NewBatch()
	defer b.Close()
	var buf, rec []byte
	for i := range outs {
		o := &outs[i]
		if o.UserID == "" {
			continue
		}
		rec = store.AppendOutcome(rec[:0], o)
		buf = outcomeKey(buf[:0], o.UserID, o.Time, rec)
		if err := b.Set(buf, nil, nil); err != nil {
			return unavailable("append outcomes", err)
		}
	}
	if b.Empty() {
		return nil
	}
	// Concurrent synced commits share an fsync in Pebble's commit
	// pipeline: no group commit of our own is needed without a mutex.
	if err := b.Commit(pebble.Sync); err != nil {
		return unavailable("append outcomes", err)
	}
	return nil
}

// UserImpressions implements store.ImpressionStore by reading the user's
// impression range backwards, from its end down to since (or the
// retention's cutoff, if later).
func (s *Store) UserImpressions(ctx context.Context, userID string, since time.Time) ([]store.Impression, error) {
	db, err := s.acquire(ctx, "user impressions")
	if err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	since = later(since, s.cutoff())
	prefix := userSpace(nil, prefixImpression, userID)
	lower := appendKeyTime(prefix[:len(prefix):len(prefix)], since)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, unavailable("user impressions", err)
	}
	defer it.Close()
	var out []store.Impression
	for ok := it.Last(); ok; ok = it.Prev() {
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, unavailable("user impressions", err)
		}
		k := it.Key()
		if len(k) < len(prefix)+timeLen {
			return nil, fmt.Errorf("pebblestore: user impressions: %w: key %q", store.ErrCorrupt, k)
		}
		m, err := impressionValue(userID, k[len(prefix)+timeLen:], v)
		if err != nil {
			return nil, fmt.Errorf("pebblestore: user impressions: impression at %q: %w", it.Key(), err)
		}
		// The key's time is clamped: the record's is exact.
		if !m.Time.Before(since) {
			out = append(out, m)
		}
	}
	if err := it.Error(); err != nil {
		return nil, unavailable("user impressions", err)
	}
	return out, nil
}

// ScanImpressions implements store.ImpressionStore from one consistent
// view of the database: it walks the impression key space user by user,
// seeking each user's range to since (or the retention's cutoff, if
// later), and reads the outcomes of each user it reports. It holds one
// user's impressions and outcomes at a time; the slices it passes fn are
// fn's to keep. It stops at fn's first error or when ctx ends, and
// returns that error. fn must not call the Store.
func (s *Store) ScanImpressions(ctx context.Context, since, until time.Time, fn func(userID string, imps []store.Impression, outs []store.Outcome) error) error {
	db, err := s.acquire(ctx, "scan impressions")
	if err != nil {
		return err
	}
	defer s.mu.RUnlock()
	cutoff := s.cutoff()
	since = later(since, cutoff)
	if !since.Before(until) {
		return nil
	}
	snap := db.NewSnapshot()
	defer snap.Close()
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixImpression}, UpperBound: []byte{prefixImpression + 1}})
	if err != nil {
		return unavailable("scan impressions", err)
	}
	defer it.Close()
	oit, err := snap.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixOutcome}, UpperBound: []byte{prefixOutcome + 1}})
	if err != nil {
		return unavailable("scan impressions", err)
	}
	defer oit.Close()
	// The keys of the users' ranges' times, built once: seeks append them
	// to a user's prefix.
	sinceKey := appendKeyTime(nil, since)
	untilKey := appendKeyTime(nil, until)
	cutoffKey := appendKeyTime(nil, cutoff)
	var seek []byte
	ids := map[string]struct{}{}
	for ok := it.First(); ok; {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("pebblestore: scan impressions: %w", err)
		}
		p, user, _, err := splitUserKey(it.Key(), prefixImpression, timeLen)
		if err != nil {
			return fmt.Errorf("pebblestore: scan impressions: %w", err)
		}
		prefix := bytes.Clone(p)
		userID := string(user)
		var imps []store.Impression
		seek = append(append(seek[:0], prefix...), sinceKey...)
		for ok = it.SeekGE(seek); ok && bytes.HasPrefix(it.Key(), prefix); ok = it.Next() {
			k := it.Key()
			if len(k) < len(prefix)+timeLen {
				return fmt.Errorf("pebblestore: scan impressions: %w: key %q", store.ErrCorrupt, k)
			}
			if bytes.Compare(k[len(prefix):len(prefix)+timeLen], untilKey) > 0 {
				break
			}
			v, err := it.ValueAndErr()
			if err != nil {
				return unavailable("scan impressions", err)
			}
			m, err := impressionValue(userID, k[len(prefix)+timeLen:], v)
			if err != nil {
				return fmt.Errorf("pebblestore: scan impressions: impression at %q: %w", k, err)
			}
			if !m.Time.Before(since) && m.Time.Before(until) {
				imps = append(imps, m)
			}
		}
		if len(imps) > 0 {
			seek = append(userSpace(seek[:0], prefixOutcome, userID), cutoffKey...)
			outs, err := userOutcomes(oit, userID, seek, cutoff, imps, ids)
			if err != nil {
				return fmt.Errorf("pebblestore: scan impressions: %w", err)
			}
			if err := fn(userID, imps, outs); err != nil {
				return err
			}
		}
		if end := prefixEnd(prefix); ok && end != nil {
			ok = it.SeekGE(end)
		} else {
			ok = false
		}
	}
	if err := it.Error(); err != nil {
		return unavailable("scan impressions", err)
	}
	return nil
}

// userOutcomes reads, with it (an iterator over the outcome key space),
// the outcomes of userID from seek (the user's outcome prefix and the
// cutoff's time) on, and returns those at or after cutoff attributed to
// one of imps. ids is scratch space.
func userOutcomes(it *pebble.Iterator, userID string, seek []byte, cutoff time.Time, imps []store.Impression, ids map[string]struct{}) ([]store.Outcome, error) {
	clear(ids)
	for i := range imps {
		ids[imps[i].ID] = struct{}{}
	}
	prefixLen := len(seek) - timeLen
	var outs []store.Outcome
	for ok := it.SeekGE(seek); ok && bytes.HasPrefix(it.Key(), seek[:prefixLen]); ok = it.Next() {
		k := it.Key()
		o, err := outcomeFromKey(userID, k[prefixLen:])
		if err != nil {
			return nil, fmt.Errorf("outcome at %q: %w", k, err)
		}
		if _, ok := ids[o.ImpressionID]; ok && !o.Time.Before(cutoff) {
			outs = append(outs, o)
		}
	}
	if err := it.Error(); err != nil {
		return nil, unavailable("read outcomes", err)
	}
	return outs, nil
}

// defaultSweepBatchBytes is the size at which the sweep commits its batch
// and starts another, so that a sweep of many users holds little memory.
const defaultSweepBatchBytes = 1 << 20

// sweep removes the impressions and outcomes past the retention: for each
// user whose impression or outcome range starts before the cutoff, one
// range deletion up to it. It reads one key and seeks once per user, and
// skips (and logs) a key it cannot parse. Batches are committed without
// sync: a sweep lost in a crash runs again. It stops, with ctx's error,
// when ctx ends.
func (s *Store) sweep(ctx context.Context, db *pebble.DB) error {
	cutoffKey := appendKeyTime(nil, s.cutoff())
	b := db.NewBatch()
	defer func() { b.Close() }()
	var end []byte
	for _, kind := range []byte{prefixImpression, prefixOutcome} {
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{kind}, UpperBound: []byte{kind + 1}})
		if err != nil {
			return unavailable("sweep", err)
		}
		for ok := it.First(); ok; {
			if err := ctx.Err(); err != nil {
				it.Close()
				return fmt.Errorf("pebblestore: sweep: %w", err)
			}
			prefix, _, rest, err := splitUserKey(it.Key(), kind, timeLen)
			if err != nil {
				// Housekeeping does not stop at a damaged key (reads
				// report it): log it and go on with the next key.
				s.log.Error("retention sweep skips a damaged key", "err", err)
				ok = it.Next()
				continue
			}
			if bytes.Compare(rest[:timeLen], cutoffKey) < 0 {
				end = append(append(end[:0], prefix...), cutoffKey...)
				if err := b.DeleteRange(prefix, end, nil); err != nil {
					it.Close()
					return unavailable("sweep", err)
				}
			}
			if next := prefixEnd(prefix); next != nil {
				ok = it.SeekGE(next)
			} else {
				ok = false
			}
			if b.Len() >= s.sweepBatchBytes {
				if err := b.Commit(pebble.NoSync); err != nil {
					it.Close()
					return unavailable("sweep", err)
				}
				b.Close()
				b = db.NewBatch()
			}
		}
		if err := it.Close(); err != nil {
			return unavailable("sweep", err)
		}
	}
	if b.Empty() {
		return nil
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return unavailable("sweep", err)
	}
	return nil
}

// sweepLoop runs the sweep every interval until ctx ends, logging
// failures (the next sweep tries again; reads hide what a failed sweep
// left), and closes s.sweepDone when it returns.
func (s *Store) sweepLoop(ctx context.Context, every time.Duration) {
	defer close(s.sweepDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		db, err := s.acquire(ctx, "sweep")
		if err != nil {
			return // closed or stopping
		}
		err = s.sweep(ctx, db)
		s.mu.RUnlock()
		if err != nil && ctx.Err() == nil {
			s.log.Error("retention sweep failed", "err", err)
		}
	}
}
