package recctl

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pb "github.com/recserve/recserve/proto/recserve/v1"
)

// clientFlags are the flags every client command shares.
type clientFlags struct {
	addr    string
	timeout time.Duration
	json    bool
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.addr, "addr", envOr("RECSERVE_ADDR", "localhost:50051"), "server address (env RECSERVE_ADDR)")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Second, "request deadline")
	fs.BoolVar(&c.json, "json", false, "print the response as JSON")
}

// connect dials the server and derives the request context with the
// --timeout deadline; done closes both.
func (c *clientFlags) connect(ctx context.Context) (*grpc.ClientConn, context.Context, func(), error) {
	conn, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	return conn, ctx, func() { cancel(); conn.Close() }, nil
}

func (c *clientFlags) printJSON(e *env, m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(e.stdout, string(b))
	return err
}

func runRecommend(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "recommend")
	var cf clientFlags
	cf.register(fs)
	user := fs.String("user", "", "user id")
	k := fs.Int("k", 10, "number of items")
	var session, exclude stringList
	fs.Var(&session, "session", "session item ids, oldest first (comma-separated)")
	fs.Var(&exclude, "exclude", "item ids never to return (comma-separated)")
	model := fs.String("model", "", "use this model instead of routing")
	route := fs.String("route", "", "use this route")
	includeSeen := fs.Bool("include-seen", false, "allow items already in the user's history")
	if err := parse(fs, args); err != nil {
		return err
	}
	conn, ctx, done, err := cf.connect(ctx)
	if err != nil {
		return err
	}
	defer done()
	resp, err := pb.NewRecommendServiceClient(conn).Recommend(ctx, &pb.RecommendRequest{
		UserId: *user, K: int32(*k), SessionItems: session, Model: *model, Route: *route,
		Filters: &pb.Filters{ExcludeItems: exclude, IncludeSeen: *includeSeen},
	})
	if err != nil {
		return err
	}
	if cf.json {
		return cf.printJSON(e, resp)
	}
	var mv []string
	for _, m := range resp.GetModelVersions() {
		mv = append(mv, m.GetName()+"@"+m.GetVersion())
	}
	fmt.Fprintf(e.stdout, "route %s  arm %q  models %s  cold_start %v\n", resp.GetRoute(), resp.GetArm(), strings.Join(mv, ","), resp.GetColdStart())
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "rank\titem\tscore\tsources")
	for i, it := range resp.GetItems() {
		fmt.Fprintf(tw, "%d\t%s\t%.6g\t%s\n", i+1, it.GetItemId(), it.GetScore(), strings.Join(it.GetSources(), ","))
	}
	return tw.Flush()
}

func runScore(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "score")
	var cf clientFlags
	cf.register(fs)
	user := fs.String("user", "", "user id (required)")
	var items stringList
	fs.Var(&items, "items", "item ids to score (comma-separated, required)")
	model := fs.String("model", "", "scorer to use instead of the default")
	if err := parse(fs, args); err != nil {
		return err
	}
	conn, ctx, done, err := cf.connect(ctx)
	if err != nil {
		return err
	}
	defer done()
	resp, err := pb.NewRecommendServiceClient(conn).Score(ctx, &pb.ScoreRequest{UserId: *user, ItemIds: items, Model: *model})
	if err != nil {
		return err
	}
	if cf.json {
		return cf.printJSON(e, resp)
	}
	fmt.Fprintf(e.stdout, "model %s@%s\n", resp.GetModel().GetName(), resp.GetModel().GetVersion())
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "item\tscore")
	for i, s := range resp.GetScores() {
		fmt.Fprintf(tw, "%s\t%.6g\n", items[i], s)
	}
	return tw.Flush()
}

func runModels(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "models")
	var cf clientFlags
	cf.register(fs)
	names, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(names) > 1 {
		return fmt.Errorf("%w: models takes at most one model name, got %v", errUsage, names)
	}
	conn, ctx, done, err := cf.connect(ctx)
	if err != nil {
		return err
	}
	defer done()
	c := pb.NewModelServiceClient(conn)
	var list []*pb.ModelInfo
	if len(names) == 1 {
		name := names[0]
		resp, err := c.GetModel(ctx, &pb.GetModelRequest{Name: name})
		if err != nil {
			return err
		}
		if cf.json {
			return cf.printJSON(e, resp)
		}
		list = []*pb.ModelInfo{resp.GetModel()}
	} else {
		resp, err := c.ListModels(ctx, &pb.ListModelsRequest{})
		if err != nil {
			return err
		}
		if cf.json {
			return cf.printJSON(e, resp)
		}
		list = resp.GetModels()
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "name\tkind\tactive\tversions\tstate\troles\terror")
	for _, m := range list {
		state := strings.ToLower(strings.TrimPrefix(m.GetState().String(), "MODEL_STATE_"))
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.GetName(), m.GetKind(), m.GetActiveVersion(),
			strings.Join(m.GetVersions(), ","), state, strings.Join(m.GetRoles(), ","), m.GetError())
	}
	return tw.Flush()
}

func runSimilar(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "similar")
	var cf clientFlags
	cf.register(fs)
	item := fs.String("item", "", "item id (required)")
	k := fs.Int("k", 10, "number of items")
	model := fs.String("model", "", "item-similarity model (default: routes.yaml default_similar)")
	user := fs.String("user", "", "exclude this user's seen items")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, "item"); err != nil {
		return err
	}
	conn, ctx, done, err := cf.connect(ctx)
	if err != nil {
		return err
	}
	defer done()
	resp, err := pb.NewRecommendServiceClient(conn).SimilarItems(ctx, &pb.SimilarItemsRequest{
		ItemId: *item, K: int32(*k), Model: *model, UserId: *user,
	})
	if err != nil {
		return err
	}
	if cf.json {
		return cf.printJSON(e, resp)
	}
	fmt.Fprintf(e.stdout, "model %s@%s\n", resp.GetModel().GetName(), resp.GetModel().GetVersion())
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "rank\titem\tscore")
	for i, it := range resp.GetItems() {
		fmt.Fprintf(tw, "%d\t%s\t%.6g\n", i+1, it.GetItemId(), it.GetScore())
	}
	return tw.Flush()
}
