package redisstore

import (
	"context"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/serving/store"
)

// scanCount is how many fields or members one HSCAN or SSCAN asks for, and
// so how many users' lists one pipeline reads.
const scanCount = 500

// Scan calls item for every catalogue item, then event for every event,
// user by user, each user's events oldest first. It returns the first error
// of a callback, of Redis or of decoding.
//
// Scan first reads the change position and skips events written after it,
// so the events it returns are exactly those up to that position; a Follow
// started after a successful Scan (or a Scan run inside Follow's apply of a
// Resync) continues from there, and the caller sees every event once.
// Items are read as they are when Scan reaches them. Only the last Scan
// before Follow sets Follow's start: a replica loads with one Scan, then
// Follows (an export Scan in between would move the start past changes the
// replica has not loaded).
//
// Items and users are walked with HSCAN and SSCAN (so Redis is never blocked
// by one long command) and each batch of users' lists is read in one
// pipeline of LRANGEs.
func (s *Store) Scan(ctx context.Context, item func(dataset.Item) error, event func(store.Event) error) error {
	pos, _, err := s.position(ctx)
	if err != nil {
		return fmt.Errorf("redisstore: scan: %w", err)
	}
	if err := s.scanItems(ctx, item); err != nil {
		return fmt.Errorf("redisstore: scan items: %w", err)
	}
	if err := s.scanEvents(ctx, pos, event); err != nil {
		return fmt.Errorf("redisstore: scan events: %w", err)
	}
	s.mu.Lock()
	switch {
	case s.resyncing:
		s.scanned, s.scanPos = true, pos
	case !s.following:
		s.pos = pos
	}
	s.mu.Unlock()
	return nil
}

func (s *Store) scanItems(ctx context.Context, item func(dataset.Item) error) error {
	// SCAN commands may return an element twice; seen keeps the calls to
	// one per item.
	seen := make(map[string]struct{})
	var cursor uint64
	for {
		kv, next, err := s.rdb.HScan(ctx, s.items, cursor, "", scanCount).Result()
		if err != nil {
			return wrap(err)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if _, dup := seen[kv[i]]; dup {
				continue
			}
			seen[kv[i]] = struct{}{}
			it, err := decodeItemValue(kv[i+1])
			if err != nil {
				return fmt.Errorf("item %q: %w", kv[i], err)
			}
			if err := item(it); err != nil {
				return err
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// scanEvents calls event for the events of every user, skipping those
// written after change pos. It reads the next batch of lists while the
// callback handles the current one.
func (s *Store) scanEvents(ctx context.Context, pos uint64, event func(store.Event) error) error {
	type batch struct {
		users []string
		lists []*redis.StringSliceCmd
		err   error
	}
	batches := make(chan batch, 1)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	send := func(b batch) bool {
		select {
		case batches <- b:
			return b.err == nil
		case <-ctx.Done():
			return false
		}
	}
	wg.Go(func() {
		defer close(batches)
		seen := make(map[string]struct{})
		var cursor uint64
		for {
			members, next, err := s.rdb.SScan(ctx, s.common[1], cursor, "", scanCount).Result()
			if err != nil {
				send(batch{err: wrap(err)})
				return
			}
			var b batch
			for _, u := range members {
				if _, dup := seen[u]; !dup {
					seen[u] = struct{}{}
					b.users = append(b.users, u)
				}
			}
			if len(b.users) > 0 {
				p := s.rdb.Pipeline()
				for _, u := range b.users {
					b.lists = append(b.lists, p.LRange(ctx, s.userKey(u), 0, -1))
				}
				if _, err := p.Exec(ctx); err != nil {
					b.err = wrap(err)
				}
				if !send(b) {
					return
				}
			}
			if cursor = next; cursor == 0 {
				return
			}
		}
	})
	for b := range batches {
		if b.err != nil {
			return b.err
		}
		for i, u := range b.users {
			for _, el := range b.lists[i].Val() {
				seq, e, err := decodeElem(u, el)
				if err != nil {
					return fmt.Errorf("user %q: %w", u, err)
				}
				if seq > pos {
					// Written after the scan's position: Follow
					// delivers it, and everything after it.
					break
				}
				if err := event(e); err != nil {
					return err
				}
			}
		}
	}
	return ctx.Err()
}
