package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/recserve/recserve/dataset"
)

// eventsMatch reports whether a and b are equal, NaN values (compared by
// their bits, which the record keeps), times in other locations and nil
// against empty contexts included.
func eventsMatch(a, b Event) bool {
	return math.Float64bits(a.Value) == math.Float64bits(b.Value) && a.Time.Equal(b.Time) &&
		maps.Equal(a.Context, b.Context) && a.ID == b.ID && a.UserID == b.UserID &&
		a.ItemID == b.ItemID && a.Type == b.Type && a.SessionID == b.SessionID &&
		a.RecommendationID == b.RecommendationID
}

// itemsMatch is == with Price compared by its bits, so NaN matches itself.
func itemsMatch(a, b dataset.Item) bool {
	pa, pb := a.Price, b.Price
	a.Price, b.Price = 0, 0
	return a == b && math.Float64bits(pa) == math.Float64bits(pb)
}

// decodeBoth decodes rec as a byte slice and as a string, which must agree.
func decodeBoth(t *testing.T, user string, rec []byte) (Event, int, error) {
	t.Helper()
	e, n, err := DecodeEvent(user, rec)
	es, ns, errs := DecodeEvent(user, string(rec))
	if !eventsMatch(e, es) || n != ns || (err == nil) != (errs == nil) {
		t.Errorf("DecodeEvent([]byte) = %+v, %d, %v; DecodeEvent(string) = %+v, %d, %v; want the same", e, n, err, es, ns, errs)
	}
	return e, n, err
}

func TestEventRecord(t *testing.T) {
	// The next record, to check that a decoder stops at its record's end.
	next := AppendEvent(nil, &Event{ID: "next", ItemID: "i"})
	tests := []struct {
		name string
		e    Event
		size int // the record's length, 0 to skip the check
	}{
		{name: "zero", e: Event{}, size: 1 + 3 + 8 + 6 + 1 + 2 + 1},
		{name: "typical", e: Event{
			ID: "9f1c2d3e-aaaa-bbbb-cccc-0123456789ab", ItemID: "item-98765", Type: "view", Value: 1,
			Time: time.Unix(1700000000, 0).UTC(), SessionID: "sess-42",
		}, size: 78},
		{name: "full", e: Event{
			ID: "ev-1", ItemID: "i1", Type: "purchase", Value: 4.5,
			Time: time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC), SessionID: "s", RecommendationID: "rec",
			Context: map[string]string{"b": "2", "a": "1", "": "empty key", "k": strings.Repeat("v", 300)},
		}},
		{name: "context larger than the stack array", e: Event{Context: map[string]string{
			"a": "1", "b": "2", "c": "3", "d": "4", "e": "5", "f": "6", "g": "7", "h": "8", "i": "9", "j": "10",
		}}},
		{name: "before 1970", e: Event{Time: time.Date(1950, 1, 1, 0, 0, 0, 1, time.UTC)}},
		{name: "year 1", e: Event{Time: time.Unix(-62135596800, 0)}},
		{name: "other location", e: Event{Time: time.Date(2026, 1, 2, 3, 4, 5, 999999999, time.FixedZone("x", 3600))}},
		{name: "extreme values", e: Event{Value: -math.MaxFloat64, Time: time.Unix(math.MaxInt64, 999999999)}},
		{name: "infinity", e: Event{Value: math.Inf(1)}},
		{name: "NaN with payload", e: Event{Value: math.Float64frombits(0x7ff8_dead_beef_0001)}},
		{name: "binary and unicode", e: Event{ID: "ä\x00\xff", ItemID: strings.Repeat("x", 300), Type: "\x80"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := AppendEvent(nil, &tt.e)
			if tt.size != 0 && len(rec) != tt.size {
				t.Errorf("len(AppendEvent()) = %d; want %d", len(rec), tt.size)
			}
			// Appending keeps what b held.
			if got := AppendEvent([]byte("prefix"), &tt.e); !bytes.Equal(got, append([]byte("prefix"), rec...)) {
				t.Errorf("AppendEvent(prefix) = %q; want prefix then %q", got, rec)
			}
			want := tt.e
			want.UserID = "user"
			got, n, err := decodeBoth(t, "user", append(rec[:len(rec):len(rec)], next...))
			if err != nil || n != len(rec) || !eventsMatch(got, want) {
				t.Errorf("DecodeEvent(record, next) = %+v, %d, %v; want %+v, %d, nil", got, n, err, want, len(rec))
			}
			if !got.Time.IsZero() && got.Time.Location() != time.UTC {
				t.Errorf("decoded time in %v; want UTC", got.Time.Location())
			}
			// Canonical: the decoded event encodes to the same bytes, and
			// so does the event again (map order must not matter).
			for range 3 {
				if again := AppendEvent(nil, &got); !bytes.Equal(again, rec) {
					t.Fatalf("AppendEvent(DecodeEvent(r)) = %q; want r = %q", again, rec)
				}
			}
			if id, err := DecodeEventID(rec); err != nil || id != tt.e.ID {
				t.Errorf("DecodeEventID() = %q, %v; want %q, nil", id, err, tt.e.ID)
			}
			// Every truncation is corrupt, never a panic.
			for i := range len(rec) {
				if _, _, err := decodeBoth(t, "user", rec[:i]); !errors.Is(err, ErrCorrupt) {
					t.Errorf("DecodeEvent(%d of %d bytes) error = %v; want %v", i, len(rec), err, ErrCorrupt)
				}
			}
		})
	}
}

