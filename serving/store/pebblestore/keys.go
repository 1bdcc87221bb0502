package pebblestore

import (
	"encoding/binary"
	"fmt"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/serving/store"
)

// Key prefixes; the package doc describes the layout.
const (
	prefixItem  = 'i'
	prefixUser  = 'u'
	prefixDedup = 'd'
	prefixMeta  = 'm'
)

// Meta keys: whether seeding finished, and the last event sequence
// assigned.
const (
	keySeeded = string(prefixMeta) + "seeded"
	keySeq    = string(prefixMeta) + "seq"
)

// seqLen is the length of the sequence suffix of an event key.
const seqLen = 8

func itemKey(b []byte, id string) []byte {
	return append(append(b, prefixItem), id...)
}

func dedupKey(b []byte, id string) []byte {
	return append(append(b, prefixDedup), id...)
}

// userPrefix is the prefix every event key of user starts with. The
// uvarint length makes the encoding prefix-free: no user's prefix starts
// another user's keys, whatever bytes the IDs hold.
func userPrefix(b []byte, user string) []byte {
	b = append(b, prefixUser)
	b = binary.AppendUvarint(b, uint64(len(user)))
	return append(b, user...)
}

func eventKey(b []byte, user string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(userPrefix(b, user), seq)
}

// parseEventKey returns the user and sequence of an event key.
func parseEventKey(k []byte) (user string, seq uint64, err error) {
	if len(k) < 1 || k[0] != prefixUser {
		return "", 0, fmt.Errorf("%w: event key %q", store.ErrCorrupt, k)
	}
	n, w := binary.Uvarint(k[1:])
	if w <= 0 || uint64(len(k)-1-w) != n+seqLen {
		return "", 0, fmt.Errorf("%w: event key %q", store.ErrCorrupt, k)
	}
	rest := k[1+w:]
	return string(rest[:n]), binary.BigEndian.Uint64(rest[n:]), nil
}

// prefixEnd returns the smallest key greater than every key starting with
// p, for iterator upper bounds and range deletions; nil means no bound (p
// is all 0xff).
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// eventValue decodes the value of an event key: exactly one event record
// (store.AppendEvent), whose user the key holds. The decoded strings are
// copies, so v may be an iterator's reused buffer.
func eventValue(user string, v []byte) (store.Event, error) {
	e, n, err := store.DecodeEvent(user, v)
	if err == nil && n != len(v) {
		err = fmt.Errorf("%w: %d bytes after the event record", store.ErrCorrupt, len(v)-n)
	}
	return e, err
}

// itemValue decodes the value of item key k: exactly one item record
// (store.AppendItem), whose ID must be the one in the key.
func itemValue(k, v []byte) (dataset.Item, error) {
	it, n, err := store.DecodeItem(v)
	switch {
	case err != nil:
	case n != len(v):
		err = fmt.Errorf("%w: %d bytes after the item record", store.ErrCorrupt, len(v)-n)
	case len(k) == 0 || k[0] != prefixItem || it.ID != string(k[1:]):
		err = fmt.Errorf("%w: item record of ID %q under key %q", store.ErrCorrupt, it.ID, k)
	}
	return it, err
}
