package pebblestore

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/serving/store"
)

// Key prefixes; the package doc describes the layout.
const (
	prefixItem       = 'i'
	prefixUser       = 'u'
	prefixDedup      = 'd'
	prefixMeta       = 'm'
	prefixImpression = 'p'
	prefixOutcome    = 'o'
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
	return userSpace(b, prefixUser, user)
}

// userSpace is the prefix of user's keys among the keys of kind (events,
// impressions or outcomes), prefix-free as userPrefix describes.
func userSpace(b []byte, kind byte, user string) []byte {
	b = append(b, kind)
	b = binary.AppendUvarint(b, uint64(len(user)))
	return append(b, user...)
}

// splitUserKey splits a key of kind into its user-space prefix (kind,
// length and user) and the rest, which must hold at least minRest bytes.
func splitUserKey(k []byte, kind byte, minRest int) (prefix, user, rest []byte, err error) {
	if len(k) < 1 || k[0] != kind {
		return nil, nil, nil, fmt.Errorf("%w: key %q is not of kind %q", store.ErrCorrupt, k, kind)
	}
	n, w := binary.Uvarint(k[1:])
	if w <= 0 || n > uint64(len(k)-1-w) || uint64(len(k)-1-w)-n < uint64(minRest) {
		return nil, nil, nil, fmt.Errorf("%w: key %q", store.ErrCorrupt, k)
	}
	end := 1 + w + int(n)
	return k[:end], k[1+w : end], k[end:], nil
}

// timeLen is the length of the time in impression and outcome keys.
const timeLen = 8

// appendKeyTime appends t as an impression or outcome key holds it: Unix
// nanoseconds, clamped to an int64 (1678 to 2262), with the sign bit
// flipped so that byte order is time order, before 1970 included; 8 bytes
// big-endian. The clamp keeps the order (a time outside the range sorts
// with the range's end): reads check the exact time in the record.
func appendKeyTime(b []byte, t time.Time) []byte {
	var n int64
	switch sec := t.Unix(); {
	case sec < math.MinInt64/int64(time.Second):
		n = math.MinInt64
	case sec >= math.MaxInt64/int64(time.Second):
		n = math.MaxInt64
	default:
		n = t.UnixNano()
	}
	return binary.BigEndian.AppendUint64(b, uint64(n)^1<<63)
}

// impressionKey is the key of user's impression id at t.
func impressionKey(b []byte, user string, t time.Time, id string) []byte {
	return append(appendKeyTime(userSpace(b, prefixImpression, user), t), id...)
}

// outcomeKey is the key of user's outcome at t whose record is rec: the
// record is the key's last part (the value is empty), so an outcome
// stored twice is one key, as in Redis's sorted sets of records.
func outcomeKey(b []byte, user string, t time.Time, rec []byte) []byte {
	return append(appendKeyTime(userSpace(b, prefixOutcome, user), t), rec...)
}

// impressionValue decodes the value of an impression key of user: exactly
// one impression record (store.AppendImpression), whose ID must be the
// key's (keyID, the key after the user-space prefix and the time).
func impressionValue(user string, keyID, v []byte) (store.Impression, error) {
	imp, n, err := store.DecodeImpression(user, v)
	switch {
	case err != nil:
	case n != len(v):
		err = fmt.Errorf("%w: %d bytes after the impression record", store.ErrCorrupt, len(v)-n)
	case imp.ID != string(keyID):
		err = fmt.Errorf("%w: impression record of ID %q under the key of ID %q", store.ErrCorrupt, imp.ID, keyID)
	}
	return imp, err
}

// outcomeFromKey decodes the outcome an outcome key of user ends with
// (rest is the key after the user-space prefix: the time, then exactly one
// outcome record).
func outcomeFromKey(user string, rest []byte) (store.Outcome, error) {
	if len(rest) < timeLen {
		return store.Outcome{}, fmt.Errorf("%w: outcome key of %d bytes after the user", store.ErrCorrupt, len(rest))
	}
	rec := rest[timeLen:]
	out, n, err := store.DecodeOutcome(user, rec)
	if err == nil && n != len(rec) {
		err = fmt.Errorf("%w: %d bytes after the outcome record", store.ErrCorrupt, len(rec)-n)
	}
	return out, err
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
