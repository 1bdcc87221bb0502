package server

import (
	"context"
	"log/slog"

	pb "github.com/recserve/recserve/proto/recserve/v1"
	"github.com/recserve/recserve/serving/router"
)

// Router is what the RecommendService needs of the routing layer.
type Router interface {
	Recommend(ctx context.Context, req router.Request) (router.Response, error)
	Score(ctx context.Context, req router.ScoreRequest) (router.ScoreResponse, error)
	SimilarItems(ctx context.Context, req router.SimilarRequest) (router.SimilarResponse, error)
	TargetAudience(ctx context.Context, req router.AudienceRequest) (router.AudienceResponse, error)
}

// recommendService implements pb.RecommendServiceServer by converting between
// proto and router types; all decisions are the router's.
type recommendService struct {
	pb.UnimplementedRecommendServiceServer
	router Router
	log    *slog.Logger
}

func (s *recommendService) Recommend(ctx context.Context, in *pb.RecommendRequest) (*pb.RecommendResponse, error) {
	req := router.Request{
		UserID:       in.GetUserId(),
		K:            int(in.GetK()),
		SessionItems: in.GetSessionItems(),
		Context:      in.GetContext(),
		Route:        in.GetRoute(),
		Model:        in.GetModel(),
		Debug:        in.GetDebug(),
		SessionID:    in.GetSessionId(),
	}
	req.Filters = filters(in.GetFilters())
	resp, err := s.router.Recommend(ctx, req)
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	return &pb.RecommendResponse{
		Items:            items(resp.Items),
		Route:            resp.Route,
		Arm:              resp.Arm,
		ModelVersions:    modelVersions(resp.Models),
		ColdStart:        resp.ColdStart,
		Debug:            debugInfo(resp.Debug),
		RecommendationId: resp.RecommendationID,
	}, nil
}

func debugInfo(d *router.Debug) *pb.RecommendDebug {
	if d == nil {
		return nil
	}
	out := &pb.RecommendDebug{History: d.History}
	for _, in := range d.Inputs {
		out.Inputs = append(out.Inputs, &pb.ModelInput{Model: in.Model, Version: in.Version, Items: in.Items})
	}
	return out
}

func (s *recommendService) SimilarItems(ctx context.Context, in *pb.SimilarItemsRequest) (*pb.SimilarItemsResponse, error) {
	resp, err := s.router.SimilarItems(ctx, router.SimilarRequest{
		ItemID:  in.GetItemId(),
		K:       int(in.GetK()),
		Model:   in.GetModel(),
		UserID:  in.GetUserId(),
		Filters: filters(in.GetFilters()),
	})
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	return &pb.SimilarItemsResponse{
		Items:            items(resp.Items),
		Model:            &pb.ModelVersion{Name: resp.Model.Name, Version: resp.Model.Version, Canary: resp.Model.Canary},
		RecommendationId: resp.RecommendationID,
	}, nil
}

func filters(f *pb.Filters) router.Filters {
	if f == nil {
		return router.Filters{}
	}
	return router.Filters{
		ExcludeItems:      f.GetExcludeItems(),
		ExcludeCategories: f.GetExcludeCategories(),
		IncludeCategories: f.GetIncludeCategories(),
		IncludeSeen:       f.GetIncludeSeen(),
		PriceMin:          f.PriceMin, // nil when unset (proto3 optional)
		PriceMax:          f.PriceMax,
	}
}

func items(in []router.Item) []*pb.RecommendedItem {
	out := make([]*pb.RecommendedItem, len(in))
	for i, it := range in {
		out[i] = &pb.RecommendedItem{ItemId: it.ItemID, Score: it.Score, Sources: it.Sources}
	}
	return out
}

func (s *recommendService) Score(ctx context.Context, in *pb.ScoreRequest) (*pb.ScoreResponse, error) {
	resp, err := s.router.Score(ctx, router.ScoreRequest{
		UserID:       in.GetUserId(),
		ItemIDs:      in.GetItemIds(),
		Model:        in.GetModel(),
		Context:      in.GetContext(),
		SessionItems: in.GetSessionItems(),
	})
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	return &pb.ScoreResponse{
		Scores: resp.Scores,
		Model:  &pb.ModelVersion{Name: resp.Model.Name, Version: resp.Model.Version, Canary: resp.Model.Canary},
	}, nil
}

func (s *recommendService) TargetAudience(ctx context.Context, in *pb.TargetAudienceRequest) (*pb.TargetAudienceResponse, error) {
	resp, err := s.router.TargetAudience(ctx, router.AudienceRequest{
		ItemID:        in.GetItemId(),
		Category:      in.GetCategory(),
		N:             int(in.GetN()),
		Model:         in.GetModel(),
		IncludeBuyers: in.GetIncludeBuyers(),
		MaxCandidates: int(in.GetMaxCandidates()),
		Context:       in.GetContext(),
	})
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	users := make([]*pb.AudienceMember, len(resp.Users))
	for i, u := range resp.Users {
		users[i] = &pb.AudienceMember{UserId: u.UserID, Score: u.Score}
	}
	return &pb.TargetAudienceResponse{
		Users:      users,
		Model:      &pb.ModelVersion{Name: resp.Model.Name, Version: resp.Model.Version, Canary: resp.Model.Canary},
		Candidates: int32(resp.Candidates),
		Items:      resp.Items,
	}, nil
}

func modelVersions(ms []router.ModelVersion) []*pb.ModelVersion {
	out := make([]*pb.ModelVersion, len(ms))
	for i, m := range ms {
		out[i] = &pb.ModelVersion{Name: m.Name, Version: m.Version, Canary: m.Canary}
	}
	return out
}
