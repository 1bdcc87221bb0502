// Package redisstore keeps the state store (store.Backend and
// store.ImpressionStore) in Redis, so that several server replicas share
// one event log, catalogue, set of idempotency keys and impression log, and each replica follows the others' writes
// (store.Follower) through a Redis stream.
//
// # Key layout
//
// Every key starts with Options.Prefix (default "recserve:"):
//
//	items          hash: item ID → item record
//	users          set: IDs of the users that have events
//	u:{userID}     list: the user's events, oldest first; each element is
//	               the change sequence number (6 bytes) and the event record
//	ids            hash: event ID → user ID (the idempotency keys; the user
//	               ID lets DeleteUser find and remove them)
//	seeded         string "1" once MarkSeeded was called
//	changes        stream: one entry per write, with ID "{seq}-0" and the
//	               fields o (origin: the writing Store's replica ID), k
//	               (kind: e events, i items upserted, d items deleted,
//	               u user deleted), u (user ID, for e and u) and v (records)
//	seq            string: the last change sequence number
//	floor          string: every change at or below it may have been trimmed
//	               or purged from the stream
//	deletions      list of "{seq}:{due ms}:{seq},{seq}...": user deletions
//	               to purge from the stream when due (the deletion entry and
//	               the entries that carried the user's events)
//	imp:{userID}   sorted set: the user's impressions, each member an
//	               impression record (no user), scored by its time in Unix
//	               milliseconds
//	out:{userID}   sorted set: the user's attributed outcomes, each member
//	               an outcome record (no user), scored by the event's time
//	               in Unix milliseconds
//	impusers       sorted set: the IDs of the users with impressions, each
//	               scored by the user's latest impression's time in Unix
//	               milliseconds
//
// Records are the store package's compact versioned binary records
// (store.AppendEvent, store.AppendItem; Pebble stores the same), framed as
// framing.go describes: a typical event is 78 bytes and decodes from the
// reply string in about 50 ns without allocating, where JSON takes 203
// bytes and 2.2 µs with 10 allocations (store's BenchmarkEventRecord),
// which would make the start-up Scan of millions of events CPU-bound in
// the replica. An Append writes one change entry per user, carrying that
// user's stored events, so the entries holding a user's data are exactly
// those its list elements name.
//
// # Atomicity and durability
//
// Every write is one Lua script: Redis runs it alone and writes its effects
// to the append-only file (and to replicas) as one MULTI/EXEC block, so an
// Append is stored all or none and is deduplicated against concurrent
// Appends from other replicas. For "an acknowledged event is never lost"
// run Redis with
//
//	appendonly yes
//	appendfsync always
//
// Redis then fsyncs the AOF before it answers, so an acknowledged write
// survives a crash of Redis or of the machine. With appendfsync everysec
// (Redis's default when AOF is on) a write is answered before its fsync: a
// power loss or kernel crash loses up to about two seconds of acknowledged
// writes (a crash of the Redis process alone loses nothing once Redis has
// written to the file, which it normally does before answering). RDB
// snapshots alone (appendonly no) lose everything since the last snapshot.
// Redis replication is asynchronous: a failover to a replica can lose
// acknowledged writes whatever the fsync policy.
//
// # Following and the start-up race
//
// Followers XREAD BLOCK the change stream from a sequence number. Open
// records the stream's position before the caller's Scan; Scan itself reads
// the position first and returns only events at or below it (a user's list
// element carries its sequence number), and a Follow that starts after a
// successful Scan resumes from that Scan's position. So a replica that calls
// Scan then Follow sees every event exactly once: those written before the
// Scan's position through Scan, those after through Follow. Catalogue
// changes made while Scan runs may reach the caller twice (Scan, then
// Follow), in order, which leaves the same catalogue.
//
// A follower that finds a gap in the sequence numbers asks the floor: a gap
// at or below it may hide changes trimmed away (the stream keeps about
// Options.MaxChanges entries) or purged, and yields Change{Resync: true}.
//
// DeleteUser removes the user's events, idempotency keys and user-set
// membership at once, and announces the deletion on the stream. The stream
// entries that carried the user's events stay, with the deletion entry, for
// Options.DeletionRetention (default 1 minute), so that followers see the
// user's writes and then the deletion, in order; then the next write of any
// replica, or an idle follower, removes them all and nothing of the user
// remains in Redis. Removing them raises the floor, so a follower that had
// not read them by then resyncs. DeletionRetention < 0 removes them at once.
// (The AOF keeps the history until Redis rewrites it; run BGREWRITEAOF, or
// rely on auto-aof-rewrite, to erase it from disk.)
//
// # Impressions and retention
//
// Impressions and outcomes (store.ImpressionStore) are kept per user in
// the imp: and out: sorted sets. A member is the whole record, which
// starts with the impression's ID and is canonical, so members are unique
// and an impression or outcome written twice is one member. Each
// AppendImpressions or AppendOutcomes is one script for all the call's
// users (atomic, like every write); they are not announced on the change
// stream, since no replica holds them in memory.
//
// Options.ImpressionRetention (default store.DefaultImpressionRetention)
// bounds them three ways: every write removes the members of the sets it
// writes that are scored before the cutoff (ZREMRANGEBYSCORE) and sets the
// sets to expire a retention later (PEXPIRE, refreshed by each write), so
// a user who stops being shown answers leaves nothing behind; impusers
// loses the users whose latest impression is past the retention; and
// reads skip what is older than the retention but still stored. Scores
// are milliseconds, so reads select by score and then check each
// record's exact time. ScanImpressions finds its users in impusers (with
// ZSCAN, in pages), never by scanning the keyspace.
//
// The store assumes one Redis primary (not Redis Cluster): the scripts touch
// keys of several users at once.
package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/serving/store"
)

