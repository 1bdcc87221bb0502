package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/recserve/recserve/dataset"
	pb "github.com/recserve/recserve/proto/recserve/v1"
)

// paceBurst is how many events replay sends back to back at a set rate.
const paceBurst = 100

// runReplay sends a data set's interactions to a running server through
// TrackStream, at a set rate or as fast as the server takes them: the
// ingest load generator of the benchmarks, and a way to load history into
// a live store. Events get ids (prefix + sequence number) so a replay that
// is run again is deduplicated, and the server's time (history order is
// the file's).
func runReplay(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "replay")
	var cf clientFlags
	cf.registerTimeout(fs, 24*time.Hour)
	data := fs.String("data", "", "canonical data set directory whose interactions.csv is replayed (required)")
	rate := fs.Float64("rate", 0, "events per second in all (0: as fast as the server acknowledges)")
	total := fs.Int("events", 0, "events to send, cycling through the data set (0: each interaction once)")
	duration := fs.Duration("duration", 0, "stop after this long (0: when --events are sent)")
	streams := fs.Int("streams", 2, "concurrent TrackStream calls")
	per := fs.Int("stream-events", 10000, "events per TrackStream call (acknowledged together)")
	prefix := fs.String("id-prefix", "replay-", "event id prefix (a different prefix stores the events again)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, "data"); err != nil {
		return err
	}
	if *streams < 1 || *per < 1 || *rate < 0 || *total < 0 {
		return fmt.Errorf("%w: replay: --streams and --stream-events must be positive, --rate and --events not negative", errUsage)
	}
	d, err := dataset.Read(*data)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	if len(d.Interactions) == 0 {
		return fmt.Errorf("replay: %s has no interactions", *data)
	}
	n := *total
	if n == 0 {
		n = len(d.Interactions)
	}
	conn, ctx, done, err := cf.connect(ctx)
	if err != nil {
		return err
	}
	defer done()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	ec := pb.NewEventServiceClient(conn)
	var next, acked atomic.Int64
	start := time.Now()
	// pace holds event i back until its slot at the requested rate, in
	// bursts of paceBurst events: sleeping per event would cost both sides
	// a syscall per message, which is not how a busy client sends.
	pace := func(i int64) {
		if *rate > 0 && i%paceBurst == 0 {
			if wait := time.Until(start.Add(time.Duration(float64(i) / *rate * float64(time.Second)))); wait > 0 {
				time.Sleep(wait)
			}
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, *streams)
	for w := range *streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				lo := next.Add(int64(*per)) - int64(*per)
				if lo >= int64(n) {
					return
				}
				hi := min(lo+int64(*per), int64(n))
				st, err := ec.TrackStream(ctx)
				if err != nil {
					errs[w] = err
					return
				}
				for i := lo; i < hi && ctx.Err() == nil; i++ {
					pace(i)
					in := d.Interactions[i%int64(len(d.Interactions))]
					if err := st.Send(&pb.Event{
						EventId: fmt.Sprintf("%s%d", *prefix, i), UserId: in.UserID, ItemId: in.ItemID,
						Event: in.Event.String(), Value: in.Value, SessionId: in.SessionID,
					}); err != nil {
						break // CloseAndRecv reports why
					}
				}
				resp, err := st.CloseAndRecv()
				if err != nil {
					if ctx.Err() == nil {
						errs[w] = err
					}
					return
				}
				acked.Add(resp.GetAccepted())
			}
		}()
	}
	wg.Wait()
	dur := time.Since(start)
	fmt.Fprintf(e.stdout, "replayed %d events in %.2fs: %.0f events/s acknowledged, %d streams\n",
		acked.Load(), dur.Seconds(), float64(acked.Load())/dur.Seconds(), *streams)
	return errors.Join(errs...)
}
