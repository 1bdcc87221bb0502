package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/recserve/recserve/serving/store"
)

// ImpressionBackend is a Backend that also keeps impressions. The
// impression checks need both halves: DeleteUser must remove a user's
// impressions, and Close must stop every call.
type ImpressionBackend interface {
	store.Backend
	store.ImpressionStore
}

// RunImpressions checks a backend's impression retention, which Run cannot:
// Run's open gives backends with the default retention, and what is older
// than thirty days is all Run can check with them. open returns a fresh,
// empty backend keeping impressions and outcomes for retention, and
// registers its Close with t.Cleanup (Close must tolerate a second call).
//
// It checks that impressions and outcomes older than the retention are not
// returned by UserImpressions or ScanImpressions, whether they were old
// when written or aged past the retention afterwards. How the backend
// removes them (a sweep, key expiry) is its own to test.
func RunImpressions(t *testing.T, open func(t *testing.T, retention time.Duration) ImpressionBackend) {
	tests := []struct {
		name string
		run  func(t *testing.T, open func(t *testing.T, retention time.Duration) ImpressionBackend)
	}{
		{"OldWhenWritten", testRetentionOldWhenWritten},
		{"Ageing", testRetentionAgeing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, open) })
	}
}

// testImpressions is Run's "Impressions" test: the contract of
// store.ImpressionStore at the default retention, for a backend that
// implements it.
func testImpressions(t *testing.T, open func(t *testing.T) store.Backend) {
	probe := open(t)
	if _, ok := probe.(ImpressionBackend); !ok {
		t.Skipf("%T does not implement store.ImpressionStore", probe)
	}
	_ = probe.Close()
	openImp := func(t *testing.T) ImpressionBackend { return open(t).(ImpressionBackend) }
	tests := []struct {
		name string
		run  func(t *testing.T, open func(t *testing.T) ImpressionBackend)
	}{
		{"RoundTrip", testImpRoundTrip},
		{"UserImpressions", testUserImpressions},
		{"Scan", testScanImpressions},
		{"ScanStops", testScanImpressionsStops},
		{"Repeats", testImpRepeats},
		{"DeleteUser", testImpDeleteUser},
		{"DefaultRetention", testImpDefaultRetention},
		{"EndedContext", testImpEndedContext},
		{"Closed", testImpClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, openImp) })
	}
}

// impBase returns the time fixture impressions are placed from: two days
// ago (well inside the default retention), with nanoseconds, so a backend
// keeping less than full precision is caught.
func impBase() time.Time {
	return time.Now().UTC().Truncate(time.Hour).Add(-48*time.Hour + 535897932)
}

// imp returns an impression of user with every field set, n seconds after
// base.
func imp(id, user string, base time.Time, n int) store.Impression {
	return store.Impression{
		ID: id, Time: base.Add(time.Duration(n) * time.Second), Kind: "recommend",
		UserID: user, SessionID: "s-" + user, Route: "home", Arm: "exp/" + id,
		Models: []store.ModelVersion{{Name: "als", Version: "v1"}, {Name: "rank", Version: "v2", Canary: true}},
		Items:  []string{"i1", "i2", id + "-i3"},
	}
}

// outcome returns an outcome of user attributed to impression impID, with
// every field set, n seconds after base.
func outcome(impID, eventID, user string, base time.Time, n int) store.Outcome {
	return store.Outcome{
		ImpressionID: impID, UserID: user, EventID: eventID, ItemID: "i2", Type: "purchase",
		Purchase: true, Position: 2, Revenue: 19.5 + float64(n), Time: base.Add(time.Duration(n) * time.Second), ByID: n%2 == 0,
	}
}

func impEqual(got, want store.Impression) bool {
	return got.ID == want.ID && got.Time.Equal(want.Time) && got.Kind == want.Kind && got.UserID == want.UserID &&
		got.SessionID == want.SessionID && got.Route == want.Route && got.Arm == want.Arm &&
		slices.Equal(got.Models, want.Models) && slices.Equal(got.Items, want.Items)
}

func outcomeEqual(got, want store.Outcome) bool {
	if !got.Time.Equal(want.Time) {
		return false
	}
	got.Time, want.Time = time.Time{}, time.Time{}
	return got == want
}