// Options configures a Store. The zero value is usable: every field has a
// default.
type Options struct {
	// Prefix starts every key (default "recserve:"), so several stores can
	// share a Redis database.
	Prefix string
	// Timeout bounds dialling Redis and each read and write on a
	// connection (default 1s): a Redis that is down or stuck fails a call
	// with store.ErrUnavailable after about this long rather than hanging.
	Timeout time.Duration
	// PoolSize is the number of connections to Redis (default: go-redis's,
	// 10 per CPU).
	PoolSize int
	// MaxChanges is the approximate number of entries the change stream
	// keeps (default 100000). A follower further behind resyncs.
	MaxChanges int
	// DeletionRetention is how long a deleted user's change entries (its
	// events and the deletion) stay on the change stream (default 1
	// minute) before they are purged and no trace of the user remains; a
	// follower lagging further resyncs. Negative purges them at once (every
	// follower that had not read them resyncs).
	DeletionRetention time.Duration
	// FollowBlock is how long one XREAD BLOCK of Follow waits (default
	// 1s); it bounds how long Follow takes to return after its ctx ends.
	FollowBlock time.Duration
	// BatchSize is how many items one UpsertItems or DeleteItems script
	// writes at most (default 1000): a larger catalogue write is split, so
	// that one script does not stall Redis for long. (Append is never
	// split: it is atomic.)
	BatchSize int
	// ImpressionRetention is how long impressions and outcomes are kept
	// (by their times; default store.DefaultImpressionRetention). It must
	// exceed the longest attribution window: see
	// store.DefaultImpressionRetention.
	ImpressionRetention time.Duration
}