func TestItemRecord(t *testing.T) {
	next := AppendItem(nil, &dataset.Item{ID: "next"})
	tests := []dataset.Item{
		{},
		{ID: "i2", Title: "T", Category: "c", Brand: "b", Price: 9.99, Description: "d\x00", OutOfStock: true},
		{ID: "i3", Price: math.Inf(-1), Hidden: true},
		{ID: "i4", Price: math.NaN(), OutOfStock: true, Hidden: true},
		{ID: strings.Repeat("\xff", 200), Description: strings.Repeat("long ", 100)},
	}
	for _, want := range tests {
		rec := AppendItem(nil, &want)
		in := append(rec[:len(rec):len(rec)], next...)
		got, n, err := DecodeItem(in)
		gotS, nS, errS := DecodeItem(string(in))
		if err != nil || n != len(rec) || !itemsMatch(got, want) {
			t.Errorf("DecodeItem([]byte(record, next)) = %+v, %d, %v; want %+v, %d, nil", got, n, err, want, len(rec))
		}
		if errS != nil || nS != len(rec) || !itemsMatch(gotS, want) {
			t.Errorf("DecodeItem(string(record, next)) = %+v, %d, %v; want %+v, %d, nil", gotS, nS, errS, want, len(rec))
		}
		if again := AppendItem(nil, &got); !bytes.Equal(again, rec) {
			t.Errorf("AppendItem(DecodeItem(r)) = %q; want r = %q", again, rec)
		}
		for i := range len(rec) {
			if _, _, err := DecodeItem(rec[:i]); !errors.Is(err, ErrCorrupt) {
				t.Errorf("DecodeItem(%d of %d bytes of %+v) error = %v; want %v", i, len(rec), want, err, ErrCorrupt)
			}
		}
	}
}

// impressionsMatch reports whether a and b are equal, times in other
// locations and nil against empty slices included.
func impressionsMatch(a, b Impression) bool {
	return a.ID == b.ID && a.Time.Equal(b.Time) && a.Kind == b.Kind && a.UserID == b.UserID &&
		a.SessionID == b.SessionID && a.Route == b.Route && a.Arm == b.Arm &&
		slices.Equal(a.Models, b.Models) && slices.Equal(a.Items, b.Items)
}

// outcomesMatch is == with times compared by Equal and Revenue by its bits.
func outcomesMatch(a, b Outcome) bool {
	if !a.Time.Equal(b.Time) || math.Float64bits(a.Revenue) != math.Float64bits(b.Revenue) {
		return false
	}
	a.Time, b.Time = time.Time{}, time.Time{}
	a.Revenue, b.Revenue = 0, 0
	return a == b
}