func fmtImps(imps []store.Impression) string {
	var b strings.Builder
	b.WriteString("[")
	for i, m := range imps {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "{%q %s %q %q %q %q %q %v %q}", m.ID, m.Time.UTC().Format(time.RFC3339Nano), m.Kind,
			m.UserID, m.SessionID, m.Route, m.Arm, m.Models, m.Items)
	}
	b.WriteString("]")
	return b.String()
}

func fmtOutcomes(outs []store.Outcome) string {
	var b strings.Builder
	b.WriteString("[")
	for i, o := range outs {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "{%q %q %q %q %q %v %d %v %s %v}", o.ImpressionID, o.UserID, o.EventID, o.ItemID, o.Type,
			o.Purchase, o.Position, o.Revenue, o.Time.UTC().Format(time.RFC3339Nano), o.ByID)
	}
	b.WriteString("]")
	return b.String()
}

// sortOutcomes orders outcomes for comparison: the interface leaves their
// order to the backend.
func sortOutcomes(outs []store.Outcome) []store.Outcome {
	outs = slices.Clone(outs)
	slices.SortFunc(outs, func(a, b store.Outcome) int {
		return cmp.Or(a.Time.Compare(b.Time), strings.Compare(a.ImpressionID, b.ImpressionID),
			strings.Compare(a.EventID, b.EventID), strings.Compare(a.Type, b.Type))
	})
	return outs
}

func mustAppendImps(t *testing.T, s store.ImpressionStore, imps ...store.Impression) {
	t.Helper()
	if err := s.AppendImpressions(t.Context(), imps); err != nil {
		t.Fatalf("AppendImpressions(%d impressions) error = %v; want nil", len(imps), err)
	}
}

func mustAppendOutcomes(t *testing.T, s store.ImpressionStore, outs ...store.Outcome) {
	t.Helper()
	if err := s.AppendOutcomes(t.Context(), outs); err != nil {
		t.Fatalf("AppendOutcomes(%d outcomes) error = %v; want nil", len(outs), err)
	}
}

// scanned is what ScanImpressions gave for one user.
type scanned struct {
	imps []store.Impression
	outs []store.Outcome
}

// scanImps runs ScanImpressions over [since, until) and checks what holds
// for every scan: each user is reported once, with at least one
// impression, all in the range and oldest first, all of that user.
func scanImps(t *testing.T, s store.ImpressionStore, since, until time.Time) map[string]scanned {
	t.Helper()
	got := map[string]scanned{}
	err := s.ScanImpressions(t.Context(), since, until, func(user string, imps []store.Impression, outs []store.Outcome) error {
		if _, dup := got[user]; dup {
			return fmt.Errorf("user %q reported twice", user)
		}
		if len(imps) == 0 {
			return fmt.Errorf("user %q reported without impressions", user)
		}
		for i, m := range imps {
			if m.UserID != user || m.Time.Before(since) || !m.Time.Before(until) {
				return fmt.Errorf("user %q: impression %s outside the user or [%v, %v)", user, fmtImps(imps[i:i+1]), since, until)
			}
			if i > 0 && m.Time.Before(imps[i-1].Time) {
				return fmt.Errorf("user %q: impressions %s not oldest first", user, fmtImps(imps))
			}
		}
		for _, o := range outs {
			if o.UserID != user {
				return fmt.Errorf("user %q: outcome of user %q", user, o.UserID)
			}
		}
		// The slices are the callback's: copy them, in case the backend
		// reuses them.
		got[user] = scanned{slices.Clone(imps), slices.Clone(outs)}
		return nil
	})
	if err != nil {
		t.Fatalf("ScanImpressions(%v, %v) error = %v; want nil", since, until, err)
	}
	return got
}

