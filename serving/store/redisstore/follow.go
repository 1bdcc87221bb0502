package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recserve/recserve/serving/store"
)

const (
	// followCount is how many change entries one XREAD returns at most.
	followCount = 64
	// Follow waits between minBackoff and maxBackoff, doubling, before it
	// tries again a Redis that failed.
	minBackoff = 50 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// errFollowing is returned by a Follow called while another runs on the
// same Store: the two would share one position.
var errFollowing = errors.New("redisstore: Follow is already running on this Store")

// Follow calls apply, in order, with every change that other Stores (other
// replicas) write to the Redis, until ctx ends; it then returns ctx's error.
// It starts after the position recorded by Open or by the last successful
// Scan before it, and a later Follow on the same Store resumes where this
// one stopped.
//
// When Redis fails, Follow waits (50 ms doubling to 2 s) and tries again
// from the same position, so no change is lost to an outage. When changes
// it had not read were trimmed or purged from the stream, it calls apply
// with Change{Resync: true}: the caller must reload the whole state with
// Scan, preferably inside that apply call, in which case Follow continues
// exactly after that Scan; a reload after apply returns may see some
// changes twice. apply runs on Follow's goroutine and must not call Follow.
func (s *Store) Follow(ctx context.Context, apply func(store.Change)) error {
	s.mu.Lock()
	if s.following {
		s.mu.Unlock()
		return errFollowing
	}
	s.following = true
	pos := s.pos
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.following, s.pos = false, pos
		s.mu.Unlock()
	}()

	backoff := time.Duration(0)
	fail := func() error {
		backoff = min(max(2*backoff, minBackoff), maxBackoff)
		t := time.NewTimer(backoff)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		res, err := s.rdb.XRead(ctx, &redis.XReadArgs{
			Streams: []string{s.changes, seqID(pos)},
			Count:   followCount,
			Block:   s.opts.FollowBlock,
		}).Result()
		if errors.Is(err, redis.Nil) {
			// Idle: purge due user deletions, and notice a store
			// emptied under us (FLUSHDB), whose sequence restarts.
			if pos, err = s.idle(ctx, pos, apply); err != nil {
				if err := fail(); err != nil {
					return err
				}
				continue
			}
			backoff = 0
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err := fail(); err != nil {
				return err
			}
			continue
		}
		backoff = 0
		for _, st := range res {
			if pos, err = s.deliver(ctx, pos, st.Messages, apply); err != nil {
				break
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err := fail(); err != nil {
				return err
			}
		}
	}
}

func seqID(n uint64) string { return strconv.FormatUint(n, 10) + "-0" }

// idle runs when XREAD found nothing new.
func (s *Store) idle(ctx context.Context, pos uint64, apply func(store.Change)) (uint64, error) {
	seq, _, err := s.position(ctx)
	if err != nil {
		return pos, err
	}
	if seq < pos {
		return s.resync(ctx, pos, apply)
	}
	if err := purgeScript.Run(ctx, s.rdb, s.keys(), s.replica, s.maxlen).Err(); err != nil {
		return pos, wrap(err)
	}
	return pos, nil
}

// deliver applies msgs, which follow pos, and returns the new position. On
// an error the position is the last entry handled, and Follow retries from
// there.
func (s *Store) deliver(ctx context.Context, pos uint64, msgs []redis.XMessage, apply func(store.Change)) (uint64, error) {
	for _, m := range msgs {
		n, err := parseSeqID(m.ID)
		if err != nil || n <= pos {
			// Not an entry of ours; skip it rather than stop.
			continue
		}
		if n != pos+1 {
			// A gap: entries trimmed or purged (at or below the
			// floor: lost to us), or a sequence number a failed
			// script took without writing its entry (harmless).
			_, floor, err := s.position(ctx)
			if err != nil {
				return pos, err
			}
			if pos+1 <= floor {
				return s.resync(ctx, pos, apply)
			}
		}
		if field(m, "o") == s.replica {
			pos = n
			continue
		}
		ch, err := decodeChange(m)
		if err != nil {
			// An entry this release cannot read: the state it
			// describes is still in Redis.
			return s.resync(ctx, pos, apply)
		}
		apply(ch)
		pos = n
	}
	return pos, nil
}

// resync tells the caller to reload and returns the position to continue
// from: that of a Scan the caller ran inside apply, else the position read
// before apply (any change after it is delivered, perhaps twice).
func (s *Store) resync(ctx context.Context, pos uint64, apply func(store.Change)) (uint64, error) {
	seq, _, err := s.position(ctx)
	if err != nil {
		return pos, err
	}
	s.mu.Lock()
	s.resyncing, s.scanned = true, false
	s.mu.Unlock()
	apply(store.Change{Resync: true})
	s.mu.Lock()
	if s.scanned {
		seq = s.scanPos
	}
	s.resyncing, s.scanned = false, false
	s.mu.Unlock()
	return seq, nil
}

func parseSeqID(id string) (uint64, error) {
	ms, sq, ok := strings.Cut(id, "-")
	if !ok || sq != "0" {
		return 0, fmt.Errorf("redisstore: change ID %q is not {seq}-0", id)
	}
	return strconv.ParseUint(ms, 10, 64)
}

func field(m redis.XMessage, name string) string {
	v, _ := m.Values[name].(string)
	return v
}

// decodeChange turns a change entry into the Change it stands for.
func decodeChange(m redis.XMessage) (store.Change, error) {
	var ch store.Change
	var err error
	switch k, v := field(m, "k"), field(m, "v"); k {
	case "e":
		ch.Events, err = decodeEvents(field(m, "u"), v)
	case "i":
		ch.Items, err = decodeItems(v)
	case "d":
		ch.DeletedItems, err = decodeIDs(v)
	case "u":
		ch.DeletedUser = field(m, "u")
	default:
		err = fmt.Errorf("redisstore: change kind %q", k)
	}
	return ch, err
}