func TestImpressionRecord(t *testing.T) {
	next := AppendImpression(nil, &Impression{ID: "next", Items: []string{"i"}})
	tests := []struct {
		name string
		imp  Impression
	}{
		{"zero", Impression{}},
		{"typical", Impression{
			ID: "rec-9f1c2d3e-aaaa-bbbb-cccc-0123456789ab", Time: time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.UTC),
			Kind: "recommend", SessionID: "sess-42", Route: "home", Arm: "exp-1/b",
			Models: []ModelVersion{{Name: "als", Version: "v7"}, {Name: "ranker", Version: "v8", Canary: true}},
			Items:  []string{"item-1", "item-2", "item-3", "item-4", "item-5", "item-6", "item-7", "item-8", "item-9", "item-10"},
		}},
		{"empty strings in lists", Impression{ID: "x", Models: []ModelVersion{{}}, Items: []string{"", ""}}},
		{"before 1970", Impression{ID: "old", Time: time.Date(1950, 1, 1, 0, 0, 0, 1, time.UTC)}},
		{"other location", Impression{Time: time.Date(2026, 1, 2, 3, 4, 5, 999999999, time.FixedZone("x", 3600))}},
		{"binary and unicode", Impression{ID: "ä\x00\xff", Kind: "\x80", Items: []string{strings.Repeat("x", 300)}}},
		{"many items", Impression{ID: "m", Items: slices.Repeat([]string{"abc"}, 200)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := AppendImpression(nil, &tt.imp)
			if got := AppendImpression([]byte("prefix"), &tt.imp); !bytes.Equal(got, append([]byte("prefix"), rec...)) {
				t.Errorf("AppendImpression(prefix) = %q; want prefix then %q", got, rec)
			}
			want := tt.imp
			want.UserID = "user"
			in := append(rec[:len(rec):len(rec)], next...)
			got, n, err := DecodeImpression("user", in)
			gotS, nS, errS := DecodeImpression("user", string(in))
			if err != nil || n != len(rec) || !impressionsMatch(got, want) {
				t.Errorf("DecodeImpression([]byte(record, next)) = %+v, %d, %v; want %+v, %d, nil", got, n, err, want, len(rec))
			}
			if errS != nil || nS != len(rec) || !impressionsMatch(gotS, want) {
				t.Errorf("DecodeImpression(string(record, next)) = %+v, %d, %v; want %+v, %d, nil", gotS, nS, errS, want, len(rec))
			}
			if !got.Time.IsZero() && got.Time.Location() != time.UTC {
				t.Errorf("decoded time in %v; want UTC", got.Time.Location())
			}
			if again := AppendImpression(nil, &got); !bytes.Equal(again, rec) {
				t.Errorf("AppendImpression(DecodeImpression(r)) = %q; want r = %q", again, rec)
			}
			for i := range len(rec) {
				if _, _, err := DecodeImpression("user", rec[:i]); !errors.Is(err, ErrCorrupt) {
					t.Errorf("DecodeImpression(%d of %d bytes) error = %v; want %v", i, len(rec), err, ErrCorrupt)
				}
			}
		})
	}
}

func TestOutcomeRecord(t *testing.T) {
	next := AppendOutcome(nil, &Outcome{ImpressionID: "next"})
	tests := []struct {
		name string
		out  Outcome
	}{
		{"zero", Outcome{}},
		{"click", Outcome{ImpressionID: "rec-1", EventID: "ev-1", ItemID: "item-3", Type: "view", Position: 3,
			Time: time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.UTC), ByID: true}},
		{"purchase", Outcome{ImpressionID: "rec-1", ItemID: "item-3", Type: "purchase", Purchase: true, Revenue: 59.97,
			Time: time.Date(2026, 5, 7, 0, 0, 0, 1, time.FixedZone("y", -7200))}},
		{"both flags", Outcome{Purchase: true, ByID: true}},
		{"extreme values", Outcome{Position: math.MinInt64, Revenue: math.Float64frombits(0x7ff8_dead_beef_0001),
			Time: time.Unix(math.MaxInt64, 999999999)}},
		{"large position", Outcome{Position: math.MaxInt64, Revenue: math.Inf(-1)}},
		{"binary IDs", Outcome{ImpressionID: "\x00\xff", EventID: "ä", ItemID: strings.Repeat("i", 200)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := AppendOutcome(nil, &tt.out)
			if got := AppendOutcome([]byte("prefix"), &tt.out); !bytes.Equal(got, append([]byte("prefix"), rec...)) {
				t.Errorf("AppendOutcome(prefix) = %q; want prefix then %q", got, rec)
			}
			want := tt.out
			want.UserID = "user"
			in := append(rec[:len(rec):len(rec)], next...)
			got, n, err := DecodeOutcome("user", in)
			gotS, nS, errS := DecodeOutcome("user", string(in))
			if err != nil || n != len(rec) || !outcomesMatch(got, want) {
				t.Errorf("DecodeOutcome([]byte(record, next)) = %+v, %d, %v; want %+v, %d, nil", got, n, err, want, len(rec))
			}
			if errS != nil || nS != len(rec) || !outcomesMatch(gotS, want) {
				t.Errorf("DecodeOutcome(string(record, next)) = %+v, %d, %v; want %+v, %d, nil", gotS, nS, errS, want, len(rec))
			}
			if !got.Time.IsZero() && got.Time.Location() != time.UTC {
				t.Errorf("decoded time in %v; want UTC", got.Time.Location())
			}
			if again := AppendOutcome(nil, &got); !bytes.Equal(again, rec) {
				t.Errorf("AppendOutcome(DecodeOutcome(r)) = %q; want r = %q", again, rec)
			}
			for i := range len(rec) {
				if _, _, err := DecodeOutcome("user", rec[:i]); !errors.Is(err, ErrCorrupt) {
					t.Errorf("DecodeOutcome(%d of %d bytes) error = %v; want %v", i, len(rec), err, ErrCorrupt)
				}
			}
		})
	}
}