// checkScan reports every difference between a scan and the impressions
// (oldest first) and outcomes (any order) wanted per user.
func checkScan(t *testing.T, got map[string]scanned, wantImps map[string][]store.Impression, wantOuts map[string][]store.Outcome) {
	t.Helper()
	for u, w := range wantImps {
		g, ok := got[u]
		if !ok {
			t.Errorf("ScanImpressions() did not report user %q; want %s", u, fmtImps(w))
			continue
		}
		if !slices.EqualFunc(g.imps, w, impEqual) {
			t.Errorf("ScanImpressions() impressions of user %q =\n  %s\nwant\n  %s", u, fmtImps(g.imps), fmtImps(w))
		}
		if g, w := sortOutcomes(g.outs), sortOutcomes(wantOuts[u]); !slices.EqualFunc(g, w, outcomeEqual) {
			t.Errorf("ScanImpressions() outcomes of user %q =\n  %s\nwant\n  %s", u, fmtOutcomes(g), fmtOutcomes(w))
		}
	}
	for _, u := range slices.Sorted(maps.Keys(got)) {
		if _, ok := wantImps[u]; !ok {
			t.Errorf("ScanImpressions() reported user %q with %s; want no call", u, fmtImps(got[u].imps))
		}
	}
}

// userImps calls UserImpressions and fails the test on error.
func userImps(t *testing.T, s store.ImpressionStore, user string, since time.Time) []store.Impression {
	t.Helper()
	got, err := s.UserImpressions(t.Context(), user, since)
	if err != nil {
		t.Fatalf("UserImpressions(%q, %v) error = %v; want nil", user, since, err)
	}
	return got
}

// newestFirst returns imps in reverse.
func newestFirst(imps ...store.Impression) []store.Impression {
	out := slices.Clone(imps)
	slices.Reverse(out)
	return out
}

// testImpRoundTrip checks that every field of impressions and outcomes
// comes back as stored, odd bytes, empty lists and other time zones
// included (times to the nanosecond, in any location), through both reads.
func testImpRoundTrip(t *testing.T, open func(t *testing.T) ImpressionBackend) {
	b := open(t)
	base := impBase()
	full := imp("r1", "u1", base, 1)
	bare := store.Impression{ID: "r2", UserID: "u1", Time: base.Add(2 * time.Second)}
	odd := store.Impression{
		ID: "r\x00:3\xff", UserID: "u\x00:2", Time: base.Add(3 * time.Second).In(time.FixedZone("x", -5*3600)),
		Kind: "similar", Route: "pdp\xff", Arm: "", Models: []store.ModelVersion{{}, {Name: "m", Canary: true}},
		Items: []string{"", "ä", strings.Repeat("x", 300)},
	}
	mustAppendImps(t, b, full, odd)
	mustAppendImps(t, b, bare)
	outs := []store.Outcome{
		outcome("r1", "e1", "u1", base, 10),
		{ImpressionID: "r2", UserID: "u1", Time: base.Add(11 * time.Second)},
		{ImpressionID: "r\x00:3\xff", UserID: "u\x00:2", EventID: "e\xff", ItemID: "", Type: "view",
			Position: 0, Revenue: -1.25, Time: base.Add(12 * time.Second).In(time.FixedZone("y", 3600)), ByID: true},
	}
	mustAppendOutcomes(t, b, outs...)

	if got, want := userImps(t, b, "u1", time.Time{}), newestFirst(full, bare); !slices.EqualFunc(got, want, impEqual) {
		t.Errorf("UserImpressions(u1) =\n  %s\nwant\n  %s", fmtImps(got), fmtImps(want))
	}
	if got, want := userImps(t, b, "u\x00:2", time.Time{}), []store.Impression{odd}; !slices.EqualFunc(got, want, impEqual) {
		t.Errorf("UserImpressions(u\\x00:2) =\n  %s\nwant\n  %s", fmtImps(got), fmtImps(want))
	}
	checkScan(t, scanImps(t, b, time.Time{}, base.Add(time.Hour)),
		map[string][]store.Impression{"u1": {full, bare}, "u\x00:2": {odd}},
		map[string][]store.Outcome{"u1": outs[:2], "u\x00:2": outs[2:]})
}

