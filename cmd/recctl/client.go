package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
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
	tls     bool
	tlsCA   string
}

// defaultTimeout is the request deadline of the query commands.
const defaultTimeout = 5 * time.Second

func (c *clientFlags) register(fs *flag.FlagSet) { c.registerTimeout(fs, defaultTimeout) }

// registerTimeout registers the flags with another default deadline, for
// commands that upload or load models.
func (c *clientFlags) registerTimeout(fs *flag.FlagSet, timeout time.Duration) {
	fs.StringVar(&c.addr, "addr", envOr("RECSERVE_ADDR", "localhost:50051"), "server address (env RECSERVE_ADDR)")
	fs.DurationVar(&c.timeout, "timeout", timeout, "request deadline")
	fs.BoolVar(&c.json, "json", false, "print the response as JSON")
	fs.BoolVar(&c.tls, "tls", false, "connect with TLS, trusting the system's root certificates")
	fs.StringVar(&c.tlsCA, "tls-ca", "", "connect with TLS, trusting the PEM certificates in this file (implies --tls)")
}

// transport returns the connection's credentials: TLS with --tls or
// --tls-ca, plaintext otherwise.
func (c *clientFlags) transport() (credentials.TransportCredentials, error) {
	if c.tlsCA == "" && !c.tls {
		return insecure.NewCredentials(), nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.tlsCA != "" {
		b, err := os.ReadFile(c.tlsCA)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--tls-ca: %s holds no PEM certificate", c.tlsCA)
		}
		cfg.RootCAs = pool
	}
	return credentials.NewTLS(cfg), nil
}

// secure reports whether the connection uses TLS.
func (c *clientFlags) secure() bool { return c.tls || c.tlsCA != "" }

// connect dials the server and derives the request context with the
// --timeout deadline; done closes both.
func (c *clientFlags) connect(ctx context.Context, opts ...grpc.DialOption) (*grpc.ClientConn, context.Context, func(), error) {
	creds, err := c.transport()
	if err != nil {
		return nil, nil, nil, err
	}
	conn, err := grpc.NewClient(c.addr, append([]grpc.DialOption{grpc.WithTransportCredentials(creds)}, opts...)...)
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
	if err := printModels(e, list); err != nil {
		return err
	}
	if len(names) == 1 && len(list) == 1 {
		return printVersions(e, list[0])
	}
	return nil
}

// printModels prints one line per model: what serves (the stable version and
// the canary with its share), the version policy, and every version with its
// label or state.
func printModels(e *env, list []*pb.ModelInfo) error {
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "name\tkind\tpolicy\tstable\tcanary\tversions\tstate\troles\terror")
	for _, m := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.GetName(), m.GetKind(), dash(m.GetPolicy()),
			dash(m.GetActiveVersion()), dash(canary(m)), versionStates(m), stateName(m.GetState()),
			strings.Join(m.GetRoles(), ","), m.GetError())
	}
	return tw.Flush()
}

// printVersions prints the versions of one model, oldest first.
func printVersions(e *env, m *pb.ModelInfo) error {
	if len(m.GetVersionInfo()) == 0 {
		return nil
	}
	fmt.Fprintln(e.stdout)
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "version\tlabel\tstate\tkind\tloaded\terror")
	for _, v := range m.GetVersionInfo() {
		loaded := "-"
		if v.GetLoadedAt() != 0 {
			loaded = time.Unix(v.GetLoadedAt(), 0).UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", v.GetVersion(), dash(v.GetLabel()), stateName(v.GetState()),
			dash(v.GetKind()), loaded, v.GetError())
	}
	return tw.Flush()
}

// versionStates renders every version as "1:available,2:stable,3:canary":
// the label of a serving version, else its state. Servers without per-version
// info only list the versions.
func versionStates(m *pb.ModelInfo) string {
	if len(m.GetVersionInfo()) == 0 {
		return strings.Join(m.GetVersions(), ",")
	}
	parts := make([]string, len(m.GetVersionInfo()))
	for i, v := range m.GetVersionInfo() {
		what := v.GetLabel()
		if what == "" {
			what = stateName(v.GetState())
		}
		parts[i] = v.GetVersion() + ":" + what
	}
	return strings.Join(parts, ",")
}

// canary renders the canary as "VERSION@PCT%", empty without one.
func canary(m *pb.ModelInfo) string {
	if m.GetCanaryVersion() == "" {
		return ""
	}
	return fmt.Sprintf("%s@%g%%", m.GetCanaryVersion(), m.GetCanaryPercent())
}

// stateName is a model state in lower case without its prefix ("ready").
func stateName(s pb.ModelState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "MODEL_STATE_"))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
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
