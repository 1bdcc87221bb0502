// Package server is recserve's gRPC layer: it assembles the gRPC server
// (interceptors, message limits, health, reflection), exposes the router and
// the model repository as RecommendService and ModelService, converts between
// proto and domain types, and maps domain errors to gRPC statuses in one place.
// Run wires the whole process: store, repository, router and server.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	pb "github.com/recserve/recserve/proto/recserve/v1"
)

var errRequired = errors.New("required")

// Server is an assembled gRPC server. Create it with New; it is safe for
// concurrent use.
type Server struct {
	grpc   *grpc.Server
	health *health.Server
	log    *slog.Logger
	opts   Options
}

// Options configures the gRPC server.
type Options struct {
	// MaxRecvMsgBytes and MaxSendMsgBytes bound message sizes (defaults 16 MiB).
	MaxRecvMsgBytes int
	MaxSendMsgBytes int
	// Reflection registers server reflection (on in DefaultOptions): grpcurl is
	// how people debug us.
	Reflection bool
	// StreamWorkers is the size of the pool of goroutines that run RPCs
	// (default 256). Pooled workers keep their grown stacks, so a request does
	// not pay for growing a fresh goroutine's stack through the handler chain;
	// size it to the expected concurrency, as streams beyond it get their own
	// goroutine.
	StreamWorkers int
	// ShutdownTimeout bounds the graceful drain before in-flight calls are cut
	// (default 10s).
	ShutdownTimeout time.Duration
	// Logger receives one line per RPC and every recovered panic.
	Logger *slog.Logger
	// AdminToken is the bearer token the mutating ModelService methods
	// (DeployModel, ActivateVersion, Rollback, UnloadModel) require in the
	// "authorization: Bearer <token>" metadata. Empty refuses them all; every
	// other method is open. It is never logged.
	AdminToken string
	// TLS, when set, serves TLS with it (credentials.NewTLS); nil serves
	// plaintext.
	TLS *tls.Config
	// Registerer, when set, receives the per-RPC metrics of the
	// go-grpc-middleware Prometheus provider (grpc_server_started_total,
	// grpc_server_handled_total by code, grpc_server_msg_{received,sent}_total
	// and the grpc_server_handling_seconds histogram, labelled by service,
	// method and type), so the process that owns the registry exposes them
	// beside the serving core's; nil records none. Run sets it to the
	// process's registry.
	Registerer prometheus.Registerer
}

// DefaultOptions returns the production defaults.
func DefaultOptions() Options {
	return Options{
		MaxRecvMsgBytes: 16 << 20,
		MaxSendMsgBytes: 16 << 20,
		StreamWorkers:   256,
		Reflection:      true,
		ShutdownTimeout: 10 * time.Second,
	}
}

// New assembles a server over a router, a model repository and the live
// event store (nil: EventService answers FailedPrecondition). Health starts
// NOT_SERVING; call SetServing once the models have loaded. It fails only
// when the RPC metrics cannot be registered on opts.Registerer (it already
// holds them).
func New(opts Options, r Router, models ModelRepository, events EventStore) (*Server, error) {
	if opts.MaxRecvMsgBytes == 0 {
		opts.MaxRecvMsgBytes = 16 << 20
	}
	if opts.MaxSendMsgBytes == 0 {
		opts.MaxSendMsgBytes = 16 << 20
	}
	if opts.ShutdownTimeout == 0 {
		opts.ShutdownTimeout = 10 * time.Second
	}
	if opts.StreamWorkers == 0 {
		opts.StreamWorkers = 256
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{health: health.NewServer(), log: log, opts: opts}
	auth := newAdminAuth(opts.AdminToken)
	// Outermost first. Metrics sit outside recover and auth so that a
	// recovered panic counts as Internal and a refused call as
	// Unauthenticated, with the latency the client saw.
	unary := []grpc.UnaryServerInterceptor{s.logUnary}
	stream := []grpc.StreamServerInterceptor{s.logStream}
	if opts.Registerer != nil {
		m, err := rpcMetrics(opts.Registerer)
		if err != nil {
			return nil, err
		}
		unary = append(unary, m.UnaryServerInterceptor())
		stream = append(stream, m.StreamServerInterceptor())
	}
	unary = append(unary, s.recoverUnary, auth.unary)
	stream = append(stream, s.recoverStream, auth.stream)
	sopts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(opts.MaxRecvMsgBytes),
		grpc.MaxSendMsgSize(opts.MaxSendMsgBytes),
		grpc.NumStreamWorkers(uint32(opts.StreamWorkers)),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	}
	if opts.TLS != nil {
		sopts = append(sopts, grpc.Creds(credentials.NewTLS(opts.TLS)))
	}
	s.grpc = grpc.NewServer(sopts...)
	pb.RegisterRecommendServiceServer(s.grpc, &recommendService{router: r, log: log})
	pb.RegisterModelServiceServer(s.grpc, &modelService{repo: models, log: log})
	if events == nil {
		events = noEvents{}
	}
	em, err := newEventMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	pb.RegisterEventServiceServer(s.grpc, &eventService{store: events, log: log, now: time.Now, metrics: em})
	reports, ok := events.(Reporter)
	if !ok {
		reports = noReports{}
	}
	pb.RegisterExperimentServiceServer(s.grpc, &experimentService{reports: reports, log: log})
	healthpb.RegisterHealthServer(s.grpc, s.health)
	if opts.Reflection {
		reflection.Register(s.grpc)
	}
	s.SetServing(false)
	return s, nil
}