// TestRecordKinds checks that no decoder accepts a record of another
// kind: the tags differ in their kind bits, whatever the fields.
func TestRecordKinds(t *testing.T) {
	recs := map[string][]byte{
		"event":      AppendEvent(nil, &Event{ID: "x"}),
		"item":       AppendItem(nil, &dataset.Item{ID: "x"}),
		"impression": AppendImpression(nil, &Impression{ID: "x"}),
		"outcome":    AppendOutcome(nil, &Outcome{ImpressionID: "x"}),
	}
	decoders := map[string]func([]byte) error{
		"event":      func(b []byte) error { _, _, err := DecodeEvent("u", b); return err },
		"item":       func(b []byte) error { _, _, err := DecodeItem(b); return err },
		"impression": func(b []byte) error { _, _, err := DecodeImpression("u", b); return err },
		"outcome":    func(b []byte) error { _, _, err := DecodeOutcome("u", b); return err },
	}
	for kind, rec := range recs {
		for dk, decode := range decoders {
			err := decode(rec)
			if dk == kind && err != nil {
				t.Errorf("decode %s record as %s: %v; want nil", kind, dk, err)
			}
			if dk != kind && (!errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "tag")) {
				t.Errorf("decode %s record as %s: %v; want %v naming the tag", kind, dk, err, ErrCorrupt)
			}
		}
	}
}

