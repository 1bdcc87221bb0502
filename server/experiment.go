package server

import (
	"context"
	"log/slog"
	"math"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/recserve/recserve/proto/recserve/v1"
	"github.com/recserve/recserve/serving/experiment"
)

// Reporter builds experiment reports (serving.Stack.Report). An EventStore
// that is also a Reporter answers ExperimentService: reports read the
// impressions the live store keeps.
type Reporter interface {
	Report(ctx context.Context, q experiment.Query) (experiment.Report, error)
}

// noReports is the Reporter of a server without a state store.
type noReports struct{}

func (noReports) Report(context.Context, experiment.Query) (experiment.Report, error) {
	return experiment.Report{}, errNoStateStore
}

// experimentService implements pb.ExperimentServiceServer.
type experimentService struct {
	pb.UnimplementedExperimentServiceServer
	reports Reporter
	log     *slog.Logger
}

func (s *experimentService) Report(ctx context.Context, in *pb.ReportRequest) (*pb.ReportResponse, error) {
	q := experiment.Query{
		Experiment: in.GetExperiment(), Route: in.GetRoute(), Model: in.GetModel(),
		Control: in.GetControl(), Metric: in.GetMetric(), Alpha: in.GetAlpha(), MinUsers: in.GetMinUsers(),
	}
	if in.GetSince() != nil {
		q.Since = in.GetSince().AsTime()
	}
	if in.GetUntil() != nil {
		q.Until = in.GetUntil().AsTime()
	}
	rep, err := s.reports.Report(ctx, q)
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	out := &pb.ReportResponse{
		By: rep.By, Control: rep.Control, Metric: rep.Metric, Alpha: rep.Alpha, MinUsers: rep.MinUsers,
		Until: timestamppb.New(rep.Until), Impressions: rep.Impressions,
	}
	if !rep.Since.IsZero() {
		out.Since = timestamppb.New(rep.Since)
	}
	for _, r := range rep.Rows {
		out.Rows = append(out.Rows, &pb.ReportRow{
			Name: r.Name, Route: r.Route, Canary: r.Canary, Control: r.Control,
			Users: r.Users, Impressions: r.Impressions, Clicks: r.Clicks, Purchases: r.Purchases, Revenue: finite(r.Revenue),
			Ctr: estimateProto(r.CTR), Conversion: estimateProto(r.Conversion), RevenuePerUser: estimateProto(r.RevenuePerUser),
			CtrLift: liftProto(r.CTRLift), ConversionLift: liftProto(r.ConversionLift), RevenueLift: liftProto(r.RevenueLift),
			Decision: decisionProto(r), Verdict: r.VerdictText(&rep),
		})
	}
	return out, nil
}

// finite maps NaN (an undefined estimate) to 0 for the wire: proto3
// doubles carry NaN, but JSON clients (grpcurl) print it as a string.
// Rows with no users have no estimates; every defined one is finite.
func finite(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return x
}

func estimateProto(e experiment.Estimate) *pb.Estimate {
	return &pb.Estimate{Value: finite(e.Value), CiLow: finite(e.CI.Lo), CiHigh: finite(e.CI.Hi)}
}

func liftProto(l *experiment.Lift) *pb.Lift {
	if l == nil {
		return nil
	}
	return &pb.Lift{
		Diff: finite(l.Diff), DiffCiLow: finite(l.DiffCI.Lo), DiffCiHigh: finite(l.DiffCI.Hi),
		Relative: finite(l.Rel), RelativeCiLow: finite(l.RelCI.Lo), RelativeCiHigh: finite(l.RelCI.Hi),
		PValue: finite(l.PValue),
	}
}

func decisionProto(r experiment.Row) pb.Decision {
	if r.Control {
		return pb.Decision_DECISION_UNSPECIFIED
	}
	switch r.Verdict {
	case experiment.NoDifference:
		return pb.Decision_DECISION_NO_DIFFERENCE
	case experiment.Better:
		return pb.Decision_DECISION_BETTER
	case experiment.Worse:
		return pb.Decision_DECISION_WORSE
	}
	return pb.Decision_DECISION_NOT_ENOUGH_DATA
}