func (o Options) withDefaults() Options {
	if o.Prefix == "" {
		o.Prefix = "recserve:"
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Second
	}
	if o.MaxChanges <= 0 {
		o.MaxChanges = 100000
	}
	if o.DeletionRetention < 0 {
		o.DeletionRetention = 0
	} else if o.DeletionRetention == 0 {
		o.DeletionRetention = time.Minute
	}
	if o.FollowBlock <= 0 {
		o.FollowBlock = time.Second
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	if o.ImpressionRetention <= 0 {
		o.ImpressionRetention = store.DefaultImpressionRetention
	}
	return o
}

// Store is a store.Backend and store.Follower on Redis. It is safe for
// concurrent use; Follow runs one at a time.
type Store struct {
	rdb     *redis.Client
	opts    Options
	replica string // random ID marking this Store's change entries
	// keys of the common script KEYS (ids, users, changes, seq, floor,
	// deletions) and the others.
	common   []string
	items    string
	seeded   string
	userPfx  string
	changes  string
	maxlen   string
	retainMS string
	// impPfx and outPfx start the users' impression and outcome sets;
	// impUsers is the set of users with impressions.
	impPfx, outPfx, impUsers string

	mu sync.Mutex
	// pos is where the next Follow starts: the last change sequence number
	// the caller has, from Open, the last successful Scan before Follow, or
	// where the last Follow stopped.
	pos uint64
	// following is set while Follow runs; resyncing while Follow's apply
	// handles a Resync, when a Scan moves pos (scanned) instead of being an
	// export.
	following, resyncing bool
	scanned              bool
	scanPos              uint64
}

var (
	_ store.Backend         = (*Store)(nil)
	_ store.Follower        = (*Store)(nil)
	_ store.ImpressionStore = (*Store)(nil)
)

// Open connects to the Redis at url (redis://[user:password@]host:port/db,
// as go-redis ParseURL reads it), checks that it answers, and records the
// change stream's position, from which Follow starts unless a Scan moves it.
// The caller must Close the Store.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	ro, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redisstore: %w", err)
	}
	ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout = opts.Timeout, opts.Timeout, opts.Timeout
	ro.PoolTimeout = opts.Timeout
	ro.ContextTimeoutEnabled = true
	// No retries: a retried Append whose first attempt was applied would
	// store its ID-less events twice. The caller retries, with event IDs.
	ro.MaxRetries = -1
	ro.DialerRetries = 1
	ro.DisableIdentity = true
	if opts.PoolSize > 0 {
		ro.PoolSize = opts.PoolSize
	}
	var rb [16]byte
	_, _ = rand.Read(rb[:])
	p := opts.Prefix
	s := &Store{
		rdb:      redis.NewClient(ro),
		opts:     opts,
		replica:  hex.EncodeToString(rb[:]),
		common:   []string{p + "ids", p + "users", p + "changes", p + "seq", p + "floor", p + "deletions"},
		items:    p + "items",
		seeded:   p + "seeded",
		userPfx:  p + "u:",
		changes:  p + "changes",
		maxlen:   fmt.Sprint(opts.MaxChanges),
		retainMS: fmt.Sprint(opts.DeletionRetention.Milliseconds()),
		impPfx:   p + "imp:",
		outPfx:   p + "out:",
		impUsers: p + "impusers",
	}
	seq, _, err := s.position(ctx)
	if err != nil {
		s.rdb.Close()
		return nil, fmt.Errorf("redisstore: open %s: %w", ro.Addr, err)
	}
	s.pos = seq
	return s, nil
}

// Close closes the connections to Redis.
func (s *Store) Close() error {
	if err := s.rdb.Close(); err != nil {
		return fmt.Errorf("redisstore: close: %w", err)
	}
	return nil
}

// ReplicaID returns the random ID this Store writes as the origin of its
// change entries; Follow skips entries with it.
func (s *Store) ReplicaID() string { return s.replica }

func (s *Store) userKey(userID string) string { return s.userPfx + userID }

// keys returns the common script keys followed by more.
func (s *Store) keys(more ...string) []string {
	k := make([]string, 0, len(s.common)+len(more))
	k = append(k, s.common...)
	return append(k, more...)
}

// position returns the last change sequence number and the floor.
func (s *Store) position(ctx context.Context) (seq, floor uint64, err error) {
	v, err := positionScript.Run(ctx, s.rdb, s.keys(), s.replica, s.maxlen).Uint64Slice()
	if err != nil {
		return 0, 0, wrap(err)
	}
	if len(v) != 2 {
		return 0, 0, fmt.Errorf("redisstore: position: %d values, want 2", len(v))
	}
	return v[0], v[1], nil
}

