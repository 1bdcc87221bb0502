package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	pb "github.com/recserve/recserve/proto/recserve/v1"
	"github.com/recserve/recserve/serving/store"
)

// EventStore is what the EventService needs of the live store.
type EventStore interface {
	Types() store.EventTypes
	Track(ctx context.Context, events []store.Event) (int, error)
	UpsertItems(ctx context.Context, items []dataset.Item) error
	DeleteItems(ctx context.Context, ids []string) (int, error)
	DeleteUser(ctx context.Context, userID string) (int, error)
	UserEvents(ctx context.Context, userID string, limit int) ([]store.Event, int, error)
	Export(ctx context.Context, item func(dataset.Item) error, event func(store.Event) error) error
}

// streamBatch is how many events TrackStream commits at once: large enough
// that one synced write carries many events, small enough that an
// acknowledged stream never waits long.
const streamBatch = 1000

// streamFlushAfter bounds how long an event of a quiet TrackStream waits
// for its batch to fill before it is committed anyway.
const streamFlushAfter = 50 * time.Millisecond

// defaultUserEvents is GetUser's limit when the request sets none.
const defaultUserEvents = 100

// eventService implements pb.EventServiceServer over an EventStore. Clock
// is the server's time (events without a timestamp get it).
type eventService struct {
	pb.UnimplementedEventServiceServer
	store   EventStore
	log     *slog.Logger
	now     func() time.Time
	metrics *eventMetrics
}

func (s *eventService) Track(ctx context.Context, in *pb.TrackRequest) (*pb.TrackResponse, error) {
	evs := in.GetEvents()
	if len(evs) == 0 {
		return nil, toStatus(ctx, s.log, models.NewFieldError("events", "at least one event is required"))
	}
	if len(evs) > store.MaxBatch {
		return nil, toStatus(ctx, s.log, models.NewFieldError("events", "%d events exceed the limit of %d per call (use TrackStream)", len(evs), store.MaxBatch))
	}
	types, now := s.store.Types(), s.now()
	batch := make([]store.Event, len(evs))
	for i, e := range evs {
		var err error
		if batch[i], err = eventFrom(e, types, now); err != nil {
			return nil, toStatus(ctx, s.log, models.Within(fmt.Sprintf("events[%d].", i), err))
		}
	}
	stored, err := s.store.Track(ctx, batch)
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	s.metrics.observe("Track", len(batch), len(batch)-stored)
	return &pb.TrackResponse{Accepted: int64(len(batch)), Duplicates: int64(len(batch) - stored)}, nil
}

