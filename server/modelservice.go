package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"time"

	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/repository"
	pb "github.com/recserve/recserve/proto/recserve/v1"
)

// ModelRepository is what the ModelService needs of the model repository: listings
// and the version lifecycle. *repository.Repository implements it (through
// lazyDeps while the server loads).
type ModelRepository interface {
	List() ([]repository.Info, error)
	Info(name string) (repository.Info, error)
	NewUpload(name, version string) (*repository.Upload, error)
	Commit(ctx context.Context, u *repository.Upload, o repository.DeployOptions) (repository.Info, error)
	Activate(ctx context.Context, name, version string, canaryPercent float64) (repository.Info, error)
	Rollback(ctx context.Context, name string) (repository.Info, error)
	Unload(ctx context.Context, name string) (repository.Info, error)
}

// modelService implements pb.ModelServiceServer.
type modelService struct {
	pb.UnimplementedModelServiceServer
	repo ModelRepository
	log  *slog.Logger
}

var (
	errHeaderFirst  = errors.New("the first message of the stream must be the header")
	errHeaderTwice  = errors.New("the header was sent twice; it must be the first message only")
	errEmptyPart    = errors.New("message has neither header nor chunk")
	errCanaryRange  = errors.New("must be at least 0 and below 100")
	errActivateBoth = errors.New("activate and canary_percent are exclusive: a version is either stable or the canary")
)

func (s *modelService) ListModels(ctx context.Context, _ *pb.ListModelsRequest) (*pb.ListModelsResponse, error) {
	infos, err := s.repo.List()
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	out := &pb.ListModelsResponse{Models: make([]*pb.ModelInfo, len(infos))}
	for i, in := range infos {
		out.Models[i] = modelInfo(in)
	}
	return out, nil
}

func (s *modelService) GetModel(ctx context.Context, in *pb.GetModelRequest) (*pb.GetModelResponse, error) {
	if in.GetName() == "" {
		return nil, toStatus(ctx, s.log, &models.FieldError{Field: "name", Err: errRequired})
	}
	info, err := s.repo.Info(in.GetName())
	if err != nil {
		return nil, toStatus(ctx, s.log, &models.FieldError{Field: "name", Err: err})
	}
	return &pb.GetModelResponse{Model: modelInfo(info)}, nil
}

// DeployModel receives a header, then file chunks, and commits the version
// once the client half-closes. Any error aborts the upload: its staging
// directory is removed and nothing serving changes.
func (s *modelService) DeployModel(stream pb.ModelService_DeployModelServer) error {
	ctx := stream.Context()
	u, o, err := s.openUpload(stream)
	if err != nil {
		return toStatus(ctx, s.log, err)
	}
	defer u.Abort() // a no-op after a successful Commit
	if err := receiveFiles(stream, u); err != nil {
		return toStatus(ctx, s.log, err)
	}
	info, err := s.repo.Commit(ctx, u, o)
	if err != nil {
		return toStatus(ctx, s.log, fmt.Errorf("deploy %s version %s: %w", u.Name(), u.Version(), err))
	}
	return stream.SendAndClose(&pb.DeployModelResponse{Version: u.Version(), Model: modelInfo(info)})
}

// openUpload reads and checks the header and starts the upload it names.
func (s *modelService) openUpload(stream pb.ModelService_DeployModelServer) (*repository.Upload, repository.DeployOptions, error) {
	var o repository.DeployOptions
	msg, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return nil, o, &models.FieldError{Field: "header", Err: errHeaderFirst}
	}
	if err != nil {
		return nil, o, err
	}
	h := msg.GetHeader()
	if h == nil {
		return nil, o, &models.FieldError{Field: "header", Err: errHeaderFirst}
	}
	if h.GetName() == "" {
		return nil, o, &models.FieldError{Field: "header.name", Err: errRequired}
	}
	if err := checkCanary(h.GetCanaryPercent()); err != nil {
		return nil, o, &models.FieldError{Field: "header.canary_percent", Err: err}
	}
	if h.GetActivate() && h.GetCanaryPercent() > 0 {
		return nil, o, &models.FieldError{Field: "header.canary_percent", Err: errActivateBoth}
	}
	o = repository.DeployOptions{Activate: h.GetActivate(), CanaryPercent: h.GetCanaryPercent()}
	u, err := s.repo.NewUpload(h.GetName(), h.GetVersion())
	if errors.Is(err, repository.ErrExists) {
		return nil, o, &models.FieldError{Field: "header.version", Err: err}
	}
	return u, o, models.Within("header.", err)
}