// TestDecodeCorrupt feeds records no encoder writes: each must fail with
// ErrCorrupt, naming the fault.
func TestDecodeCorrupt(t *testing.T) {
	ev := func(e Event) string { return string(AppendEvent(nil, &e)) }
	it := func(i dataset.Item) string { return string(AppendItem(nil, &i)) }
	good := ev(Event{ID: "id", ItemID: "item", Context: map[string]string{"k": "v"}})
	// zeroEvent is a zero event's record up to its nanoseconds included;
	// tails replace what follows.
	zeroEvent := "\x01\x00\x00\x00" + strings.Repeat("\x00", 8) + "\xff\xdb\x8f\xf9\xce\x03\x00"
	if z := ev(Event{}); !strings.HasPrefix(z, zeroEvent) {
		t.Fatalf("zero event record %q does not start with %q", z, zeroEvent)
	}
	imp := func(i Impression) string { return string(AppendImpression(nil, &i)) }
	out := func(o Outcome) string { return string(AppendOutcome(nil, &o)) }
	// zeroImp is a zero impression's record up to its nanoseconds included.
	zeroImp := "\x41\x00\xff\xdb\x8f\xf9\xce\x03\x00"
	if z := imp(Impression{}); z != zeroImp+"\x00\x00\x00\x00\x00\x00" {
		t.Fatalf("zero impression record %q does not start with %q", z, zeroImp)
	}
	zeroOut := out(Outcome{})
	tests := []struct {
		name   string
		kind   string // "", "item", "impression" or "outcome"; "" is an event
		in     string
		reason string // in the error
	}{
		{"empty", "", "", "truncated or malformed tag"},
		{"truncated", "", good[:len(good)-1], "context value"},
		{"unknown version", "", "\x02" + good[1:], "tag 0x2"},
		{"item as event", "", it(dataset.Item{ID: "id"}), "tag 0x81"},
		{"event as item", "item", good, "tag 0x1"},
		{"length past end", "", "\x01\x7fab", "malformed ID at byte 2"},
		{"length of 2^64-1", "", "\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", "malformed ID at byte 11"},
		{"varint over 64 bits", "", "\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", "malformed ID at byte 1"},
		{"varint with a redundant zero group", "", "\x01\x80" + zeroEvent[1:] + "\x00\x00\x00", "malformed ID at byte 1"},
		{"unterminated varint", "", "\x01\x80\x80", "malformed ID at byte 1"},
		{"nanoseconds of 1e9", "", "\x01\x00\x00\x00" + strings.Repeat("\x00", 8) + "\x00\x80\x94\xeb\xdc\x03\x00\x00\x00", "1000000000 nanoseconds"},
		{"context count past the bytes", "", zeroEvent + "\x00\x00\x05\x00\x00\x00\x00", "5 context pairs in 4 bytes"},
		{"duplicate context key", "", zeroEvent + "\x00\x00\x02\x01k\x00\x01k\x00", `context key "k" after "k"`},
		{"unsorted context keys", "", zeroEvent + "\x00\x00\x02\x01b\x00\x01a\x00", `context key "a" after "b"`},
		{"unknown item flag", "item", it(dataset.Item{})[:len(it(dataset.Item{}))-1] + "\x04", "flags 0x4"},
		{"truncated item", "item", "\x81\x00", "title"},
		{"event as impression", "impression", good, "tag 0x1"},
		{"outcome as impression", "impression", zeroOut, "tag 0xc1"},
		{"impression as outcome", "outcome", imp(Impression{}), "tag 0x41"},
		{"impression version 2", "impression", "\x42" + imp(Impression{})[1:], "tag 0x42"},
		{"model count past the bytes", "impression", zeroImp + "\x00\x00\x00\x00\x02\x00\x00\x00\x00", "2 models in 4 bytes"},
		{"item count past the bytes", "impression", zeroImp + "\x00\x00\x00\x00\x00\x03\x00\x00", "3 items in 2 bytes"},
		{"unknown model flag", "impression", zeroImp + "\x00\x00\x00\x00\x01\x00\x00\x02\x00", "model flags 0x2"},
		{"truncated model", "impression", zeroImp + "\x00\x00\x00\x00\x01\x01a\x00", "malformed model flags"},
		{"unknown outcome flag", "outcome", zeroOut[:len(zeroOut)-1] + "\x04", "outcome flags 0x4"},
		{"outcome nanoseconds of 1e9", "outcome", "\xc1\x00\x00\x00\x00\x00\x80\x94\xeb\xdc\x03\x00" + strings.Repeat("\x00", 9), "1000000000 nanoseconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			switch tt.kind {
			case "item":
				_, _, err = DecodeItem(tt.in)
			case "impression":
				_, _, err = DecodeImpression("u", tt.in)
			case "outcome":
				_, _, err = DecodeOutcome("u", tt.in)
			default:
				_, _, err = DecodeEvent("u", tt.in)
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("decode(%q) error = %v; want %v naming %q", tt.in, err, ErrCorrupt, tt.reason)
			}
		})
	}
	if _, err := DecodeEventID("\x02\x00"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("DecodeEventID(version 2) error = %v; want %v", err, ErrCorrupt)
	}
}