// wrap marks err as store.ErrUnavailable when it says Redis cannot be
// reached or cannot serve (network errors, timeouts, a Redis loading its
// data, out of memory, read-only, unable to persist). Context errors pass
// through as they are.
func wrap(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if unavailable(err) {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

func unavailable(err error) bool {
	var re redis.Error
	if errors.As(err, &re) {
		return redis.IsLoadingError(err) || redis.IsReadOnlyError(err) || redis.IsOOMError(err) ||
			redis.IsMasterDownError(err) || redis.IsTryAgainError(err) || redis.IsClusterDownError(err) ||
			redis.IsNoReplicasError(err) || redis.IsMaxClientsError(err) ||
			strings.HasPrefix(re.Error(), "MISCONF") || strings.HasPrefix(re.Error(), "BUSY")
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, redis.ErrClosed) || errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, redis.ErrPoolExhausted)
}

// Append stores the events that are new, atomically (one script, however
// many events: keep batches to a few thousand so that one script does not
// stall Redis for other replicas), deduplicated by ID against the store and
// within the batch, and returns the stored events in order. Events whose ID
// is empty are always stored. The stored events are announced to
// followers, one change entry per user.
func (s *Store) Append(ctx context.Context, events []store.Event) ([]store.Event, error) {
	if len(events) == 0 {
		return nil, nil
	}
	stored, err := s.appendBatch(ctx, events)
	if err != nil {
		return nil, fmt.Errorf("redisstore: append: %w", err)
	}
	return stored, nil
}

func (s *Store) appendBatch(ctx context.Context, events []store.Event) ([]store.Event, error) {
	// Repeats within the batch are settled here (the first wins), so the
	// script can take the events grouped by user.
	type group struct {
		user string
		idx  []int // into events, in batch order
	}
	var groups []group
	userIdx := make(map[string]int)
	seenID := make(map[string]struct{}, len(events))
	for i := range events {
		e := &events[i]
		if e.ID != "" {
			if _, dup := seenID[e.ID]; dup {
				continue
			}
			seenID[e.ID] = struct{}{}
		}
		j, ok := userIdx[e.UserID]
		if !ok {
			j = len(groups)
			userIdx[e.UserID] = j
			groups = append(groups, group{user: e.UserID})
		}
		groups[j].idx = append(groups[j].idx, i)
	}
	// Encode every record into one buffer first (it moves as it grows),
	// then slice it.
	var buf []byte
	ends := make([]int, 0, len(events))
	for _, g := range groups {
		for _, i := range g.idx {
			buf = store.AppendEvent(buf, &events[i])
			ends = append(ends, len(buf))
		}
	}
	keys := s.keys()
	args := make([]any, 0, 3+2*len(groups)+2*len(ends))
	args = append(args, s.replica, s.maxlen, len(groups))
	r, start := 0, 0
	for _, g := range groups {
		keys = append(keys, s.userKey(g.user))
		args = append(args, g.user, len(g.idx))
		for _, i := range g.idx {
			args = append(args, events[i].ID)
		}
		for range g.idx {
			args = append(args, buf[start:ends[r]])
			start = ends[r]
			r++
		}
	}
	flags, err := appendScript.Run(ctx, s.rdb, keys, args...).Text()
	if err != nil {
		return nil, wrap(err)
	}
	stored := make([]bool, len(events))
	k := 0
	for _, g := range groups {
		for _, i := range g.idx {
			if k < len(flags) {
				stored[i] = flags[k] == '1'
			}
			k++
		}
	}
	if len(flags) != k {
		return nil, fmt.Errorf("script answered %d flags for %d events", len(flags), k)
	}
	out := make([]store.Event, 0, len(events))
	for i := range events {
		if stored[i] {
			out = append(out, events[i])
		}
	}
	return out, nil
}

// UpsertItems stores whole items, replacing any with the same ID, in
// batches of Options.BatchSize, and announces them to followers.
func (s *Store) UpsertItems(ctx context.Context, items []dataset.Item) error {
	for len(items) > 0 {
		n := min(len(items), s.opts.BatchSize)
		var payload []byte
		args := []any{s.replica, s.maxlen, nil}
		for i := range items[:n] {
			start := len(payload)
			payload = store.AppendItem(payload, &items[i])
			args = append(args, items[i].ID, payload[start:])
		}
		args[2] = payload
		if err := upsertScript.Run(ctx, s.rdb, s.keys(s.items), args...).Err(); err != nil {
			return fmt.Errorf("redisstore: upsert items: %w", wrap(err))
		}
		items = items[n:]
	}
	return nil
}

// DeleteItems removes items, in batches of Options.BatchSize, announces the
// deletions to followers and returns how many of the items existed.
func (s *Store) DeleteItems(ctx context.Context, ids []string) (int, error) {
	total := 0
	for len(ids) > 0 {
		n := min(len(ids), s.opts.BatchSize)
		var payload []byte
		args := []any{s.replica, s.maxlen, nil}
		for _, id := range ids[:n] {
			payload = appendID(payload, id)
			args = append(args, id)
		}
		args[2] = payload
		k, err := deleteItemsScript.Run(ctx, s.rdb, s.keys(s.items), args...).Int()
		if err != nil {
			return total, fmt.Errorf("redisstore: delete items: %w", wrap(err))
		}
		total += k
		ids = ids[n:]
	}
	return total, nil
}

// DeleteUser removes, in one script, the user's events, their idempotency
// keys, the user's entry in the user set, and the user's impressions,
// outcomes and entry in impusers, announces the deletion to followers
// and returns the number of events removed. The change entries that
// carried the user's events go with the deletion entry after
// Options.DeletionRetention.
func (s *Store) DeleteUser(ctx context.Context, userID string) (int, error) {
	keys := s.keys(s.userKey(userID), s.impKey(userID), s.outKey(userID), s.impUsers)
	n, err := deleteUserScript.Run(ctx, s.rdb, keys, s.replica, s.maxlen, userID, s.retainMS).Int()
	if err != nil {
		return 0, fmt.Errorf("redisstore: delete user: %w", wrap(err))
	}
	return n, nil
}

// UserEvents returns up to limit of the user's most recent events, newest
// first, and how many the store holds, read in one transaction.
func (s *Store) UserEvents(ctx context.Context, userID string, limit int) ([]store.Event, int, error) {
	key := s.userKey(userID)
	var llen *redis.IntCmd
	var lrange *redis.StringSliceCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		llen = p.LLen(ctx, key)
		if limit > 0 {
			lrange = p.LRange(ctx, key, -int64(limit), -1)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("redisstore: user events: %w", wrap(err))
	}
	total := int(llen.Val())
	if lrange == nil {
		return nil, total, nil
	}
	els := lrange.Val()
	out := make([]store.Event, 0, len(els))
	for i := len(els) - 1; i >= 0; i-- {
		_, e, err := decodeElem(userID, els[i])
		if err != nil {
			return nil, 0, fmt.Errorf("redisstore: user events of %q: %w", userID, err)
		}
		out = append(out, e)
	}
	return out, total, nil
}

// Seeded reports whether MarkSeeded was called on this Redis (by any
// replica).
func (s *Store) Seeded(ctx context.Context) (bool, error) {
	n, err := s.rdb.Exists(ctx, s.seeded).Result()
	if err != nil {
		return false, fmt.Errorf("redisstore: seeded: %w", wrap(err))
	}
	return n == 1, nil
}

// MarkSeeded records that seeding finished, for every replica.
func (s *Store) MarkSeeded(ctx context.Context) error {
	if err := s.rdb.Set(ctx, s.seeded, "1", 0).Err(); err != nil {
		return fmt.Errorf("redisstore: mark seeded: %w", wrap(err))
	}
	return nil
}
