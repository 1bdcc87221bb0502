package pebblestore_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/recserve/recserve/serving/store"
	"github.com/recserve/recserve/serving/store/pebblestore"
)

// A client retries a batch it got no answer for: the retry stores only
// what the first attempt did not.
func Example() {
	dir, err := os.MkdirTemp("", "pebblestore")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	s, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	ctx := context.Background()
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	first := []store.Event{{ID: "e1", UserID: "alice", ItemID: "boots", Type: "view", Time: at}}
	retry := append(first, store.Event{ID: "e2", UserID: "alice", ItemID: "boots", Type: "cart", Time: at.Add(time.Minute)})

	for _, batch := range [][]store.Event{first, retry} {
		stored, err := s.Append(ctx, batch)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("sent %d, stored %d\n", len(batch), len(stored))
	}
	events, total, err := s.UserEvents(ctx, "alice", 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("alice: %d events, newest %s of %s\n", total, events[0].Type, events[0].ItemID)
	// Output:
	// sent 1, stored 1
	// sent 2, stored 1
	// alice: 2 events, newest cart of boots
}