// testUserImpressions checks the since filter (inclusive, to the
// nanosecond), the newest-first order whatever the arrival order, the
// isolation of users whose IDs prefix each other's, and that impressions
// without a user are not stored.
func testUserImpressions(t *testing.T, open func(t *testing.T) ImpressionBackend) {
	b := open(t)
	base := impBase()
	u := []store.Impression{imp("a1", "u", base, 1), imp("a2", "u", base, 2), imp("a3", "u", base, 3), imp("a4", "u", base, 4)}
	others := []store.Impression{imp("b1", "uu", base, 2), imp("b2", "u\x00", base, 3), imp("b3", "", base, 2), imp("b4", "v", base, 5)}
	// Arrival order differs from time order.
	mustAppendImps(t, b, u[2], others[0], u[0])
	mustAppendImps(t, b, others[1], others[2], u[3], u[1], others[3])
	ns := time.Nanosecond
	tests := []struct {
		user  string
		since time.Time
		want  []store.Impression
	}{
		{"u", time.Time{}, newestFirst(u...)},
		{"u", u[0].Time, newestFirst(u...)},
		{"u", u[0].Time.Add(ns), newestFirst(u[1:]...)},
		{"u", u[2].Time, newestFirst(u[2:]...)},
		{"u", u[2].Time.Add(-ns), newestFirst(u[2:]...)},
		{"u", u[3].Time, newestFirst(u[3])},
		{"u", u[3].Time.Add(ns), nil},
		{"u", u[3].Time.In(time.FixedZone("z", 7200)), newestFirst(u[3])},
		{"uu", time.Time{}, others[:1]},
		{"u\x00", time.Time{}, others[1:2]},
		{"", time.Time{}, nil},
		{"nobody", time.Time{}, nil},
	}
	for _, tt := range tests {
		if got := userImps(t, b, tt.user, tt.since); !slices.EqualFunc(got, tt.want, impEqual) {
			t.Errorf("UserImpressions(%q, %v) =\n  %s\nwant\n  %s", tt.user, tt.since, fmtImps(got), fmtImps(tt.want))
		}
	}
}

// testScanImpressions checks ScanImpressions' range, [since, until) to the
// nanosecond, per user and oldest first, with only the outcomes attributed
// to the impressions it reports, and no call for a user without
// impressions in the range (or with outcomes only).
func testScanImpressions(t *testing.T, open func(t *testing.T) ImpressionBackend) {
	b := open(t)
	base := impBase()
	a := []store.Impression{imp("a1", "a", base, 10), imp("a2", "a", base, 20), imp("a3", "a", base, 30)}
	c := []store.Impression{imp("c1", "c", base, 20)}
	ab := []store.Impression{imp("ab1", "ab", base, 25)}
	mustAppendImps(t, b, a[2], c[0], a[0])
	mustAppendImps(t, b, ab[0], a[1], imp("x1", "", base, 20))
	outs := map[string]store.Outcome{
		"a1":       outcome("a1", "e1", "a", base, 11),
		"a1 again": outcome("a1", "e2", "a", base, 40), // later than every impression
		"a3":       outcome("a3", "e3", "a", base, 31),
		"c1":       outcome("c1", "", "c", base, 5), // earlier than its impression
		"unknown":  outcome("zz", "e4", "a", base, 21),
		"of ab":    outcome("a2", "e5", "ab", base, 26), // another user's impression ID
		"no imps":  outcome("a1", "e6", "d", base, 12),
	}
	mustAppendOutcomes(t, b, slices.Collect(maps.Values(outs))...)
	s := time.Second
	tests := []struct {
		name         string
		since, until time.Time
		imps         map[string][]store.Impression
		outs         map[string][]store.Outcome
	}{
		{"everything", time.Time{}, base.Add(time.Hour),
			map[string][]store.Impression{"a": a, "c": c, "ab": ab},
			map[string][]store.Outcome{"a": {outs["a1"], outs["a1 again"], outs["a3"]}, "c": {outs["c1"]}}},
		{"since inclusive", base.Add(20 * s), base.Add(time.Hour),
			map[string][]store.Impression{"a": a[1:], "c": c, "ab": ab},
			map[string][]store.Outcome{"a": {outs["a3"]}, "c": {outs["c1"]}}},
		{"until exclusive", base.Add(10 * s), base.Add(20 * s),
			map[string][]store.Impression{"a": a[:1]},
			map[string][]store.Outcome{"a": {outs["a1"], outs["a1 again"]}}},
		{"nanosecond bounds", a[1].Time.Add(-time.Nanosecond), a[1].Time.Add(time.Nanosecond),
			map[string][]store.Impression{"a": a[1:2], "c": c},
			map[string][]store.Outcome{"c": {outs["c1"]}}},
		{"just after", a[1].Time.Add(time.Nanosecond), ab[0].Time,
			map[string][]store.Impression{}, nil},
		{"empty range", base.Add(20 * s), base.Add(20 * s), map[string][]store.Impression{}, nil},
		{"reversed range", base.Add(30 * s), base.Add(10 * s), map[string][]store.Impression{}, nil},
		{"after everything", base.Add(31 * s), base.Add(time.Hour), map[string][]store.Impression{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkScan(t, scanImps(t, b, tt.since, tt.until), tt.imps, tt.outs)
		})
	}
}

