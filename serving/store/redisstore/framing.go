package redisstore

import (
	"encoding/binary"
	"fmt"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/serving/store"
)

// Events and items are stored as the store package's records
// (store.AppendEvent, store.AppendItem). What Redis adds is how they are
// framed:
//
//   - an items hash value is exactly one item record;
//   - a user's list element is the 6-byte big-endian sequence number of the
//     change entry that announced the event (elemSeqLen), then exactly one
//     event record; the Lua scripts read that number and the event ID
//     (which follows the record's tag byte) without knowing the rest;
//   - a change entry's v field is its records one after another (a record
//     says where it ends), or for deleted items (k = d) each ID as a
//     uvarint length and its bytes.
//
// Decoding works on the strings go-redis returns: the decoded strings
// share their memory, so an event costs no allocation beyond its Context.

// elemSeqLen is the length of the sequence number a list element starts
// with.
const elemSeqLen = 6

// decodeElem returns the change sequence number a user's list element
// starts with and the event after it, giving it userID.
func decodeElem(userID, elem string) (uint64, store.Event, error) {
	if len(elem) < elemSeqLen {
		return 0, store.Event{}, fmt.Errorf("%w: list element of %d bytes", store.ErrCorrupt, len(elem))
	}
	var seq uint64
	for i := range elemSeqLen {
		seq = seq<<8 | uint64(elem[i])
	}
	rec := elem[elemSeqLen:]
	e, n, err := store.DecodeEvent(userID, rec)
	if err == nil && n != len(rec) {
		err = fmt.Errorf("%w: %d bytes after the event record", store.ErrCorrupt, len(rec)-n)
	}
	return seq, e, err
}

// decodeItemValue decodes an items hash value, one item record.
func decodeItemValue(v string) (dataset.Item, error) {
	it, n, err := store.DecodeItem(v)
	if err == nil && n != len(v) {
		err = fmt.Errorf("%w: %d bytes after the item record", store.ErrCorrupt, len(v)-n)
	}
	return it, err
}

// decodeEvents decodes the event records of a change entry's payload,
// giving them userID.
func decodeEvents(userID, payload string) ([]store.Event, error) {
	var out []store.Event
	for payload != "" {
		e, n, err := store.DecodeEvent(userID, payload)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
		payload = payload[n:]
	}
	return out, nil
}

// decodeItems decodes the item records of a change entry's payload.
func decodeItems(payload string) ([]dataset.Item, error) {
	var out []dataset.Item
	for payload != "" {
		it, n, err := store.DecodeItem(payload)
		if err != nil {
			return nil, err
		}
		out = append(out, it)
		payload = payload[n:]
	}
	return out, nil
}

// appendID appends a deleted item's ID to a deletion entry's payload.
func appendID(b []byte, id string) []byte {
	b = binary.AppendUvarint(b, uint64(len(id)))
	return append(b, id...)
}

// decodeIDs decodes a deletion entry's payload, the IDs appendID wrote.
func decodeIDs(payload string) ([]string, error) {
	var out []string
	for payload != "" {
		n, w := binary.Uvarint([]byte(payload[:min(len(payload), binary.MaxVarintLen64)]))
		if w <= 0 || n > uint64(len(payload)-w) {
			return nil, fmt.Errorf("%w: deleted item IDs", store.ErrCorrupt)
		}
		out = append(out, payload[w:w+int(n)])
		payload = payload[w+int(n):]
	}
	return out, nil
}
