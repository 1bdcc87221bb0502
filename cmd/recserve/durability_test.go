package main

import (
	"context"
	"fmt"
	"net"
	"os"

	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/internal/redistest"
	pb "github.com/recserve/recserve/proto/recserve/v1"
	"github.com/recserve/recserve/serving/store"
	"github.com/recserve/recserve/serving/store/pebblestore"
	"github.com/recserve/recserve/serving/store/redisstore"
	"github.com/recserve/recserve/training/trainer"
)

// Durability test sizes: streamEvents events per TrackStream call (the
// server commits every 1,000, so a stream is partly committed before it is
// acknowledged), durableStreams calls in all, and the server is killed three
// quarters into stream killStream.
const (
	durableStreams = 40
	streamEvents   = 2500
	killStream     = 23
)

// adminToken is the child servers' admin token (GetUser needs it).
const adminToken = "durability-test"

// buildRecserve compiles this command into a temporary directory.
func buildRecserve(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "recserve")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// durableFixture writes a small data set and a repository serving
// popularity on it.
func durableFixture(t *testing.T) (data, repo string) {
	t.Helper()
	dir := t.TempDir()
	data, repo = filepath.Join(dir, "data"), filepath.Join(dir, "repo")
	d := &dataset.Dataset{}
	for i := range 50 {
		d.Items = append(d.Items, dataset.Item{ID: fmt.Sprintf("i%02d", i), Category: "c", Price: 1})
		d.Interactions = append(d.Interactions, dataset.Interaction{UserID: fmt.Sprintf("seed%d", i%5), ItemID: fmt.Sprintf("i%02d", i), Event: dataset.View, Value: 1, Timestamp: int64(1000 + i)})
	}
	if err := dataset.Write(data, d); err != nil {
		t.Fatal(err)
	}
	if _, err := trainer.Run(t.Context(), trainer.Job{Kind: "popularity", DataDir: data, Out: filepath.Join(repo, "popularity", "1")}); err != nil {
		t.Fatal(err)
	}
	return data, repo
}

// process is a recserve child process.
type process struct {
	cmd  *exec.Cmd
	addr string
	conn *grpc.ClientConn
	// err is Wait's result, set before done is closed.
	err  error
	done chan struct{}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// startProcess runs bin with args on a free port and waits until it is
// SERVING.
func startProcess(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	addr := freePort(t)
	cmd := exec.Command(bin, append([]string{"--addr", addr, "--log-level", "warn", "--routes-reload", "-1s"}, args...)...)
	cmd.Env = append(os.Environ(), "RECSERVE_ADMIN_TOKEN="+adminToken)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, addr: addr, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill() })
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	p.conn = conn
	hc := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("recserve exited before SERVING: %v\n%s", p.err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("recserve never became SERVING: %v\n%s", err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to exit.
func (p *process) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.conn.Close()
}

// stop sends SIGTERM and waits for a clean exit.
func (p *process) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-p.done
	if p.err != nil {
		t.Fatalf("recserve exited with %v after SIGTERM", p.err)
	}
	p.conn.Close()
}

func durableEvent(n int) *pb.Event {
	return &pb.Event{
		EventId: fmt.Sprintf("e%06d", n), UserId: fmt.Sprintf("u%03d", n%500), ItemId: fmt.Sprintf("i%02d", n%50),
		Event: "view", Timestamp: nil,
	}
}

// sendStream sends stream s's events through one TrackStream call and
// reports whether the server acknowledged it. onSent runs after each Send.
func sendStream(ctx context.Context, c pb.EventServiceClient, s int, onSent func(n int)) error {
	st, err := c.TrackStream(ctx)
	if err != nil {
		return err
	}
	for i := range streamEvents {
		n := s*streamEvents + i
		if err := st.Send(durableEvent(n)); err != nil {
			break // the error comes from CloseAndRecv
		}
		onSent(n)
	}
	resp, err := st.CloseAndRecv()
	if err != nil {
		return err
	}
	if resp.GetAccepted() != streamEvents {
		return fmt.Errorf("stream %d: %d accepted; want %d", s, resp.GetAccepted(), streamEvents)
	}
	return nil
}

// TestDurabilitySIGKILL streams 100,000 events with ids through
// TrackStream, kills the server with SIGKILL in the middle of a stream,
// restarts it and checks that every acknowledged event is stored, then
// resends from the first unacknowledged stream (the same ids) and checks
// that every event is stored exactly once.
func TestDurabilitySIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	bin := buildRecserve(t)
	data, repo := durableFixture(t)
	state := filepath.Join(t.TempDir(), "state")
	args := []string{"--data", data, "--repo", repo, "--state", state}
	count := func() map[string]int {
		b, err := pebblestore.Open(state, pebblestore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		return eventIDs(t, b)
	}
	durability(t, bin, args, count, nil)
}