// testScanImpressionsStops checks that ScanImpressions returns its
// callback's first error, after no further call, and fails on an ended
// context.
func testScanImpressionsStops(t *testing.T, open func(t *testing.T) ImpressionBackend) {
	b := open(t)
	base := impBase()
	mustAppendImps(t, b, imp("a", "u1", base, 1), imp("b", "u2", base, 2), imp("c", "u3", base, 3))
	errStop := errors.New("stop")
	calls := 0
	err := b.ScanImpressions(t.Context(), time.Time{}, base.Add(time.Hour), func(string, []store.Impression, []store.Outcome) error {
		calls++
		return errStop
	})
	if !errors.Is(err, errStop) || calls != 1 {
		t.Errorf("ScanImpressions() = %v after %d calls; want %v after 1", err, calls, errStop)
	}
}

// testImpRepeats checks that a retried write stores nothing twice: the
// same impression or outcome appended again, in one call or another, is
// returned once.
func testImpRepeats(t *testing.T, open func(t *testing.T) ImpressionBackend) {
	b := open(t)
	base := impBase()
	m := imp("r1", "u", base, 1)
	o := outcome("r1", "e1", "u", base, 2)
	mustAppendImps(t, b, m, m)
	mustAppendImps(t, b, m)
	mustAppendOutcomes(t, b, o, o)
	mustAppendOutcomes(t, b, o)
	if got := userImps(t, b, "u", time.Time{}); !slices.EqualFunc(got, []store.Impression{m}, impEqual) {
		t.Errorf("UserImpressions() after repeats = %s; want %s", fmtImps(got), fmtImps([]store.Impression{m}))
	}
	checkScan(t, scanImps(t, b, time.Time{}, base.Add(time.Hour)),
		map[string][]store.Impression{"u": {m}}, map[string][]store.Outcome{"u": {o}})
}

// testImpDeleteUser checks that DeleteUser removes the user's impressions
// and outcomes, with or without events, and nothing of users whose IDs it
// prefixes.
func testImpDeleteUser(t *testing.T, open func(t *testing.T) ImpressionBackend) {
	b := open(t)
	base := impBase()
	mustAppend(t, b, ev("e1", "a", "i1", 1), ev("e2", "ab", "i1", 2))
	gone := []store.Impression{imp("a1", "a", base, 1), imp("a2", "a", base, 2), imp("o1", "only-imps", base, 3)}
	kept := []store.Impression{imp("b1", "ab", base, 1), imp("b2", "a\x00", base, 2)}
	mustAppendImps(t, b, append(slices.Clone(gone), kept...)...)
	keptOuts := []store.Outcome{outcome("b1", "e9", "ab", base, 5)}
	mustAppendOutcomes(t, b, outcome("a1", "e1", "a", base, 4), outcome("o1", "", "only-imps", base, 4), keptOuts[0])

	tests := []struct {
		user   string
		events int
	}{{"a", 1}, {"only-imps", 0}}
	for _, tt := range tests {
		if n, err := b.DeleteUser(t.Context(), tt.user); err != nil || n != tt.events {
			t.Fatalf("DeleteUser(%q) = %d, %v; want %d, nil", tt.user, n, err, tt.events)
		}
		if got := userImps(t, b, tt.user, time.Time{}); len(got) != 0 {
			t.Errorf("UserImpressions(%q) after DeleteUser = %s; want none", tt.user, fmtImps(got))
		}
	}
	checkScan(t, scanImps(t, b, time.Time{}, base.Add(time.Hour)),
		map[string][]store.Impression{"ab": kept[:1], "a\x00": kept[1:]},
		map[string][]store.Outcome{"ab": keptOuts})
	// The deleted users' impression IDs, stored again, come back with the
	// outcomes attributed to them since, none of the deleted ones.
	again := []store.Impression{imp("a1", "a", base, 9), imp("o1", "only-imps", base, 9)}
	mustAppendImps(t, b, again...)
	newOut := outcome("a1", "e7", "a", base, 10)
	mustAppendOutcomes(t, b, newOut)
	got := scanImps(t, b, time.Time{}, base.Add(time.Hour))
	checkScan(t, map[string]scanned{"a": got["a"], "only-imps": got["only-imps"]},
		map[string][]store.Impression{"a": again[:1], "only-imps": again[1:]},
		map[string][]store.Outcome{"a": {newOut}})
}