// services whose health status is reported besides the overall "".
var services = []string{"", pb.RecommendService_ServiceDesc.ServiceName, pb.ModelService_ServiceDesc.ServiceName, pb.EventService_ServiceDesc.ServiceName, pb.ExperimentService_ServiceDesc.ServiceName}

// SetServing flips every service's health status.
func (s *Server) SetServing(ok bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ok {
		st = healthpb.HealthCheckResponse_SERVING
	}
	for _, name := range services {
		s.health.SetServingStatus(name, st)
	}
}

// Serve serves on lis until ctx is done, then shuts down gracefully: health
// goes NOT_SERVING, in-flight calls drain for up to ShutdownTimeout, and the
// rest are cut. It returns nil after a requested shutdown.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- s.grpc.Serve(lis) }()
	select {
	case err := <-errc:
		s.grpc.Stop() // release the stream workers
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "drain_timeout", s.opts.ShutdownTimeout)
	s.health.Shutdown()
	stopped := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(stopped) }()
	t := time.NewTimer(s.opts.ShutdownTimeout)
	defer t.Stop()
	select {
	case <-stopped:
	case <-t.C:
		s.log.Warn("drain timed out; cutting in-flight calls")
		s.grpc.Stop()
		<-stopped
	}
	if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

// logUnary logs each RPC once, with its code and latency, never payloads or
// metadata (which carries the admin token).
func (s *Server) logUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := h(ctx, req)
	s.logRPC(ctx, info.FullMethod, start, err)
	return resp, err
}

// logStream is logUnary for streaming RPCs (DeployModel, reflection), logged
// when the stream ends.
func (s *Server) logStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	start := time.Now()
	err := h(srv, ss)
	s.logRPC(ss.Context(), info.FullMethod, start, err)
	return err
}

// logRPC writes the one line of an RPC: at debug level when it succeeded,
// info when it failed or changed the served models (with the caller's
// address, for the audit trail), error for Internal and Unknown.
func (s *Server) logRPC(ctx context.Context, method string, start time.Time, err error) {
	code := status.Code(err)
	admin := adminMethod(method)
	lvl := slog.LevelDebug
	if code != codes.OK || admin {
		lvl = slog.LevelInfo
		if code == codes.Internal || code == codes.Unknown {
			lvl = slog.LevelError
		}
	}
	if !s.log.Enabled(ctx, lvl) {
		return
	}
	attrs := []any{"method", method, "code", code.String(), "dur", time.Since(start), "err", errString(err)}
	if p, ok := peer.FromContext(ctx); ok && admin && p.Addr != nil {
		attrs = append(attrs, "peer", p.Addr.String())
	}
	s.log.Log(ctx, lvl, "rpc", attrs...)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// recoverUnary turns a handler panic into Internal, logging the stack.
func (s *Server) recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.ErrorContext(ctx, "panic in handler", "method", info.FullMethod, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			resp, err = nil, status.Error(codes.Internal, "internal error")
		}
	}()
	return h(ctx, req)
}

// recoverStream is recoverUnary for streaming handlers.
func (s *Server) recoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.ErrorContext(ss.Context(), "panic in stream handler", "method", info.FullMethod, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = status.Error(codes.Internal, "internal error")
		}
	}()
	return h(srv, ss)
}