// TestDurabilitySIGKILLRedis is TestDurabilitySIGKILL on a Redis state store
// configured as docs/OPERATIONS.md recommends (appendonly yes, appendfsync
// always): recserve and then redis-server itself are killed with SIGKILL,
// Redis restarts from its append-only file, and every acknowledged event is
// there exactly once.
func TestDurabilitySIGKILLRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	bin := buildRecserve(t)
	data, repo := durableFixture(t)
	rs := redistest.Start(t)
	args := []string{"--data", data, "--repo", repo, "--store", rs.URL()}
	count := func() map[string]int {
		b, err := redisstore.Open(t.Context(), rs.URL(), redisstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		return eventIDs(t, b)
	}
	durability(t, bin, args, count, func() { rs.Kill(); rs.Restart() })
}

// durability runs the kill-and-restart scenario against a server started
// with args; count reads the stored event ids (server stopped); crash, when
// set, crashes and restarts the state store right after the server's kill.
func durability(t *testing.T, bin string, args []string, count func() map[string]int, crash func()) {
	t.Helper()
	ctx := t.Context()
	p := startProcess(t, bin, args...)
	var killed atomic.Bool
	acked := 0
	for s := range durableStreams {
		ec := pb.NewEventServiceClient(p.conn)
		err := sendStream(ctx, ec, s, func(n int) {
			switch n {
			case killStream*streamEvents + 999:
				// The server commits the stream's first 1,000 events
				// before it acknowledges anything: wait until it has, so
				// the retry below must deduplicate them.
				waitCommitted(t, ec, durableEvent(n))
			case killStream*streamEvents + streamEvents*3/4:
				if killed.CompareAndSwap(false, true) {
					p.kill()
				}
			}
		})
		if err != nil {
			if !killed.Load() {
				t.Fatalf("stream %d failed before the kill: %v", s, err)
			}
			break
		}
		acked = s + 1
	}
	if !killed.Load() || acked != killStream {
		t.Fatalf("acknowledged %d streams, killed %v; want the kill during stream %d", acked, killed.Load(), killStream)
	}
	if crash != nil {
		crash()
	}
	ids := count()
	for n := range acked * streamEvents {
		if id := durableEvent(n).GetEventId(); ids[id] != 1 {
			t.Fatalf("acknowledged event %s stored %d times after SIGKILL; want once", id, ids[id])
		}
	}
	t.Logf("after SIGKILL: %d acknowledged events all stored; %d events stored in all", acked*streamEvents, len(ids))
	if len(ids) < acked*streamEvents+1000 {
		t.Fatalf("%d events stored; want the first 1,000 of the killed stream too (committed, unacknowledged)", len(ids))
	}

	// Restart and resend from the first unacknowledged stream: the retry
	// of events the dead server committed is deduplicated by event id.
	p = startProcess(t, bin, args...)
	for s := acked; s < durableStreams; s++ {
		if err := sendStream(ctx, pb.NewEventServiceClient(p.conn), s, func(int) {}); err != nil {
			t.Fatalf("stream %d after restart: %v", s, err)
		}
	}
	p.stop(t)
	ids = count()
	for n := range durableStreams * streamEvents {
		if id := durableEvent(n).GetEventId(); ids[id] != 1 {
			t.Fatalf("event %s stored %d times; want exactly once", id, ids[id])
		}
	}
	if want := durableStreams * streamEvents; len(ids) != want {
		t.Errorf("%d distinct ids stored; want %d", len(ids), want)
	}
}

// waitCommitted polls GetUser until e is the newest event of its user.
func waitCommitted(t *testing.T, ec pb.EventServiceClient, e *pb.Event) {
	t.Helper()
	ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+adminToken)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := ec.GetUser(ctx, &pb.GetUserRequest{UserId: e.GetUserId(), Limit: 1})
		if err != nil {
			t.Fatalf("GetUser(%s): %v", e.GetUserId(), err)
		}
		if evs := resp.GetEvents(); len(evs) == 1 && evs[0].GetEventId() == e.GetEventId() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("event %s never committed", e.GetEventId())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// eventIDs counts the stored events of the durability test by id (seeded
// events are not counted).
func eventIDs(t *testing.T, b store.Backend) map[string]int {
	t.Helper()
	ids := map[string]int{}
	err := b.Scan(t.Context(), func(dataset.Item) error { return nil }, func(e store.Event) error {
		if strings.HasPrefix(e.ID, "e") {
			ids[e.ID]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}