// testImpDefaultRetention checks that a backend opened with default
// options keeps impressions and outcomes for
// store.DefaultImpressionRetention: a day less is returned, a day more is
// not.
func testImpDefaultRetention(t *testing.T, open func(t *testing.T) ImpressionBackend) {
	b := open(t)
	day := 24 * time.Hour
	now := time.Now().UTC()
	kept := imp("kept", "u", now.Add(-store.DefaultImpressionRetention+day), 0)
	old := imp("old", "u", now.Add(-store.DefaultImpressionRetention-day), 0)
	oldOnly := imp("old2", "v", now.Add(-store.DefaultImpressionRetention-day), 0)
	keptOut := outcome("kept", "e1", "u", kept.Time, 60)
	mustAppendImps(t, b, kept, old, oldOnly)
	mustAppendOutcomes(t, b, keptOut, outcome("old", "e2", "u", old.Time, 60),
		outcome("kept", "e3", "u", now.Add(-store.DefaultImpressionRetention-day), 0))
	if got := userImps(t, b, "u", time.Time{}); !slices.EqualFunc(got, []store.Impression{kept}, impEqual) {
		t.Errorf("UserImpressions() = %s; want only the impression inside the retention, %s", fmtImps(got), fmtImps([]store.Impression{kept}))
	}
	checkScan(t, scanImps(t, b, time.Time{}, now.Add(time.Hour)),
		map[string][]store.Impression{"u": {kept}}, map[string][]store.Outcome{"u": {keptOut}})
}

// testImpEndedContext checks that every call fails with the context's
// error once it has ended, and that a write then stores nothing.
func testImpEndedContext(t *testing.T, open func(t *testing.T) ImpressionBackend) {
	b := open(t)
	base := impBase()
	ctx := cancelled(t)
	calls := []struct {
		name string
		call func() error
	}{
		{"AppendImpressions", func() error { return b.AppendImpressions(ctx, []store.Impression{imp("r1", "u", base, 1)}) }},
		{"AppendOutcomes", func() error { return b.AppendOutcomes(ctx, []store.Outcome{outcome("r0", "e1", "u", base, 2)}) }},
		{"UserImpressions", func() error { _, err := b.UserImpressions(ctx, "u", time.Time{}); return err }},
		{"ScanImpressions", func() error {
			return b.ScanImpressions(ctx, time.Time{}, base.Add(time.Hour), func(string, []store.Impression, []store.Outcome) error { return nil })
		}},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s(cancelled ctx) error = %v; want %v", c.name, err, context.Canceled)
		}
	}
	mustAppendImps(t, b, imp("r0", "u", base, 0))
	checkScan(t, scanImps(t, b, time.Time{}, base.Add(time.Hour)),
		map[string][]store.Impression{"u": {imp("r0", "u", base, 0)}}, nil)
}

