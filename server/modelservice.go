package server

import (
	"context"
	"log/slog"

	"github.com/recserve/recserve/models/repository"
	pb "github.com/recserve/recserve/proto/recserve/v1"
	"github.com/recserve/recserve/server/router"
)

// Catalog is what the ModelService needs of the model repository.
type Catalog interface {
	List() ([]repository.Info, error)
	Info(name string) (repository.Info, error)
}

// modelService implements pb.ModelServiceServer.
type modelService struct {
	pb.UnimplementedModelServiceServer
	repo Catalog
	log  *slog.Logger
}

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
		return nil, toStatus(ctx, s.log, &router.FieldError{Field: "name", Err: errRequired})
	}
	info, err := s.repo.Info(in.GetName())
	if err != nil {
		return nil, toStatus(ctx, s.log, &router.FieldError{Field: "name", Err: err})
	}
	return &pb.GetModelResponse{Model: modelInfo(info)}, nil
}

func modelInfo(in repository.Info) *pb.ModelInfo {
	m := &pb.ModelInfo{
		Name:          in.Name,
		Kind:          in.Kind,
		Signature:     in.Signature,
		ActiveVersion: in.ActiveVersion,
		Versions:      in.Versions,
		Error:         in.Err,
		Roles:         in.Roles,
		Metadata:      in.Metadata,
	}
	if !in.LoadedAt.IsZero() {
		m.LoadedAt = in.LoadedAt.Unix()
	}
	switch in.State {
	case repository.StateLoading:
		m.State = pb.ModelState_MODEL_STATE_LOADING
	case repository.StateReady:
		m.State = pb.ModelState_MODEL_STATE_READY
	case repository.StateFailed:
		m.State = pb.ModelState_MODEL_STATE_FAILED
	case repository.StateUnloaded:
		m.State = pb.ModelState_MODEL_STATE_UNLOADED
	}
	return m
}
