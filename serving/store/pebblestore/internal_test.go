package pebblestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/serving/store"
)

func openT(t *testing.T, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%q) error = %v; want nil", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// sstContains reports whether any table file in dir holds b.
func sstContains(t *testing.T, dir string, b []byte) bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.sst"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, b) {
			return true
		}
	}
	return false
}

// dbContains reports whether any key or value a full iteration of the
// database reads holds b.
func dbContains(t *testing.T, db *pebble.DB, b []byte) bool {
	t.Helper()
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	found := false
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			t.Fatal(err)
		}
		found = found || bytes.Contains(it.Key(), b) || bytes.Contains(v, b)
	}
	return found
}

// TestDeleteUserLeavesNoBytes checks that after DeleteUser no read sees
// the user (events, impressions, outcomes), and that once compacted, no table file on disk holds the
// user's ID either. The same search before the deletion is the control:
// it must find the ID, or the test could not fail. (Write-ahead log
// segments and the MANIFEST are not searched: see the package doc.)
func TestDeleteUserLeavesNoBytes(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	ctx := t.Context()
	const user = "user-7f3a91c2-to-be-forgotten"
	var events []store.Event
	for i := range 50 {
		events = append(events,
			store.Event{ID: fmt.Sprintf("gone-%d", i), UserID: user, ItemID: "i1", Type: "view", Time: time.Unix(int64(i), 0)},
			store.Event{ID: fmt.Sprintf("kept-%d", i), UserID: "other", ItemID: "i2", Type: "view", Time: time.Unix(int64(i), 0)},
		)
	}
	if _, err := s.Append(ctx, events); err != nil {
		t.Fatal(err)
	}
	// Impressions and outcomes, whose records hold IDs only the deleted
	// user's keys carry.
	var imps []store.Impression
	var outs []store.Outcome
	for i := range 20 {
		for _, u := range []struct{ user, tag string }{{user, "gone-imp"}, {"other", "kept-imp"}} {
			id := fmt.Sprintf("%s-%d", u.tag, i)
			imps = append(imps, store.Impression{ID: id, UserID: u.user, Time: time.Now(), Items: []string{"i1"}})
			outs = append(outs, store.Outcome{ImpressionID: id, UserID: u.user, EventID: u.tag + "-out", Time: time.Now()})
		}
	}
	if err := s.AppendImpressions(ctx, imps); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendOutcomes(ctx, outs); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, probe := range []string{user, "gone-imp"} {
		if !dbContains(t, s.db, []byte(probe)) || !sstContains(t, dir, []byte(probe)) {
			t.Fatalf("before DeleteUser: %q not found in the database or its table files; the search cannot work", probe)
		}
	}

	if n, err := s.DeleteUser(ctx, user); err != nil || n != 50 {
		t.Fatalf("DeleteUser(%q) = %d, %v; want 50, nil", user, n, err)
	}
	for _, probe := range []string{user, "gone-"} {
		if dbContains(t, s.db, []byte(probe)) {
			t.Errorf("after DeleteUser: a full iteration finds %q; want nothing", probe)
		}
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Compact(ctx, []byte{0}, []byte{0xff}, false); err != nil {
		t.Fatal(err)
	}
	// Pebble deletes the compacted-away files in the background.
	s.db.TestOnlyWaitForCleaning()
	for _, probe := range []string{user, "gone-"} {
		if sstContains(t, dir, []byte(probe)) {
			t.Errorf("after DeleteUser and a full compaction: a table file holds %q; want none", probe)
		}
	}
	if !sstContains(t, dir, []byte("kept-")) {
		t.Errorf("after a full compaction: no table file holds the other user's events; want them kept")
	}
	// (The other user's impression IDs are not searched for: compression
	// may leave no literal copy of them. Reading them is the check.)
	if got, err := s.UserImpressions(ctx, "other", time.Time{}); err != nil || len(got) != 20 {
		t.Errorf("UserImpressions(other) after DeleteUser = %d impressions, %v; want 20, nil", len(got), err)
	}
}

// TestClosedWhileWriting closes the store while writers run: each call
// either succeeds or fails with store.ErrUnavailable, never panics.
func TestClosedWhileWriting(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 4*20)
	wrote := make(chan struct{}, 4*20)
	for w := range 4 {
		wg.Go(func() {
			for i := range 20 {
				e := store.Event{ID: fmt.Sprintf("%d-%d", w, i), UserID: "u", ItemID: "i", Type: "view", Time: time.Unix(1, 0)}
				if _, err := s.Append(t.Context(), []store.Event{e}); err != nil {
					errs <- err
				}
				wrote <- struct{}{}
			}
		})
	}
	<-wrote // close with writers running, after at least one write
	if err := s.Close(); err != nil {
		t.Errorf("Close() error = %v; want nil", err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("Append() racing Close() error = %v; want %v", err, store.ErrUnavailable)
		}
	}
	if _, err := s.Append(t.Context(), []store.Event{{ID: "late"}}); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Append() after Close() error = %v; want %v", err, store.ErrUnavailable)
	}
}