// receiveFiles writes every chunk of the stream into u until the client
// half-closes. The repository enforces the upload rules (clean relative
// paths, a file's chunks consecutive, the size and file-count limits).
func receiveFiles(stream pb.ModelService_DeployModelServer, u *repository.Upload) error {
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch p := msg.GetPart().(type) {
		case *pb.DeployModelRequest_Header:
			return &models.FieldError{Field: "header", Err: errHeaderTwice}
		case *pb.DeployModelRequest_Chunk:
			if p.Chunk.GetPath() == "" {
				return &models.FieldError{Field: "chunk.path", Err: errRequired}
			}
			if err := u.Write(p.Chunk.GetPath(), p.Chunk.GetData()); err != nil {
				if errors.As(err, new(*models.FieldError)) {
					return models.Within("chunk.", err)
				}
				return fmt.Errorf("write %s/%s %q: %w", u.Name(), u.Version(), p.Chunk.GetPath(), err)
			}
		default:
			return &models.FieldError{Field: "part", Err: errEmptyPart}
		}
	}
}

func (s *modelService) ActivateVersion(ctx context.Context, in *pb.ActivateVersionRequest) (*pb.ActivateVersionResponse, error) {
	if in.GetName() == "" {
		return nil, toStatus(ctx, s.log, &models.FieldError{Field: "name", Err: errRequired})
	}
	if in.GetVersion() == "" {
		return nil, toStatus(ctx, s.log, &models.FieldError{Field: "version", Err: errRequired})
	}
	if err := checkCanary(in.GetCanaryPercent()); err != nil {
		return nil, toStatus(ctx, s.log, &models.FieldError{Field: "canary_percent", Err: err})
	}
	info, err := s.repo.Activate(ctx, in.GetName(), in.GetVersion(), in.GetCanaryPercent())
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	return &pb.ActivateVersionResponse{Model: modelInfo(info)}, nil
}

func (s *modelService) Rollback(ctx context.Context, in *pb.RollbackRequest) (*pb.RollbackResponse, error) {
	if in.GetName() == "" {
		return nil, toStatus(ctx, s.log, &models.FieldError{Field: "name", Err: errRequired})
	}
	info, err := s.repo.Rollback(ctx, in.GetName())
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	return &pb.RollbackResponse{Model: modelInfo(info)}, nil
}

func (s *modelService) UnloadModel(ctx context.Context, in *pb.UnloadModelRequest) (*pb.UnloadModelResponse, error) {
	if in.GetName() == "" {
		return nil, toStatus(ctx, s.log, &models.FieldError{Field: "name", Err: errRequired})
	}
	info, err := s.repo.Unload(ctx, in.GetName())
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	return &pb.UnloadModelResponse{Model: modelInfo(info)}, nil
}

// checkCanary reports a canary percent outside [0, 100).
func checkCanary(p float64) error {
	if math.IsNaN(p) || p < 0 || p >= 100 {
		return fmt.Errorf("%v: %w", p, errCanaryRange)
	}
	return nil
}

func modelInfo(in repository.Info) *pb.ModelInfo {
	m := &pb.ModelInfo{
		Name:          in.Name,
		Kind:          in.Kind,
		Signature:     in.Signature,
		ActiveVersion: in.ActiveVersion,
		Versions:      in.Versions,
		State:         modelState(in.State),
		Error:         in.Err,
		Roles:         in.Roles,
		Metadata:      in.Metadata,
		LoadedAt:      unixSeconds(in.LoadedAt),
		Policy:        in.Policy,
		CanaryVersion: in.CanaryVersion,
		CanaryPercent: in.CanaryPercent,
	}
	if len(in.Details) > 0 {
		m.VersionInfo = make([]*pb.VersionInfo, len(in.Details))
		for i, v := range in.Details {
			m.VersionInfo[i] = &pb.VersionInfo{
				Version:   v.Version,
				Label:     v.Label,
				State:     modelState(v.State),
				Error:     v.Err,
				Kind:      v.Kind,
				Signature: v.Signature,
				LoadedAt:  unixSeconds(v.LoadedAt),
			}
		}
	}
	return m
}

// unixSeconds is t in Unix seconds, 0 for the zero time.
func unixSeconds(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func modelState(s repository.State) pb.ModelState {
	switch s {
	case repository.StateLoading:
		return pb.ModelState_MODEL_STATE_LOADING
	case repository.StateReady:
		return pb.ModelState_MODEL_STATE_READY
	case repository.StateFailed:
		return pb.ModelState_MODEL_STATE_FAILED
	case repository.StateUnloaded:
		return pb.ModelState_MODEL_STATE_UNLOADED
	case repository.StateAvailable:
		return pb.ModelState_MODEL_STATE_AVAILABLE
	}
	return pb.ModelState_MODEL_STATE_UNSPECIFIED
}