// TestDecodeAllocs holds DecodeEvent to its promise: from a string,
// nothing is allocated but the Context map.
func TestDecodeAllocs(t *testing.T) {
	rec := string(AppendEvent(nil, &Event{ID: "id", ItemID: "item", Type: "view", SessionID: "session"}))
	if n := testing.AllocsPerRun(100, func() {
		if _, _, err := DecodeEvent("u", rec); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("DecodeEvent(string) allocates %v times; want 0", n)
	}
	e := Event{ID: "id", Context: map[string]string{"a": "1", "b": "2"}}
	buf := AppendEvent(nil, &e)
	if n := testing.AllocsPerRun(100, func() { buf = AppendEvent(buf[:0], &e) }); n != 0 {
		t.Errorf("AppendEvent(2 context pairs) allocates %v times; want 0", n)
	}
}

// FuzzDecodeEvent checks that no input panics a decoder (of any record
// kind) and that whatever decodes is canonical: it encodes back to exactly
// the bytes it came from.
func FuzzDecodeEvent(f *testing.F) {
	f.Add(AppendEvent(nil, &Event{}))
	f.Add(AppendEvent(nil, &Event{ID: "e", ItemID: "i", Type: "view", Value: 2, Time: time.Unix(1e9, 5),
		SessionID: "s", RecommendationID: "r", Context: map[string]string{"a": "1", "b": ""}}))
	f.Add(AppendItem(nil, &dataset.Item{ID: "i", Title: "t", Price: 1, Hidden: true}))
	f.Add([]byte("\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"))
	f.Add(AppendImpression(nil, &Impression{ID: "r", Time: time.Unix(1e9, 5), Kind: "recommend", Route: "home",
		Arm: "e/a", Models: []ModelVersion{{Name: "m", Version: "1", Canary: true}}, Items: []string{"a", "b"}}))
	f.Add(AppendOutcome(nil, &Outcome{ImpressionID: "r", EventID: "e", ItemID: "a", Type: "purchase",
		Purchase: true, Position: 2, Revenue: 9.5, Time: time.Unix(1e9, 7), ByID: true}))
	f.Fuzz(func(t *testing.T, in []byte) {
		if e, n, err := DecodeEvent("u", in); err == nil {
			if n <= 0 || n > len(in) {
				t.Fatalf("DecodeEvent() took %d of %d bytes", n, len(in))
			}
			if again := AppendEvent(nil, &e); !bytes.Equal(again, in[:n]) {
				t.Fatalf("AppendEvent(DecodeEvent(%q)) = %q; want the input", in[:n], again)
			}
			if id, err := DecodeEventID(in); err != nil || id != e.ID {
				t.Fatalf("DecodeEventID() = %q, %v; want %q, nil", id, err, e.ID)
			}
		} else if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("DecodeEvent() error = %v; want %v", err, ErrCorrupt)
		}
		if it, n, err := DecodeItem(in); err == nil {
			if again := AppendItem(nil, &it); !bytes.Equal(again, in[:n]) {
				t.Fatalf("AppendItem(DecodeItem(%q)) = %q; want the input", in[:n], again)
			}
		} else if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("DecodeItem() error = %v; want %v", err, ErrCorrupt)
		}
		if imp, n, err := DecodeImpression("u", in); err == nil {
			if n <= 0 || n > len(in) {
				t.Fatalf("DecodeImpression() took %d of %d bytes", n, len(in))
			}
			if again := AppendImpression(nil, &imp); !bytes.Equal(again, in[:n]) {
				t.Fatalf("AppendImpression(DecodeImpression(%q)) = %q; want the input", in[:n], again)
			}
		} else if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("DecodeImpression() error = %v; want %v", err, ErrCorrupt)
		}
		if out, n, err := DecodeOutcome("u", in); err == nil {
			if n <= 0 || n > len(in) {
				t.Fatalf("DecodeOutcome() took %d of %d bytes", n, len(in))
			}
			if again := AppendOutcome(nil, &out); !bytes.Equal(again, in[:n]) {
				t.Fatalf("AppendOutcome(DecodeOutcome(%q)) = %q; want the input", in[:n], again)
			}
		} else if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("DecodeOutcome() error = %v; want %v", err, ErrCorrupt)
		}
	})
}

// BenchmarkEventRecord measures the record codec against encoding/json,
// the alternative considered, on two typical live events: without a
// context (shape=plain) and with a two-pair one (shape=context). Decoding
// from a string is Redis's case (no copies), from bytes Pebble's (every
// string copied). Start-up pays one decode per stored event.
func BenchmarkEventRecord(b *testing.B) {
	plain := Event{
		ID: "9f1c2d3e-aaaa-bbbb-cccc-0123456789ab", UserID: "user-123456", ItemID: "item-98765",
		Type: "view", Value: 1, Time: time.Unix(1700000000, 0).UTC(), SessionID: "sess-42",
	}
	withContext := Event{
		ID: "ev-123456", UserID: "user-0", ItemID: "item-0", Type: "view", Value: 1,
		Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), SessionID: "sess-0", RecommendationID: "rec-0123456789",
		Context: map[string]string{"page": "home", "device": "mobile"},
	}
	for _, shape := range []struct {
		name string
		e    Event
	}{{"plain", plain}, {"context", withContext}} {
		e := shape.e
		rec := AppendEvent(nil, &e)
		js, err := json.Marshal(&e)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("shape="+shape.name+"/codec=record/op=encode", func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				buf = AppendEvent(buf[:0], &e)
			}
			b.ReportMetric(float64(len(rec)), "bytes/event")
		})
		b.Run("shape="+shape.name+"/codec=record/op=decode-string", func(b *testing.B) {
			b.ReportAllocs()
			s := string(rec)
			for b.Loop() {
				if _, _, err := DecodeEvent(e.UserID, s); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("shape="+shape.name+"/codec=record/op=decode-bytes", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := DecodeEvent(e.UserID, rec); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("shape="+shape.name+"/codec=json/op=encode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := json.Marshal(&e); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(js)), "bytes/event")
		})
		b.Run("shape="+shape.name+"/codec=json/op=decode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var got Event
				if err := json.Unmarshal(js, &got); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