// TestOpenErrors checks that a directory Pebble cannot use is reported as
// unavailable, with the path.
func TestOpenErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	locked := t.TempDir()
	openT(t, locked, Options{})
	for _, dir := range []string{file, locked} {
		s, err := Open(dir, Options{})
		if err == nil {
			s.Close()
		}
		if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), dir) {
			t.Errorf("Open(%q) error = %v; want one wrapping %v and naming the directory", dir, err, store.ErrUnavailable)
		}
	}
}

// TestLogger checks Pebble's messages reach the configured slog.Logger
// and a fatal one panics instead of exiting the process.
func TestLogger(t *testing.T) {
	var buf bytes.Buffer
	l := newLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	l.Infof("flushed %d tables", 3)
	l.Errorf("background error: %s", "disk")
	for _, want := range []string{"level=INFO", "flushed 3 tables", "level=ERROR", "background error: disk", "component=pebble"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log = %q; want it to contain %q", buf.String(), want)
		}
	}
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "invariant") {
				t.Errorf("Fatalf() recovered %v; want a panic naming the message", r)
			}
		}()
		l.Fatalf("invariant %s", "broken")
	}()
	// The default discards: no output anywhere, no panic on Infof.
	newLogger(nil).Infof("dropped")
}

// TestValues checks what pebblestore adds to the store's records: a value
// holds exactly one record, and an item's record names the item of its key.
func TestValues(t *testing.T) {
	ev := store.AppendEvent(nil, &store.Event{ID: "e", ItemID: "i", Type: "view"})
	it := store.AppendItem(nil, &dataset.Item{ID: "id", Title: "t"})
	tests := []struct {
		name    string
		item    bool
		k, v    []byte
		wantErr bool
	}{
		{"event", false, nil, ev, false},
		{"event with a trailing byte", false, nil, append(ev[:len(ev):len(ev)], 0), true},
		{"two events", false, nil, append(ev[:len(ev):len(ev)], ev...), true},
		{"truncated event", false, nil, ev[:len(ev)-1], true},
		{"item", true, itemKey(nil, "id"), it, false},
		{"item under another ID", true, itemKey(nil, "other"), it, true},
		{"item with a trailing byte", true, itemKey(nil, "id"), append(it[:len(it):len(it)], 0), true},
		{"item under an empty key", true, nil, it, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.item {
				var got dataset.Item
				got, err = itemValue(tt.k, tt.v)
				if err == nil && got.ID != "id" {
					t.Errorf("itemValue() = %+v; want item id", got)
				}
			} else {
				var got store.Event
				got, err = eventValue("user", tt.v)
				if err == nil && (got.UserID != "user" || got.ID != "e") {
					t.Errorf("eventValue() = %+v; want event e of user", got)
				}
			}
			if tt.wantErr != (err != nil) || err != nil && !errors.Is(err, store.ErrCorrupt) {
				t.Errorf("decode error = %v; want an error wrapping %v: %v", err, store.ErrCorrupt, tt.wantErr)
			}
		})
	}
}

