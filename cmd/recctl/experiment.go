package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/recserve/recserve/proto/recserve/v1"
)

// runExperiment dispatches `recctl experiment report`.
func runExperiment(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] != "report" {
		return fmt.Errorf("%w: usage: recctl experiment report NAME | --route R | --model M [--since T] [--until T] [--control ARM] [--metric ctr|conversion|revenue] [--alpha A] [--min-users N]", errUsage)
	}
	return runExperimentReport(ctx, e, args[1:])
}

// runExperimentReport asks a server for an experiment's report and prints
// one row per arm (or model version).
func runExperimentReport(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "experiment report")
	var cf clientFlags
	cf.register(fs)
	route := fs.String("route", "", "report the arms that served this route instead of an experiment")
	model := fs.String("model", "", "report this model's versions (stable and canary) instead of an experiment")
	since := fs.String("since", "", "first answer time: RFC 3339 (2026-12-01T00:00:00Z) or a duration ago (24h)")
	until := fs.String("until", "", "end of the answers' time, exclusive, as --since (default now)")
	control := fs.String("control", "", "the row the others are compared with (default: the first arm; a model's stable version)")
	metric := fs.String("metric", "", "metric of the verdict: ctr (default), conversion or revenue")
	alpha := fs.Float64("alpha", 0, "significance level (default 0.05)")
	minUsers := fs.Int64("min-users", 0, "per-row users below which no winner is called (default: sized to detect a 20% lift)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	req := &pb.ReportRequest{Route: *route, Model: *model, Control: *control, Metric: *metric, Alpha: *alpha, MinUsers: *minUsers}
	switch {
	case len(pos) > 1:
		return fmt.Errorf("%w: experiment report takes one experiment name", errUsage)
	case len(pos) == 1:
		req.Experiment = pos[0]
	}
	now := time.Now()
	for _, f := range []struct {
		name, val string
		dst       **timestamppb.Timestamp
	}{{"since", *since, &req.Since}, {"until", *until, &req.Until}} {
		if f.val == "" {
			continue
		}
		t, err := parseWhen(f.val, now)
		if err != nil {
			return fmt.Errorf("%w: --%s: %v", errUsage, f.name, err)
		}
		*f.dst = timestamppb.New(t)
	}
	conn, ctx, done, err := cf.connect(ctx)
	if err != nil {
		return err
	}
	defer done()
	resp, err := pb.NewExperimentServiceClient(conn).Report(ctx, req)
	if err != nil {
		return err
	}
	if cf.json {
		return cf.printJSON(e, resp)
	}
	return printReport(e, resp)
}

// parseWhen reads an RFC 3339 time or a duration before now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration ago such as 24h", s)
	}
	return now.Add(-d), nil
}

func printReport(e *env, r *pb.ReportResponse) error {
	span := "since the store's retention began"
	if r.GetSince() != nil {
		span = "since " + r.GetSince().AsTime().Format(time.RFC3339)
	}
	fmt.Fprintf(e.stdout, "%d answers %s until %s; rows by %s, control %s, verdict on %s at alpha %g, min %d users per row\n",
		r.GetImpressions(), span, r.GetUntil().AsTime().Format(time.RFC3339), r.GetBy(), dash(r.GetControl()), r.GetMetric(), r.GetAlpha(), r.GetMinUsers())
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "row\troute\tusers\tanswers\tclicks\tpurchases\tCTR [95% CI]\tCTR lift [CI]\tp\tconversion [CI]\tp\trevenue/user [CI]\tp\tverdict")
	for _, row := range r.GetRows() {
		name := dash(row.GetName())
		if row.GetCanary() {
			name += " (canary)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, dash(row.GetRoute()),
			row.GetUsers(), row.GetImpressions(), row.GetClicks(), row.GetPurchases(),
			percent(row.GetCtr()), relLift(row.GetCtrLift()), pValue(row.GetCtrLift()),
			percent(row.GetConversion()), pValue(row.GetConversionLift()),
			money(row.GetRevenuePerUser()), pValue(row.GetRevenueLift()), row.GetVerdict())
	}
	return tw.Flush()
}

func percent(est *pb.Estimate) string {
	return fmt.Sprintf("%.2f%% [%.2f, %.2f]", 100*est.GetValue(), 100*est.GetCiLow(), 100*est.GetCiHigh())
}

func money(est *pb.Estimate) string {
	return fmt.Sprintf("%.2f [%.2f, %.2f]", est.GetValue(), est.GetCiLow(), est.GetCiHigh())
}

func relLift(l *pb.Lift) string {
	if l == nil {
		return "-"
	}
	return fmt.Sprintf("%+.1f%% [%+.1f, %+.1f]", 100*l.GetRelative(), 100*l.GetRelativeCiLow(), 100*l.GetRelativeCiHigh())
}

func pValue(l *pb.Lift) string {
	if l == nil {
		return "-"
	}
	return strings.TrimSpace(fmt.Sprintf("%.2g", l.GetPValue()))
}