// TrackStream commits events in batches of streamBatch as they arrive, a
// smaller batch once its first event has waited streamFlushAfter (a quiet
// stream's events are not held back), and the rest when the client closes
// the stream. An invalid event or a failed commit ends the stream; what
// was committed before stays (the response never arrives, so a client
// retries from its last acknowledged point; the event ids make that safe).
func (s *eventService) TrackStream(stream pb.EventService_TrackStreamServer) error {
	ctx := stream.Context()
	types := s.store.Types()
	var accepted, dups int64
	batch := make([]store.Event, 0, streamBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		stored, err := s.store.Track(ctx, batch)
		if err != nil {
			return toStatus(ctx, s.log, err)
		}
		accepted += int64(len(batch))
		dups += int64(len(batch) - stored)
		s.metrics.observe("TrackStream", len(batch), len(batch)-stored)
		batch = batch[:0]
		return nil
	}
	// Recv blocks, so it runs on its own goroutine and the loop below can
	// also wake for the flush timer. The goroutine ends at the stream's
	// end or error, or when the handler has returned (ctx is done then).
	type received struct {
		e   *pb.Event
		err error
	}
	in := make(chan received, 64)
	go func() {
		for {
			e, err := stream.Recv()
			select {
			case in <- received{e, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for n := 0; ; {
		select {
		case <-ctx.Done():
			return toStatus(ctx, s.log, ctx.Err())
		case <-timer.C:
			if err := flush(); err != nil {
				return err
			}
			continue
		case r := <-in:
			if errors.Is(r.err, io.EOF) {
				if err := flush(); err != nil {
					return err
				}
				return stream.SendAndClose(&pb.TrackResponse{Accepted: accepted, Duplicates: dups})
			}
			if r.err != nil {
				return r.err
			}
			ev, err := eventFrom(r.e, types, s.now())
			if err != nil {
				return toStatus(ctx, s.log, models.Within(fmt.Sprintf("events[%d].", n), err))
			}
			n++
			batch = append(batch, ev)
			switch len(batch) {
			case 1:
				timer.Reset(streamFlushAfter)
			case streamBatch:
				timer.Stop()
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
}

func (s *eventService) UpsertItems(ctx context.Context, in *pb.UpsertItemsRequest) (*pb.UpsertItemsResponse, error) {
	pis := in.GetItems()
	if len(pis) == 0 {
		return nil, toStatus(ctx, s.log, models.NewFieldError("items", "at least one item is required"))
	}
	if len(pis) > store.MaxBatch {
		return nil, toStatus(ctx, s.log, models.NewFieldError("items", "%d items exceed the limit of %d per call", len(pis), store.MaxBatch))
	}
	items := make([]dataset.Item, len(pis))
	for i, p := range pis {
		items[i] = fromProtoItem(p)
		if err := store.ValidateItem(fmt.Sprintf("items[%d].", i), items[i]); err != nil {
			return nil, toStatus(ctx, s.log, err)
		}
	}
	if err := s.store.UpsertItems(ctx, items); err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	return &pb.UpsertItemsResponse{Upserted: int64(len(items))}, nil
}

func (s *eventService) DeleteItems(ctx context.Context, in *pb.DeleteItemsRequest) (*pb.DeleteItemsResponse, error) {
	ids := in.GetItemIds()
	if len(ids) == 0 {
		return nil, toStatus(ctx, s.log, models.NewFieldError("item_ids", "at least one item id is required"))
	}
	if len(ids) > store.MaxBatch {
		return nil, toStatus(ctx, s.log, models.NewFieldError("item_ids", "%d ids exceed the limit of %d per call", len(ids), store.MaxBatch))
	}
	for i, id := range ids {
		if err := store.CheckID(fmt.Sprintf("item_ids[%d]", i), id); err != nil {
			return nil, toStatus(ctx, s.log, err)
		}
	}
	n, err := s.store.DeleteItems(ctx, ids)
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	return &pb.DeleteItemsResponse{Deleted: int64(n)}, nil
}

func (s *eventService) DeleteUser(ctx context.Context, in *pb.DeleteUserRequest) (*pb.DeleteUserResponse, error) {
	if err := store.CheckID("user_id", in.GetUserId()); err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	n, err := s.store.DeleteUser(ctx, in.GetUserId())
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	return &pb.DeleteUserResponse{EventsDeleted: int64(n)}, nil
}

func (s *eventService) GetUser(ctx context.Context, in *pb.GetUserRequest) (*pb.GetUserResponse, error) {
	if err := store.CheckID("user_id", in.GetUserId()); err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	limit := int(in.GetLimit())
	switch {
	case limit < 0 || limit > store.MaxBatch:
		return nil, toStatus(ctx, s.log, models.NewFieldError("limit", "must be between 0 and %d (0 means %d), got %d", store.MaxBatch, defaultUserEvents, limit))
	case limit == 0:
		limit = defaultUserEvents
	}
	evs, total, err := s.store.UserEvents(ctx, in.GetUserId(), limit)
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	out := &pb.GetUserResponse{Total: int64(total), Known: total > 0, Events: make([]*pb.Event, len(evs))}
	for i, e := range evs {
		out.Events[i] = toProtoEvent(e)
	}
	return out, nil
}

// eventFrom converts and validates one event; its errors name the field
// ("item_id"), which the caller places under the event's index (the prefix
// is built only for a bad event: ingest validates every event).
func eventFrom(e *pb.Event, types store.EventTypes, now time.Time) (store.Event, error) {
	if ts := e.GetTimestamp(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			return store.Event{}, &models.FieldError{Field: "timestamp", Err: err}
		}
	}
	ev := FromProtoEvent(e)
	return ev, types.Validate("", &ev, now)
}

// FromProtoEvent converts an event of the API without validating it (an
// unset timestamp stays zero): the server validates what clients send, and
// recctl export reads what the server already stored.
func FromProtoEvent(e *pb.Event) store.Event {
	ev := store.Event{
		ID: e.GetEventId(), UserID: e.GetUserId(), ItemID: e.GetItemId(), Type: e.GetEvent(),
		Value: e.GetValue(), SessionID: e.GetSessionId(), RecommendationID: e.GetRecommendationId(),
		Context: e.GetContext(),
	}
	if ts := e.GetTimestamp(); ts != nil {
		ev.Time = ts.AsTime()
	}
	return ev
}

func toProtoEvent(e store.Event) *pb.Event {
	return &pb.Event{
		EventId: e.ID, UserId: e.UserID, ItemId: e.ItemID, Event: e.Type, Value: e.Value,
		Timestamp: timestamppb.New(e.Time), SessionId: e.SessionID,
		RecommendationId: e.RecommendationID, Context: e.Context,
	}
}

// exportChunk is how many items or events one Export message carries.
const exportChunk = 1000

// Export streams the store's state in chunks of exportChunk.
func (s *eventService) Export(_ *pb.ExportRequest, stream pb.EventService_ExportServer) error {
	ctx := stream.Context()
	var chunk pb.ExportResponse
	send := func() error {
		if len(chunk.Items)+len(chunk.Events) == 0 {
			return nil
		}
		err := stream.Send(&chunk)
		chunk.Items, chunk.Events = chunk.Items[:0], chunk.Events[:0]
		return err
	}
	err := s.store.Export(ctx, func(it dataset.Item) error {
		chunk.Items = append(chunk.Items, toProtoItem(it))
		if len(chunk.Items) == exportChunk {
			return send()
		}
		return nil
	}, func(e store.Event) error {
		if len(chunk.Items) > 0 {
			if err := send(); err != nil {
				return err
			}
		}
		chunk.Events = append(chunk.Events, toProtoEvent(e))
		if len(chunk.Events) == exportChunk {
			return send()
		}
		return nil
	})
	if err == nil {
		err = send()
	}
	return toStatus(ctx, s.log, err)
}

// toProtoItem converts a catalogue item; an unknown (NaN) price is unset.
func toProtoItem(it dataset.Item) *pb.Item {
	p := &pb.Item{
		ItemId: it.ID, Title: it.Title, Category: it.Category, Brand: it.Brand,
		Description: it.Description, OutOfStock: it.OutOfStock, Hidden: it.Hidden,
	}
	if !math.IsNaN(it.Price) {
		p.Price = &it.Price
	}
	return p
}

// FromProtoItem converts a catalogue item of the API; an unset price is
// unknown (NaN). recctl export uses it too.
func FromProtoItem(p *pb.Item) dataset.Item { return fromProtoItem(p) }

func fromProtoItem(p *pb.Item) dataset.Item {
	it := dataset.Item{
		ID: p.GetItemId(), Title: p.GetTitle(), Category: p.GetCategory(), Brand: p.GetBrand(),
		Price: math.NaN(), Description: p.GetDescription(), OutOfStock: p.GetOutOfStock(), Hidden: p.GetHidden(),
	}
	if p.Price != nil {
		it.Price = p.GetPrice()
	}
	return it
}

// errNoStateStore answers event writes on a server assembled without a
// state store (FailedPrecondition).
var errNoStateStore = errors.New("this server has no state store: start it with --state DIR or --store redis://…")

// noEvents is the EventStore of a server without a state store.
type noEvents struct{}

func (noEvents) Types() store.EventTypes { return store.DefaultEventTypes() }
func (noEvents) Track(context.Context, []store.Event) (int, error) {
	return 0, errNoStateStore
}
func (noEvents) UpsertItems(context.Context, []dataset.Item) error { return errNoStateStore }
func (noEvents) DeleteItems(context.Context, []string) (int, error) {
	return 0, errNoStateStore
}
func (noEvents) DeleteUser(context.Context, string) (int, error) { return 0, errNoStateStore }
func (noEvents) UserEvents(context.Context, string, int) ([]store.Event, int, error) {
	return nil, 0, errNoStateStore
}
func (noEvents) Export(context.Context, func(dataset.Item) error, func(store.Event) error) error {
	return errNoStateStore
}