// TestCorruptValuesFail checks that a value no encoder wrote fails the
// reads with store.ErrCorrupt, through every wrapping on the way.
func TestCorruptValuesFail(t *testing.T) {
	ctx := t.Context()
	s := openT(t, t.TempDir(), Options{})
	if _, err := s.Append(ctx, []store.Event{{ID: "e1", UserID: "u", ItemID: "i", Type: "view"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Set(eventKey(nil, "u", 2), []byte("\x01garbage"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.UserEvents(ctx, "u", 10); !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("UserEvents() over a corrupt value error = %v; want %v", err, store.ErrCorrupt)
	}
	if _, err := s.DeleteUser(ctx, "u"); !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("DeleteUser() over a corrupt value error = %v; want %v", err, store.ErrCorrupt)
	}
	err := s.Scan(ctx, func(dataset.Item) error { return nil }, func(store.Event) error { return nil })
	if !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("Scan() over a corrupt value error = %v; want %v", err, store.ErrCorrupt)
	}
}

func TestEventKeys(t *testing.T) {
	users := []string{"", "a", "ab", "a\x00", "a\xff", string(bytes.Repeat([]byte{0xff}, 200))}
	for _, u := range users {
		for _, seq := range []uint64{0, 1, math.MaxUint64} {
			k := eventKey(nil, u, seq)
			gotU, gotSeq, err := parseEventKey(k)
			if err != nil || gotU != u || gotSeq != seq {
				t.Errorf("parseEventKey(eventKey(%q, %d)) = %q, %d, %v; want %q, %d, nil", u, seq, gotU, gotSeq, err, u, seq)
			}
			// The key lies in its user's range and in no other user's.
			for _, other := range users {
				p := userPrefix(nil, other)
				in := bytes.Compare(k, p) >= 0 && bytes.Compare(k, prefixEnd(p)) < 0
				if in != (other == u) {
					t.Errorf("eventKey(%q, %d) in the range of user %q = %v; want %v", u, seq, other, in, other == u)
				}
			}
		}
	}
	if _, _, err := parseEventKey([]byte("u\x05ab")); !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("parseEventKey(short) error = %v; want %v", err, store.ErrCorrupt)
	}
}

func TestPrefixEnd(t *testing.T) {
	tests := []struct {
		p, want []byte
	}{
		{[]byte("u\x01a"), []byte("u\x01b")},
		{[]byte("u\x01\xff"), []byte("u\x02")},
		{[]byte("\xff\xff"), nil},
	}
	for _, tt := range tests {
		if got := prefixEnd(tt.p); !bytes.Equal(got, tt.want) {
			t.Errorf("prefixEnd(%q) = %q; want %q", tt.p, got, tt.want)
		}
	}
}

// TestSequenceRecovered checks the last sequence is read back at open, so
// a reopened store keeps arrival order.
func TestSequenceRecovered(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	for round := range 3 {
		s, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if want := uint64(round * 2); s.seq != want {
			t.Errorf("round %d: seq at open = %d; want %d", round, s.seq, want)
		}
		for i := range 2 {
			if _, err := s.Append(ctx, []store.Event{{UserID: "u", ItemID: fmt.Sprint(round, i)}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOpenOptions checks that a cache too small to hold the memtables'
// reservation is refused at Open, not left to slow ingest down.
func TestOpenOptions(t *testing.T) {
	tests := []struct {
		opts    Options
		wantErr string
	}{
		{Options{}, ""},
		{Options{CacheSize: 64 << 20, MemTableSize: 16 << 20}, ""},
		{Options{CacheSize: 8 << 20}, "CacheSize 8388608 is less than 4 × MemTableSize 33554432"},
		{Options{CacheSize: -1, MemTableSize: 1}, "CacheSize -1"},
	}
	for _, tt := range tests {
		s, err := Open(t.TempDir(), tt.opts)
		if err == nil {
			s.Close()
		}
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("Open(%+v) error = %v; want %q", tt.opts, err, tt.wantErr)
		}
	}
}

// TestAppendFailsMidBatch makes a table read fail half way through a
// batch (events without IDs already in the Pebble batch, then the
// idempotency lookup of one with an ID fails) and checks the batch is
// stored not at all, the error wraps store.ErrUnavailable, and the same
// batch is stored once reads work again.
func TestAppendFailsMidBatch(t *testing.T) {
	dir := t.TempDir()
	failing := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind == errorfs.OpFileReadAt && strings.HasSuffix(op.Path, ".sst") {
			return errorfs.ErrInjected
		}
		return nil
	})}
	// Table stats are off: their background reads would both fail while
	// injection is on and cache the block the lookup must read.
	tune := func(o *pebble.Options) {
		o.FS = errorfs.Wrap(vfs.Default, failing)
		o.DisableTableStats = true
	}
	ctx := t.Context()
	var old []store.Event
	for i := range 10_000 {
		old = append(old, store.Event{ID: fmt.Sprintf("old-%05d", i), UserID: "u", ItemID: "i0", Type: "view", Time: time.Unix(1, 0).UTC()})
	}

	// Put the idempotency keys in a table of many blocks, then reopen so
	// the block holding old-05000 is not cached and its lookup must read
	// the file.
	s, err := open(dir, Options{}, tune)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = open(dir, Options{}, tune)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })

	// The last event repeats an old ID: its lookup passes the table's
	// bloom filter, so it must read a data block, and that read fails (a
	// new ID would be answered by the filter, read at open).
	batch := []store.Event{
		{UserID: "u", ItemID: "i1", Type: "view", Time: time.Unix(2, 0).UTC()},
		{UserID: "v", ItemID: "i2", Type: "view", Time: time.Unix(3, 0).UTC()},
		{ID: "old-05000", UserID: "u", ItemID: "i3", Type: "view", Time: time.Unix(4, 0).UTC()},
	}
	failing.On()
	stored, err := s.Append(ctx, batch)
	failing.Off()
	if !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, errorfs.ErrInjected) || len(stored) != 0 {
		t.Fatalf("Append() with failing reads = %d events, %v; want 0, an error wrapping %v and the cause", len(stored), err, store.ErrUnavailable)
	}
	if got := scanEvents(t, s); len(got) != len(old) {
		t.Errorf("after the failed Append, Scan() = %d events; want the %d old ones", len(got), len(old))
	}
	if stored, err := s.Append(ctx, batch); err != nil || len(stored) != 2 {
		t.Errorf("Append() retried = %d events, %v; want 2 (the old ID skipped), nil", len(stored), err)
	}
	if got := scanEvents(t, s); len(got) != len(old)+2 {
		t.Errorf("after the retry, Scan() = %d events; want %d", len(got), len(old)+2)
	}
}

