package redisstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recserve/recserve/serving/store"
)

// Impressions and outcomes live in per-user sorted sets of records (the
// package doc lists the keys). They are not announced on the change
// stream: no replica keeps them in memory, every read goes to Redis.

// scanImpressionsChunk is about how many impressions ScanImpressions reads
// in one pipeline: users are read together until their impressions in the
// range add up to it (a user with more is read alone), which bounds its
// memory by the larger of this and one user's impressions.
const scanImpressionsChunk = 10_000

// luaZAppend is the part both append scripts share: zappend adds a user's
// n members (score and record pairs in ARGV from first) to its sorted set,
// at most 1000 per ZADD (Lua's unpack has a stack limit), removes those
// scored before the retention's cutoff, and sets the key to expire a
// retention after this write (all of its members are older than the
// retention by then, unless their times were in the future).
const luaZAppend = `
local CUTOFF, TTL = '(' .. ARGV[1], ARGV[2]
local function zappend(key, first, n)
  for c = 0, n - 1, 1000 do
    local last = first + 2 * math.min(c + 999, n - 1) + 1
    redis.call('ZADD', key, unpack(ARGV, first + 2 * c, last))
  end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', CUTOFF)
  redis.call('PEXPIRE', key, TTL)
end
`

// appendImpressionsScript stores impressions. KEYS[1] is the impusers set,
// KEYS[2..] the users' impression sets. ARGV[1] is the cutoff in Unix
// milliseconds (members scored below it are removed), ARGV[2] the
// retention in milliseconds; then for each user its ID, its latest
// impression's score, its number of impressions n and n score and record
// pairs. impusers keeps each user's latest score (ZADD GT) and loses the
// users whose latest impression is past the retention.
var appendImpressionsScript = redis.NewScript(luaZAppend + `
local p = 3
for j = 2, #KEYS do
  local n = tonumber(ARGV[p + 2])
  zappend(KEYS[j], p + 3, n)
  redis.call('ZADD', KEYS[1], 'GT', ARGV[p + 1], ARGV[p])
  p = p + 3 + 2 * n
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', CUTOFF)
return 0
`)

// appendOutcomesScript stores outcomes. KEYS are the users' outcome sets.
// ARGV[1] and ARGV[2] are appendImpressionsScript's; then for each user
// its number of outcomes n and n score and record pairs.
var appendOutcomesScript = redis.NewScript(luaZAppend + `
local p = 3
for j = 1, #KEYS do
  local n = tonumber(ARGV[p])
  zappend(KEYS[j], p + 1, n)
  p = p + 1 + 2 * n
end
return 0
`)

func (s *Store) impKey(userID string) string { return s.impPfx + userID }
func (s *Store) outKey(userID string) string { return s.outPfx + userID }

// cutoff returns the oldest time a read returns: older impressions and
// outcomes are past the retention, whether or not Redis removed them yet.
func (s *Store) cutoff() time.Time { return time.Now().Add(-s.opts.ImpressionRetention) }

// score is the sorted-set score of a time: Unix milliseconds, rounded
// down (before 1970 too), so that t >= u implies score(t) >= score(u).
// Reads select by score and then check the record's exact time.
func score(t time.Time) int64 { return t.UnixMilli() }

// userGroups groups the indexes 0..n-1 by the user userOf gives each,
// users in order of first appearance, skipping "".
func userGroups(n int, userOf func(int) string) (users []string, groups [][]int) {
	at := make(map[string]int)
	for i := range n {
		u := userOf(i)
		if u == "" {
			continue
		}
		j, ok := at[u]
		if !ok {
			j = len(users)
			at[u] = j
			users = append(users, u)
			groups = append(groups, nil)
		}
		groups[j] = append(groups[j], i)
	}
	return users, groups
}

// AppendImpressions implements store.ImpressionStore: one script adds the
// impressions of identified users to their sets, trims what is past the
// retention, refreshes the sets' expiry and records the users in
// impusers. The same impression stored twice is one member.
func (s *Store) AppendImpressions(ctx context.Context, imps []store.Impression) error {
	users, groups := userGroups(len(imps), func(i int) string { return imps[i].UserID })
	if len(users) == 0 {
		return nil
	}
	// Encode every record into one buffer first (it moves as it grows),
	// then slice it.
	var buf []byte
	ends := make([]int, 0, len(imps))
	for _, g := range groups {
		for _, i := range g {
			buf = store.AppendImpression(buf, &imps[i])
			ends = append(ends, len(buf))
		}
	}
	keys := make([]string, 0, 1+len(users))
	keys = append(keys, s.impUsers)
	args := make([]any, 0, 2+3*len(users)+2*len(ends))
	args = append(args, score(s.cutoff()), s.opts.ImpressionRetention.Milliseconds())
	r, start := 0, 0
	for j, g := range groups {
		keys = append(keys, s.impKey(users[j]))
		latest := imps[g[0]].Time
		for _, i := range g[1:] {
			latest = later(latest, imps[i].Time)
		}
		args = append(args, users[j], score(latest), len(g))
		for _, i := range g {
			args = append(args, score(imps[i].Time), buf[start:ends[r]])
			start = ends[r]
			r++
		}
	}
	if err := appendImpressionsScript.Run(ctx, s.rdb, keys, args...).Err(); err != nil {
		return fmt.Errorf("redisstore: append impressions: %w", wrap(err))
	}
	return nil
}

