package redisstore

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/internal/redistest"
	"github.com/recserve/recserve/serving/store"
)

// TestFraming checks what redisstore adds to the store's records: the
// sequence number before a list element's record, one record per hash
// value, runs of records and of IDs in change entries.
func TestFraming(t *testing.T) {
	e1 := ev("e1", "u", "i1", 1)
	e2 := ev("e2", "u", "i2", 2)
	it1, it2 := dataset.Item{ID: "i1", Title: "Boots"}, dataset.Item{ID: "i2", Hidden: true}
	rec := func(es ...store.Event) string {
		var b []byte
		for i := range es {
			b = store.AppendEvent(b, &es[i])
		}
		return string(b)
	}
	items := func(its ...dataset.Item) string {
		var b []byte
		for i := range its {
			b = store.AppendItem(b, &its[i])
		}
		return string(b)
	}
	ids := func(ids ...string) string {
		var b []byte
		for _, id := range ids {
			b = appendID(b, id)
		}
		return string(b)
	}
	seq := "\x00\x00\x01\x02\x03\x04"
	tests := []struct {
		name   string
		decode func() (any, error)
		want   any // nil: the decode must fail with store.ErrCorrupt
	}{
		{"element", func() (any, error) {
			n, e, err := decodeElem("u", seq+rec(e1))
			return []any{n, e}, err
		}, []any{uint64(0x01020304), e1}},
		{"element shorter than its sequence number", func() (any, error) {
			_, _, err := decodeElem("u", seq[:5])
			return nil, err
		}, nil},
		{"element without a record", func() (any, error) {
			_, _, err := decodeElem("u", seq)
			return nil, err
		}, nil},
		{"element of two records", func() (any, error) {
			_, _, err := decodeElem("u", seq+rec(e1, e2))
			return nil, err
		}, nil},
		{"item value", func() (any, error) { return decodeItemValue(items(it1)) }, it1},
		{"item value of two records", func() (any, error) {
			_, err := decodeItemValue(items(it1, it2))
			return nil, err
		}, nil},
		{"change events", func() (any, error) { return decodeEvents("u", rec(e1, e2)) }, []store.Event{e1, e2}},
		{"change events, the last cut", func() (any, error) {
			r := rec(e1, e2)
			_, err := decodeEvents("u", r[:len(r)-1])
			return nil, err
		}, nil},
		{"change items", func() (any, error) { return decodeItems(items(it1, it2)) }, []dataset.Item{it1, it2}},
		{"change items with an event", func() (any, error) {
			_, err := decodeItems(items(it1) + rec(e1))
			return nil, err
		}, nil},
		{"deleted IDs", func() (any, error) { return decodeIDs(ids("a", "", "\xff\x00")) }, []string{"a", "", "\xff\x00"}},
		{"deleted IDs, the last cut", func() (any, error) {
			_, err := decodeIDs(ids("a", "bc")[:4])
			return nil, err
		}, nil},
		{"deleted IDs, unterminated length", func() (any, error) {
			_, err := decodeIDs("\x80")
			return nil, err
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.decode()
			if tt.want == nil {
				if !errors.Is(err, store.ErrCorrupt) {
					t.Errorf("decode error = %v; want %v", err, store.ErrCorrupt)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decode = %+v, %v; want %+v, nil", got, err, tt.want)
			}
		})
	}
}

// TestCorruptRecordsFail checks that a record Redis holds but no encoder
// wrote fails the read with store.ErrCorrupt, rather than being skipped or
// decoded into nonsense.
func TestCorruptRecordsFail(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv, Options{})
	ctx := context.Background()
	if _, err := s.Append(ctx, []store.Event{ev("e1", "u", "i1", 1)}); err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer c.Close()
	if err := c.RPush(ctx, s.userKey("u"), "\x00\x00\x00\x00\x00\x01\x02garbage").Err(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.UserEvents(ctx, "u", 10); !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("UserEvents() over a corrupt element error = %v; want %v", err, store.ErrCorrupt)
	}
	if err := c.HSet(ctx, s.items, "i1", "\x81\x05i1").Err(); err != nil {
		t.Fatal(err)
	}
	err := s.Scan(ctx, func(dataset.Item) error { return nil }, func(store.Event) error { return nil })
	if !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("Scan() over a corrupt item error = %v; want %v", err, store.ErrCorrupt)
	}
}