func scanEvents(t *testing.T, s *Store) []store.Event {
	t.Helper()
	var out []store.Event
	err := s.Scan(t.Context(), func(dataset.Item) error { return nil }, func(e store.Event) error {
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatalf("Scan() error = %v; want nil", err)
	}
	return out
}

// countKeys returns how many keys of kind the database holds.
func countKeys(t *testing.T, db *pebble.DB, kind byte) int {
	t.Helper()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{kind}, UpperBound: []byte{kind + 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	return n
}

// agedFixture writes, for users old-0 … old-(nOld-1), an impression and an
// outcome two hours old, and for fresh-0 … fresh-(nFresh-1) an impression
// and an outcome of now, plus an old impression and outcome of each fresh
// user, and one event; under an hour's retention the old ones are to go.
func agedFixture(t *testing.T, s *Store, nOld, nFresh int) {
	t.Helper()
	ctx := t.Context()
	now := time.Now()
	old := now.Add(-2 * time.Hour)
	var imps []store.Impression
	var outs []store.Outcome
	add := func(user, id string, at time.Time) {
		imps = append(imps, store.Impression{ID: id, UserID: user, Time: at, Items: []string{"i1", "i2"}})
		outs = append(outs, store.Outcome{ImpressionID: id, UserID: user, EventID: "e-" + id, ItemID: "i1", Time: at.Add(time.Minute)})
		if len(imps) == 1000 {
			if err := s.AppendImpressions(ctx, imps); err != nil {
				t.Fatal(err)
			}
			if err := s.AppendOutcomes(ctx, outs); err != nil {
				t.Fatal(err)
			}
			imps, outs = imps[:0], outs[:0]
		}
	}
	for i := range nOld {
		add(fmt.Sprintf("old-%d", i), fmt.Sprintf("r-old-%d", i), old)
	}
	for i := range nFresh {
		u := fmt.Sprintf("fresh-%d", i)
		add(u, "r-"+u, now)
		add(u, "r-old-"+u, old)
	}
	if err := s.AppendImpressions(ctx, imps); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendOutcomes(ctx, outs); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, []store.Event{{ID: "e1", UserID: "old-0", ItemID: "i1", Type: "view", Time: old}}); err != nil {
		t.Fatal(err)
	}
}

// TestSweepAtOpen checks that Open removes the impressions and outcomes
// past the retention, however many users hold them (more than one sweep
// batch), and nothing else.
func TestSweepAtOpen(t *testing.T) {
	dir := t.TempDir()
	// Batches of 1 KiB hold about 30 range deletions: the sweep of 500
	// users commits many.
	opts := Options{ImpressionRetention: time.Hour, sweepInterval: time.Hour, sweepBatchBytes: 1 << 10}
	s := openT(t, dir, opts)
	const nOld, nFresh = 500, 3
	agedFixture(t, s, nOld, nFresh)
	for _, kind := range []byte{prefixImpression, prefixOutcome} {
		if got, want := countKeys(t, s.db, kind), nOld+2*nFresh; got != want {
			t.Fatalf("before the sweep: %d keys of kind %q; want %d", got, kind, want)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, opts)
	for _, kind := range []byte{prefixImpression, prefixOutcome} {
		if got := countKeys(t, s.db, kind); got != nFresh {
			t.Errorf("after Open: %d keys of kind %q; want the %d fresh ones", got, kind, nFresh)
		}
	}
	if es, n, err := s.UserEvents(t.Context(), "old-0", 10); err != nil || n != 1 || len(es) != 1 {
		t.Errorf("UserEvents(old-0) after the sweep = %d of %d, %v; want the event kept", len(es), n, err)
	}
	got, err := s.UserImpressions(t.Context(), "fresh-1", time.Time{})
	if err != nil || len(got) != 1 || got[0].ID != "r-fresh-1" {
		t.Errorf("UserImpressions(fresh-1) after the sweep = %+v, %v; want r-fresh-1 alone", got, err)
	}

	// A damaged key does not stop the sweep, nor Open: the reads report it.
	damaged := append(userSpace(nil, prefixImpression, "old-1"), 0xff)
	if err := s.db.Set(damaged, nil, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendImpressions(t.Context(), []store.Impression{{ID: "late-old", UserID: "zz", Time: time.Now().Add(-2 * time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	opts.Logger = slog.New(slog.NewTextHandler(&logged, nil))
	s = openT(t, dir, opts)
	if got := countKeys(t, s.db, prefixImpression); got != nFresh+1 {
		t.Errorf("after Open over a damaged key: %d impression keys; want the %d fresh ones and the damaged one", got, nFresh)
	}
	if !strings.Contains(logged.String(), "damaged key") {
		t.Errorf("log = %q; want the damaged key reported", logged.String())
	}
}

// TestSweepInBackground checks that the sweep runs again while the store
// is open, and that Close stops it.
func TestSweepInBackground(t *testing.T) {
	s := openT(t, t.TempDir(), Options{ImpressionRetention: time.Hour, sweepInterval: 5 * time.Millisecond})
	const nOld, nFresh = 500, 3
	agedFixture(t, s, nOld, nFresh)
	deadline := time.Now().Add(10 * time.Second)
	for {
		imps, outs := countKeys(t, s.db, prefixImpression), countKeys(t, s.db, prefixOutcome)
		if imps == nFresh && outs == nFresh {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: %d impression keys and %d outcome keys; want the %d fresh ones", imps, outs, nFresh)
		}
		time.Sleep(10 * time.Millisecond)
	}
	done := make(chan error)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Close() error = %v; want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close() did not return: the sweep was not stopped")
	}
}

// TestImpressionKeys checks that key times sort as the times do (before
// 1970 and beyond the nanosecond range included, the latter clamped), and
// that users' impression and outcome ranges are disjoint whatever the IDs.
func TestImpressionKeys(t *testing.T) {
	times := []time.Time{
		{},
		time.Unix(math.MinInt64/int64(time.Second)-1, 0),
		time.Unix(0, math.MinInt64),
		time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(-1, 999999999),
		time.Unix(0, 0),
		time.Unix(0, 1),
		time.Date(2026, 5, 1, 12, 0, 0, 1, time.FixedZone("x", 3600)),
		time.Unix(0, math.MaxInt64),
		time.Unix(math.MaxInt64/int64(time.Second)+10, 0),
	}
	for i := 1; i < len(times); i++ {
		a, b := appendKeyTime(nil, times[i-1]), appendKeyTime(nil, times[i])
		if len(a) != timeLen || bytes.Compare(a, b) > 0 {
			t.Errorf("key time of %v = %x, of %v = %x; want %d bytes in time order", times[i-1], a, times[i], b, timeLen)
		}
	}
	if a, b := appendKeyTime(nil, time.Unix(0, 5)), appendKeyTime(nil, time.Unix(0, 6)); bytes.Equal(a, b) {
		t.Errorf("key times a nanosecond apart are equal (%x); want them distinct", a)
	}

	users := []string{"", "a", "ab", "a\x00", "a\xff", string(bytes.Repeat([]byte{0xff}, 200))}
	at := time.Unix(1700000000, 5)
	for _, u := range users {
		for _, kind := range []byte{prefixImpression, prefixOutcome} {
			var k []byte
			if kind == prefixImpression {
				k = impressionKey(nil, u, at, "id\x00")
			} else {
				k = outcomeKey(nil, u, at, store.AppendOutcome(nil, &store.Outcome{ImpressionID: "id"}))
			}
			prefix, user, rest, err := splitUserKey(k, kind, timeLen)
			if err != nil || string(user) != u || !bytes.Equal(prefix, userSpace(nil, kind, u)) || !bytes.Equal(rest[:timeLen], appendKeyTime(nil, at)) {
				t.Errorf("splitUserKey(key %q of user %q) = %q, %q, %q, %v", k, u, prefix, user, rest, err)
			}
			for _, other := range users {
				p := userSpace(nil, kind, other)
				in := bytes.Compare(k, p) >= 0 && bytes.Compare(k, prefixEnd(p)) < 0
				if in != (other == u) {
					t.Errorf("key %q of user %q in the range of user %q = %v; want %v", k, u, other, in, other == u)
				}
			}
		}
	}
	for _, k := range []string{"", "u\x01a", "p\x05ab", "p\x01a1234567"} {
		if _, _, _, err := splitUserKey([]byte(k), prefixImpression, timeLen); !errors.Is(err, store.ErrCorrupt) {
			t.Errorf("splitUserKey(%q) error = %v; want %v", k, err, store.ErrCorrupt)
		}
	}
}

// TestCorruptImpressionsFail checks that an impression value no encoder
// wrote, or one under the key of another ID, and an outcome key with a
// damaged record fail the reads with store.ErrCorrupt.
func TestCorruptImpressionsFail(t *testing.T) {
	at := time.Now()
	rec := store.AppendImpression(nil, &store.Impression{ID: "r1", Time: at})
	tests := []struct {
		name string
		k, v []byte
	}{
		{"garbage impression", impressionKey(nil, "u", at, "r1"), []byte("\x41garbage")},
		{"impression under another ID", impressionKey(nil, "u", at, "r2"), rec},
		{"impression under an ID it ends", impressionKey(nil, "u", at, "xr1"), rec},
		{"impression with a trailing byte", impressionKey(nil, "u", at, "r1"), append(rec[:len(rec):len(rec)], 0)},
		{"garbage outcome", outcomeKey(nil, "u", at, []byte("\xc1\x05")), nil},
		{"impression key without its time", append(userSpace(nil, prefixImpression, "u"), 0xff), rec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			s := openT(t, t.TempDir(), Options{})
			if err := s.AppendImpressions(ctx, []store.Impression{{ID: "r1", UserID: "u", Time: at}}); err != nil {
				t.Fatal(err)
			}
			if err := s.db.Set(tt.k, tt.v, pebble.Sync); err != nil {
				t.Fatal(err)
			}
			if tt.k[0] == prefixImpression {
				if _, err := s.UserImpressions(ctx, "u", time.Time{}); !errors.Is(err, store.ErrCorrupt) {
					t.Errorf("UserImpressions() error = %v; want %v", err, store.ErrCorrupt)
				}
			}
			err := s.ScanImpressions(ctx, time.Time{}, at.Add(time.Hour), func(string, []store.Impression, []store.Outcome) error { return nil })
			if !errors.Is(err, store.ErrCorrupt) {
				t.Errorf("ScanImpressions() error = %v; want %v", err, store.ErrCorrupt)
			}
		})
	}
}