// AppendOutcomes implements store.ImpressionStore like AppendImpressions,
// in the users' outcome sets (an outcome without a UserID is skipped: it
// could name no stored impression). The same outcome stored twice is one
// member, so a retried call counts nothing twice.
func (s *Store) AppendOutcomes(ctx context.Context, outs []store.Outcome) error {
	users, groups := userGroups(len(outs), func(i int) string { return outs[i].UserID })
	if len(users) == 0 {
		return nil
	}
	var buf []byte
	ends := make([]int, 0, len(outs))
	for _, g := range groups {
		for _, i := range g {
			buf = store.AppendOutcome(buf, &outs[i])
			ends = append(ends, len(buf))
		}
	}
	keys := make([]string, 0, len(users))
	args := make([]any, 0, 2+len(users)+2*len(ends))
	args = append(args, score(s.cutoff()), s.opts.ImpressionRetention.Milliseconds())
	r, start := 0, 0
	for j, g := range groups {
		keys = append(keys, s.outKey(users[j]))
		args = append(args, len(g))
		for _, i := range g {
			args = append(args, score(outs[i].Time), buf[start:ends[r]])
			start = ends[r]
			r++
		}
	}
	if err := appendOutcomesScript.Run(ctx, s.rdb, keys, args...).Err(); err != nil {
		return fmt.Errorf("redisstore: append outcomes: %w", wrap(err))
	}
	return nil
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// byTime orders impressions oldest first, then by ID, as Pebble's keys do.
func byTime(a, b store.Impression) int {
	return cmp.Or(a.Time.Compare(b.Time), strings.Compare(a.ID, b.ID))
}

// decodeImpressions decodes a user's impression set members, keeping those
// in [since, until) (until zero: no bound), oldest first.
func decodeImpressions(userID string, members []string, since, until time.Time) ([]store.Impression, error) {
	out := make([]store.Impression, 0, len(members))
	for _, m := range members {
		imp, n, err := store.DecodeImpression(userID, m)
		if err == nil && n != len(m) {
			err = fmt.Errorf("%w: %d bytes after the impression record", store.ErrCorrupt, len(m)-n)
		}
		if err != nil {
			return nil, fmt.Errorf("impression of user %q: %w", userID, err)
		}
		if !imp.Time.Before(since) && (until.IsZero() || imp.Time.Before(until)) {
			out = append(out, imp)
		}
	}
	// Members of one score sort by their bytes: order by time.
	slices.SortFunc(out, byTime)
	return out, nil
}

// UserImpressions implements store.ImpressionStore with one
// ZREVRANGEBYSCORE from since (or the retention's cutoff, if later).
func (s *Store) UserImpressions(ctx context.Context, userID string, since time.Time) ([]store.Impression, error) {
	since = later(since, s.cutoff())
	members, err := s.rdb.ZRangeArgs(ctx, s.newestSince(userID, since)).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: user impressions: %w", wrap(err))
	}
	out, err := decodeImpressions(userID, members, since, time.Time{})
	if err != nil {
		return nil, fmt.Errorf("redisstore: user impressions: %w", err)
	}
	slices.Reverse(out)
	return out, nil
}

// newestSince is the ZRANGE of a user's impressions from since on, newest
// first.
func (s *Store) newestSince(userID string, since time.Time) redis.ZRangeArgs {
	return redis.ZRangeArgs{Key: s.impKey(userID), Start: "+inf", Stop: strconv.FormatInt(score(since), 10), ByScore: true, Rev: true}
}

// UsersImpressions implements store.ImpressionBatchReader: the
// UserImpressions of many users in one pipeline, one round trip, which is
// what keeps attributing a Track batch of many users' events cheap.
func (s *Store) UsersImpressions(ctx context.Context, users []string, since []time.Time) ([][]store.Impression, error) {
	cutoff := s.cutoff()
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringSliceCmd, len(users))
	from := make([]time.Time, len(users))
	for i, u := range users {
		from[i] = later(since[i], cutoff)
		cmds[i] = pipe.ZRangeArgs(ctx, s.newestSince(u, from[i]))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redisstore: users' impressions: %w", wrap(err))
	}
	out := make([][]store.Impression, len(users))
	for i, c := range cmds {
		members, err := c.Result()
		if err != nil {
			return nil, fmt.Errorf("redisstore: users' impressions: %w", wrap(err))
		}
		if len(members) == 0 {
			continue
		}
		imps, err := decodeImpressions(users[i], members, from[i], time.Time{})
		if err != nil {
			return nil, fmt.Errorf("redisstore: users' impressions: %w", err)
		}
		slices.Reverse(imps)
		out[i] = imps
	}
	return out, nil
}

