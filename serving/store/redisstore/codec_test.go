package redisstore

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/serving/store"
)

func TestEventRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		e    store.Event
	}{
		{"zero", store.Event{UserID: "u"}},
		{"full", store.Event{
			ID: "ev-1", UserID: "u1", ItemID: "i1", Type: "purchase", Value: 4.5,
			Time: time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC), SessionID: "s",
			RecommendationID: "rec", Context: map[string]string{"b": "2", "a": "1", "": "empty key"},
		}},
		{"before 1970", store.Event{UserID: "u", Time: time.Date(1950, 1, 1, 0, 0, 0, 1, time.UTC)}},
		{"negative and huge values", store.Event{UserID: "u", Value: -math.MaxFloat64}},
		{"NaN-free infinity", store.Event{UserID: "u", Value: math.Inf(1)}},
		{"unicode and binary", store.Event{UserID: "ü", ID: "ä\x00\xff", ItemID: strings.Repeat("x", 300)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := appendEvent([]byte("prefix"), &tt.e)
			r := reader{s: string(b[len("prefix"):])}
			got, err := r.event(tt.e.UserID)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, tt.e) {
				t.Errorf("decode(encode(e)) = %+v; want %+v", got, tt.e)
			}
			if r.s != "" {
				t.Errorf("%d bytes left after the record", len(r.s))
			}
		})
	}
}

func TestItemRoundTrip(t *testing.T) {
	tests := []dataset.Item{
		{ID: "i"},
		{ID: "i2", Title: "T", Category: "c", Brand: "b", Price: 9.99, Description: "d", OutOfStock: true},
		{ID: "i3", Hidden: true},
		{ID: "i4", OutOfStock: true, Hidden: true},
	}
	for _, it := range tests {
		b := appendItem(nil, &it)
		r := reader{s: string(b)}
		got, err := r.item()
		if err != nil || got != it || r.s != "" {
			t.Errorf("item(appendItem(%+v)) = %+v, %v (%d bytes left); want the item", it, got, err, len(r.s))
		}
	}
}

func TestDecodeCorrupt(t *testing.T) {
	good := string(appendEvent(nil, &store.Event{ID: "id", UserID: "u", ItemID: "item", Context: map[string]string{"k": "v"}}))
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"truncated", good[:len(good)-1]},
		{"length past end", "\x7f\x01"},
		{"wrong version", "\x01\x09"},
		{"overlong varint", "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"},
	}
	for _, tt := range tests {
		r := reader{s: tt.in}
		if _, err := r.event("u"); !errors.Is(err, errCorrupt) {
			t.Errorf("event(%q) error = %v; want errCorrupt", tt.name, err)
		}
	}
}

// BenchmarkCodec compares the binary records with JSON, the alternative the
// package doc mentions, on a typical live event.
func BenchmarkCodec(b *testing.B) {
	e := store.Event{
		ID: "9f1c2d3e-aaaa-bbbb-cccc-0123456789ab", UserID: "user-123456", ItemID: "item-98765",
		Type: "view", Value: 1, Time: time.Unix(1700000000, 0).UTC(), SessionID: "sess-42",
	}
	enc := appendEvent(nil, &e)
	js, _ := json.Marshal(e)
	b.Run("binary/encode", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			buf = appendEvent(buf[:0], &e)
		}
		b.ReportMetric(float64(len(enc)), "bytes/event")
	})
	b.Run("binary/decode", func(b *testing.B) {
		s := string(enc)
		for b.Loop() {
			r := reader{s: s}
			if _, err := r.event("user-123456"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json/encode", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(&e); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(js)), "bytes/event")
	})
	b.Run("json/decode", func(b *testing.B) {
		for b.Loop() {
			var got store.Event
			if err := json.Unmarshal(js, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
}