// testImpClosed checks that a closed backend answers every impression call
// with an error wrapping store.ErrUnavailable.
func testImpClosed(t *testing.T, open func(t *testing.T) ImpressionBackend) {
	b := open(t)
	base := impBase()
	mustAppendImps(t, b, imp("r1", "u", base, 1))
	if err := b.Close(); err != nil {
		t.Fatalf("Close() error = %v; want nil", err)
	}
	ctx := t.Context()
	calls := []struct {
		name string
		call func() error
	}{
		{"AppendImpressions", func() error { return b.AppendImpressions(ctx, []store.Impression{imp("r2", "u", base, 2)}) }},
		{"AppendOutcomes", func() error { return b.AppendOutcomes(ctx, []store.Outcome{outcome("r1", "e1", "u", base, 3)}) }},
		{"UserImpressions", func() error { _, err := b.UserImpressions(ctx, "u", time.Time{}); return err }},
		{"ScanImpressions", func() error {
			return b.ScanImpressions(ctx, time.Time{}, base.Add(time.Hour), func(string, []store.Impression, []store.Outcome) error { return nil })
		}},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s() on a closed backend error = %v; want %v", c.name, err, store.ErrUnavailable)
		}
	}
}

// testRetentionOldWhenWritten writes impressions and outcomes on both
// sides of an hour's retention and checks only the recent ones are read:
// an outcome older than the retention is dropped even when its impression
// is kept.
func testRetentionOldWhenWritten(t *testing.T, open func(t *testing.T, retention time.Duration) ImpressionBackend) {
	b := open(t, time.Hour)
	now := time.Now().UTC()
	fresh := imp("fresh", "u", now.Add(-30*time.Minute), 0)
	old := imp("old", "u", now.Add(-2*time.Hour), 0)
	oldOnly := imp("old-only", "v", now.Add(-2*time.Hour), 0)
	freshOut := outcome("fresh", "e1", "u", now.Add(-10*time.Minute), 0)
	mustAppendImps(t, b, fresh, old, oldOnly)
	mustAppendOutcomes(t, b, freshOut,
		outcome("fresh", "e2", "u", now.Add(-61*time.Minute), 0),
		outcome("old", "e3", "u", now.Add(-2*time.Hour), 1))
	for _, u := range []string{"u", "v"} {
		want := map[string][]store.Impression{"u": {fresh}}[u]
		if got := userImps(t, b, u, time.Time{}); !slices.EqualFunc(got, want, impEqual) {
			t.Errorf("UserImpressions(%q) = %s; want %s", u, fmtImps(got), fmtImps(want))
		}
	}
	checkScan(t, scanImps(t, b, time.Time{}, now.Add(time.Hour)),
		map[string][]store.Impression{"u": {fresh}}, map[string][]store.Outcome{"u": {freshOut}})
}

// testRetentionAgeing writes an impression and an outcome as they happen,
// under a one-second retention, and checks they are no longer read once
// the second has passed.
func testRetentionAgeing(t *testing.T, open func(t *testing.T, retention time.Duration) ImpressionBackend) {
	const retention = time.Second
	b := open(t, retention)
	now := time.Now().UTC()
	m := imp("r1", "u", now, 0)
	o := outcome("r1", "e1", "u", now, 0)
	mustAppendImps(t, b, m)
	mustAppendOutcomes(t, b, o)
	// Read at once: on a slow machine the second may be gone already, and
	// then only the second half of the test means anything.
	got := userImps(t, b, "u", time.Time{})
	scan := scanImps(t, b, time.Time{}, now.Add(time.Hour))
	if time.Since(now) < retention/2 {
		if !slices.EqualFunc(got, []store.Impression{m}, impEqual) {
			t.Errorf("UserImpressions() at once = %s; want %s", fmtImps(got), fmtImps([]store.Impression{m}))
		}
		checkScan(t, scan, map[string][]store.Impression{"u": {m}}, map[string][]store.Outcome{"u": {o}})
	} else {
		t.Logf("reads took %v of the %v retention: not checking them", time.Since(now), retention)
	}
	time.Sleep(time.Until(now.Add(retention + 50*time.Millisecond)))
	if got := userImps(t, b, "u", time.Time{}); len(got) != 0 {
		t.Errorf("UserImpressions() after the retention = %s; want none", fmtImps(got))
	}
	checkScan(t, scanImps(t, b, time.Time{}, now.Add(time.Hour)), map[string][]store.Impression{}, nil)
}