// ScanImpressions implements store.ImpressionStore without scanning the
// keyspace: it walks impusers with ZSCAN (skipping users whose latest
// impression is before since), counts each page's users' impressions in
// the range in one pipeline, and reads them, with their outcomes, in
// pipelines of about scanImpressionsChunk impressions. Its memory is the
// IDs of the users seen (ZSCAN may return a member twice) and one chunk
// of impressions. The slices it passes fn are fn's to keep. It stops at
// fn's first error or when ctx ends, and returns that error.
//
// It reads no consistent snapshot: impressions written while it runs may
// or may not be reported.
func (s *Store) ScanImpressions(ctx context.Context, since, until time.Time, fn func(userID string, imps []store.Impression, outs []store.Outcome) error) error {
	if err := s.scanImpressions(ctx, since, until, fn); err != nil {
		return fmt.Errorf("redisstore: scan impressions: %w", err)
	}
	return nil
}

func (s *Store) scanImpressions(ctx context.Context, since, until time.Time, fn func(string, []store.Impression, []store.Outcome) error) error {
	cutoff := s.cutoff()
	since = later(since, cutoff)
	if !since.Before(until) {
		return ctx.Err()
	}
	lo, hi := strconv.FormatInt(score(since), 10), strconv.FormatInt(score(until), 10)
	cutoffScore := strconv.FormatInt(score(cutoff), 10)
	seen := make(map[string]struct{})
	var cursor uint64
	for {
		kv, next, err := s.rdb.ZScan(ctx, s.impUsers, cursor, "", scanCount).Result()
		if err != nil {
			return wrap(err)
		}
		var users []string
		for i := 0; i+1 < len(kv); i += 2 {
			u := kv[i]
			if _, dup := seen[u]; dup {
				continue
			}
			seen[u] = struct{}{}
			if latest, err := strconv.ParseFloat(kv[i+1], 64); err != nil || latest >= float64(score(since)) {
				users = append(users, u)
			}
		}
		if err := s.scanUsers(ctx, users, lo, hi, cutoffScore, since, until, cutoff, fn); err != nil {
			return err
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// scanUsers reads and reports the impressions of users in [lo, hi] by
// score, [since, until) by time, and their outcomes from the cutoff on.
func (s *Store) scanUsers(ctx context.Context, users []string, lo, hi, cutoffScore string, since, until, cutoff time.Time, fn func(string, []store.Impression, []store.Outcome) error) error {
	if len(users) == 0 {
		return nil
	}
	p := s.rdb.Pipeline()
	counts := make([]*redis.IntCmd, len(users))
	for i, u := range users {
		counts[i] = p.ZCount(ctx, s.impKey(u), lo, hi)
	}
	if _, err := p.Exec(ctx); err != nil {
		return wrap(err)
	}
	for len(users) > 0 {
		// The next chunk: users until their impressions reach the chunk
		// size, at least one.
		n, total := 0, int64(0)
		for n < len(users) && (n == 0 || total+counts[n].Val() <= scanImpressionsChunk) {
			total += counts[n].Val()
			n++
		}
		chunk := users[:n]
		chunkCounts := counts[:n]
		users, counts = users[n:], counts[n:]
		p := s.rdb.Pipeline()
		var read []string
		var imps, outs []*redis.StringSliceCmd
		for i, u := range chunk {
			if chunkCounts[i].Val() == 0 {
				continue
			}
			read = append(read, u)
			imps = append(imps, p.ZRangeByScore(ctx, s.impKey(u), &redis.ZRangeBy{Min: lo, Max: hi}))
			outs = append(outs, p.ZRangeByScore(ctx, s.outKey(u), &redis.ZRangeBy{Min: cutoffScore, Max: "+inf"}))
		}
		if len(read) == 0 {
			continue
		}
		if _, err := p.Exec(ctx); err != nil {
			return wrap(err)
		}
		for i, u := range read {
			if err := ctx.Err(); err != nil {
				return err
			}
			got, err := decodeImpressions(u, imps[i].Val(), since, until)
			if err != nil {
				return err
			}
			if len(got) == 0 {
				continue
			}
			o, err := attributed(u, outs[i].Val(), got, cutoff)
			if err != nil {
				return err
			}
			if err := fn(u, got, o); err != nil {
				return err
			}
		}
	}
	return nil
}

// attributed decodes a user's outcome set members and returns those at or
// after cutoff attributed to one of imps, oldest first.
func attributed(userID string, members []string, imps []store.Impression, cutoff time.Time) ([]store.Outcome, error) {
	if len(members) == 0 {
		return nil, nil
	}
	ids := make(map[string]struct{}, len(imps))
	for i := range imps {
		ids[imps[i].ID] = struct{}{}
	}
	var out []store.Outcome
	for _, m := range members {
		o, n, err := store.DecodeOutcome(userID, m)
		if err == nil && n != len(m) {
			err = fmt.Errorf("%w: %d bytes after the outcome record", store.ErrCorrupt, len(m)-n)
		}
		if err != nil {
			return nil, fmt.Errorf("outcome of user %q: %w", userID, err)
		}
		if _, ok := ids[o.ImpressionID]; ok && !o.Time.Before(cutoff) {
			out = append(out, o)
		}
	}
	slices.SortStableFunc(out, func(a, b store.Outcome) int { return a.Time.Compare(b.Time) })
	return out, nil
}
