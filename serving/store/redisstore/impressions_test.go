package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recserve/recserve/internal/redistest"
	"github.com/recserve/recserve/serving/store"
)

// raw returns a plain client of srv, to look at and damage the keys.
func raw(t *testing.T, srv *redistest.Server) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// TestImpressionTrimAndExpiry checks what each write does to the sets it
// touches: members past the retention go, the sets expire a retention
// later, impusers keeps each user's latest impression and loses the users
// past the retention.
func TestImpressionTrimAndExpiry(t *testing.T) {
	srv := redistest.Start(t)
	const retention = time.Hour
	s := open(t, srv, Options{ImpressionRetention: retention})
	c := raw(t, srv)
	ctx := context.Background()
	now := time.Now()
	old := now.Add(-2 * time.Hour)
	// What earlier writes left that has aged past the retention.
	oldImp := store.AppendImpression(nil, &store.Impression{ID: "old", Time: old})
	oldOut := store.AppendOutcome(nil, &store.Outcome{ImpressionID: "old", Time: old})
	c.ZAdd(ctx, "recserve:imp:u", redis.Z{Score: float64(old.UnixMilli()), Member: oldImp})
	c.ZAdd(ctx, "recserve:out:u", redis.Z{Score: float64(old.UnixMilli()), Member: oldOut})
	c.ZAdd(ctx, "recserve:impusers", redis.Z{Score: float64(old.UnixMilli()), Member: "gone"})

	latest := now.Add(-time.Minute)
	if err := s.AppendImpressions(ctx, []store.Impression{
		{ID: "r1", UserID: "u", Time: latest},
		{ID: "r0", UserID: "u", Time: latest.Add(-time.Minute)},
	}); err != nil {
		t.Fatal(err)
	}
	// An older impression written later leaves the user's latest alone.
	if err := s.AppendImpressions(ctx, []store.Impression{{ID: "r-1", UserID: "u", Time: latest.Add(-2 * time.Minute)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendOutcomes(ctx, []store.Outcome{{ImpressionID: "r1", UserID: "u", Time: now}}); err != nil {
		t.Fatal(err)
	}

	for key, want := range map[string]int64{"recserve:imp:u": 3, "recserve:out:u": 1} {
		if n := c.ZCard(ctx, key).Val(); n != want {
			t.Errorf("ZCARD %s = %d; want %d (the old member removed)", key, n, want)
		}
		if ttl := c.PTTL(ctx, key).Val(); ttl <= retention-time.Minute || ttl > retention {
			t.Errorf("PTTL %s = %v; want about %v", key, ttl, retention)
		}
	}
	users, err := c.ZRangeWithScores(ctx, "recserve:impusers", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 1 || users[0].Member != "u" || int64(users[0].Score) != latest.UnixMilli() {
		t.Errorf("impusers = %v; want u alone, scored %s (its latest impression)", users, ms(latest))
	}
}

// TestImpressionKeysExpire checks that a user's sets disappear from Redis
// once the retention has passed since their last write.
func TestImpressionKeysExpire(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv, Options{ImpressionRetention: 200 * time.Millisecond})
	c := raw(t, srv)
	ctx := context.Background()
	now := time.Now()
	if err := s.AppendImpressions(ctx, []store.Impression{{ID: "r1", UserID: "u", Time: now}}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendOutcomes(ctx, []store.Outcome{{ImpressionID: "r1", UserID: "u", Time: now}}); err != nil {
		t.Fatal(err)
	}
	keys := []string{"recserve:imp:u", "recserve:out:u"}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := c.Exists(ctx, keys...).Val()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5 s after a write under a 200 ms retention, %d of %v exist; want none", n, keys)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDeleteUserImpressionKeys checks that DeleteUser leaves no key and no
// impusers member of the user.
func TestDeleteUserImpressionKeys(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv, Options{})
	c := raw(t, srv)
	ctx := context.Background()
	now := time.Now()
	for _, u := range []string{"a", "ab"} {
		if err := s.AppendImpressions(ctx, []store.Impression{{ID: "r-" + u, UserID: u, Time: now}}); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendOutcomes(ctx, []store.Outcome{{ImpressionID: "r-" + u, UserID: u, Time: now}}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.DeleteUser(ctx, "a"); err != nil || n != 0 {
		t.Fatalf("DeleteUser(a) = %d, %v; want 0, nil", n, err)
	}
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k == "recserve:imp:a" || k == "recserve:out:a" {
			t.Errorf("after DeleteUser(a), key %q exists", k)
		}
	}
	if err := c.ZScore(ctx, "recserve:impusers", "a").Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("ZSCORE impusers a after DeleteUser = %v; want no member", err)
	}
	if c.Exists(ctx, "recserve:imp:ab", "recserve:out:ab").Val() != 2 || c.ZScore(ctx, "recserve:impusers", "ab").Err() != nil {
		t.Errorf("after DeleteUser(a), user ab's keys or impusers member are gone; want them kept")
	}
}

// TestScanImpressionsPages checks ScanImpressions across many ZSCAN pages
// and read chunks: a user with more impressions than a chunk, users over
// several pages, a user in impusers whose set has expired (no call), and
// users whose latest impression is before the range (not read).
func TestScanImpressionsPages(t *testing.T) {
	srv := redistest.Start(t, redistest.Args("--appendfsync", "no"))
	s := open(t, srv, Options{})
	c := raw(t, srv)
	ctx := context.Background()
	base := time.Now().Add(-time.Hour)
	const users = 1500
	var imps []store.Impression
	want := map[string]int{}
	flush := func() {
		if err := s.AppendImpressions(ctx, imps); err != nil {
			t.Fatal(err)
		}
		imps = imps[:0]
	}
	for i := range users {
		u := fmt.Sprintf("user-%d", i)
		imps = append(imps, store.Impression{ID: "r" + u, UserID: u, Time: base.Add(time.Duration(i) * time.Millisecond)})
		want[u] = 1
		if len(imps) == 500 {
			flush()
		}
	}
	for i := range scanImpressionsChunk + 5 {
		imps = append(imps, store.Impression{ID: fmt.Sprintf("big-%d", i), UserID: "big", Time: base.Add(time.Duration(i) * time.Microsecond)})
		if len(imps) == 5000 {
			flush()
		}
	}
	want["big"] = scanImpressionsChunk + 5
	// Before the range: not reported.
	imps = append(imps, store.Impression{ID: "early", UserID: "early", Time: base.Add(-time.Minute)})
	flush()
	if err := s.AppendOutcomes(ctx, []store.Outcome{{ImpressionID: "big-7", UserID: "big", Time: base}}); err != nil {
		t.Fatal(err)
	}
	c.ZAdd(ctx, "recserve:impusers", redis.Z{Score: float64(base.UnixMilli()), Member: "expired"})

	got := map[string]int{}
	var bigOuts int
	err := s.ScanImpressions(ctx, base, base.Add(time.Hour), func(u string, imps []store.Impression, outs []store.Outcome) error {
		if _, dup := got[u]; dup {
			return fmt.Errorf("user %q reported twice", u)
		}
		for i := 1; i < len(imps); i++ {
			if imps[i].Time.Before(imps[i-1].Time) {
				return fmt.Errorf("user %q: impressions not oldest first", u)
			}
		}
		got[u] = len(imps)
		if u == "big" {
			bigOuts = len(outs)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ScanImpressions() error = %v", err)
	}
	if len(got) != len(want) {
		t.Errorf("ScanImpressions() reported %d users; want %d", len(got), len(want))
	}
	for u, n := range want {
		if got[u] != n {
			t.Errorf("ScanImpressions() gave user %q %d impressions; want %d", u, got[u], n)
		}
	}
	if bigOuts != 1 {
		t.Errorf("ScanImpressions() gave user big %d outcomes; want 1", bigOuts)
	}
}

// TestCorruptImpressionMembers checks that a member no encoder wrote fails
// the reads with store.ErrCorrupt.
func TestCorruptImpressionMembers(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv, Options{})
	c := raw(t, srv)
	ctx := context.Background()
	now := time.Now()
	if err := s.AppendImpressions(ctx, []store.Impression{{ID: "r1", UserID: "u", Time: now}}); err != nil {
		t.Fatal(err)
	}
	rec := store.AppendImpression(nil, &store.Impression{ID: "r2", Time: now})
	tests := []struct {
		name, key string
		member    []byte
	}{
		{"garbage impression", "recserve:imp:u", []byte("\x41garbage")},
		{"impression with a trailing byte", "recserve:imp:u", append(rec, 0)},
		{"garbage outcome", "recserve:out:u", []byte("\xc1\x05")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.ZAdd(ctx, tt.key, redis.Z{Score: float64(now.UnixMilli()), Member: tt.member})
			defer c.ZRem(ctx, tt.key, tt.member)
			if tt.key == "recserve:imp:u" {
				if _, err := s.UserImpressions(ctx, "u", time.Time{}); !errors.Is(err, store.ErrCorrupt) {
					t.Errorf("UserImpressions() error = %v; want %v", err, store.ErrCorrupt)
				}
			}
			err := s.ScanImpressions(ctx, time.Time{}, now.Add(time.Hour), func(string, []store.Impression, []store.Outcome) error { return nil })
			if !errors.Is(err, store.ErrCorrupt) {
				t.Errorf("ScanImpressions() error = %v; want %v", err, store.ErrCorrupt)
			}
		})
	}
}

// TestUsersImpressions: the pipelined read of many users equals their
// UserImpressions one by one, users without impressions included.
func TestUsersImpressions(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv, Options{})
	ctx := context.Background()
	now := time.Now().UTC()
	var imps []store.Impression
	for u := range 3 {
		for i := range 4 {
			imps = append(imps, store.Impression{ID: fmt.Sprintf("u%d-r%d", u, i), UserID: fmt.Sprintf("u%d", u),
				Time: now.Add(time.Duration(i-4) * time.Minute), Items: []string{"a", "b"}})
		}
	}
	if err := s.AppendImpressions(ctx, imps); err != nil {
		t.Fatal(err)
	}
	users := []string{"u0", "nobody", "u1", "u2"}
	since := []time.Time{{}, {}, now.Add(-150 * time.Second), now}
	got, err := s.UsersImpressions(ctx, users, since)
	if err != nil {
		t.Fatal(err)
	}
	for i, u := range users {
		want, err := s.UserImpressions(ctx, u, since[i])
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got[i]) != fmt.Sprint(want) {
			t.Errorf("%s since %v: %v; UserImpressions gives %v", u, since[i], got[i], want)
		}
	}
	if len(got[0]) != 4 || len(got[1]) != 0 || len(got[2]) != 2 || len(got[3]) != 0 {
		t.Errorf("counts %d %d %d %d; want 4 0 2 0", len(got[0]), len(got[1]), len(got[2]), len(got[3]))
	}
}
