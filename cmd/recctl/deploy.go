package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	pb "github.com/recserve/recserve/proto/recserve/v1"
)

// adminTokenEnv holds the bearer token the model-management commands send
// (the server reads the same variable).
const adminTokenEnv = "RECSERVE_ADMIN_TOKEN"

// chunkSize is the size of the file chunks deploy streams, well below the
// server's 16 MiB message limit.
const chunkSize = 1 << 20

// Deadlines of the model-management commands: they upload files and load
// and validate model versions.
const (
	deployTimeout = 10 * time.Minute
	adminTimeout  = 2 * time.Minute
)

// bearerToken is a grpc.PerRPCCredentials sending the admin token.
type bearerToken string

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (t bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials. It is
// false so a server on loopback can be managed without TLS; adminConnect
// warns when the token would cross a network in plaintext.
func (bearerToken) RequireTransportSecurity() bool { return false }

// adminConnect is connect with the admin token from the environment attached
// to every call.
func (c *clientFlags) adminConnect(ctx context.Context, e *env) (*grpc.ClientConn, context.Context, func(), error) {
	tok := os.Getenv(adminTokenEnv)
	if tok == "" {
		return nil, nil, nil, fmt.Errorf("%s is not set: model management needs the server's admin token", adminTokenEnv)
	}
	if !c.secure() && !loopbackAddr(c.addr) {
		fmt.Fprintf(e.stderr, "warning: sending the admin token to %s without TLS (use --tls or --tls-ca)\n", c.addr)
	}
	return c.connect(ctx, grpc.WithPerRPCCredentials(bearerToken(tok)))
}

// loopbackAddr reports whether a host:port names this machine.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// percentFlag is a canary percentage in [0, 100).
type percentFlag float64

func (p *percentFlag) String() string { return strconv.FormatFloat(float64(*p), 'g', -1, 64) }

func (p *percentFlag) Set(s string) error {
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil || math.IsNaN(v) || v < 0 || v >= 100 {
		return fmt.Errorf("%q is not a percentage in [0, 100)", s)
	}
	*p = percentFlag(v)
	return nil
}

func runDeploy(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "deploy")
	var cf clientFlags
	cf.registerTimeout(fs, deployTimeout)
	version := fs.String("version", "", "version to create (default: the next integer)")
	activate := fs.Bool("activate", false, "make the new version the stable one once validated")
	var pct percentFlag
	fs.Var(&pct, "canary", "make the new version the canary taking this percentage of traffic")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return fmt.Errorf("%w: usage: recctl deploy NAME DIR [--version V] [--activate | --canary PCT]", errUsage)
	}
	if *activate && pct > 0 {
		return fmt.Errorf("%w: deploy: --activate and --canary are exclusive", errUsage)
	}
	name, dir := pos[0], pos[1]
	files, err := versionFiles(dir, e)
	if err != nil {
		return err
	}
	conn, ctx, done, err := cf.adminConnect(ctx, e)
	if err != nil {
		return err
	}
	defer done()
	resp, sent, err := upload(ctx, pb.NewModelServiceClient(conn), dir, files, &pb.DeployHeader{
		Name: name, Version: *version, Activate: *activate, CanaryPercent: float64(pct),
	})
	if err != nil {
		return fmt.Errorf("deploy %s from %s: %w", name, dir, err)
	}
	if cf.json {
		return cf.printJSON(e, resp)
	}
	m := resp.GetModel()
	what := "not serving"
	switch resp.GetVersion() {
	case m.GetActiveVersion():
		what = "stable"
	case m.GetCanaryVersion():
		what = fmt.Sprintf("canary at %g%%", m.GetCanaryPercent())
	}
	fmt.Fprintf(e.stdout, "deployed %s version %s (%d files, %d bytes): %s\n", name, resp.GetVersion(), len(files), sent, what)
	if what == "not serving" {
		fmt.Fprintf(e.stdout, "activate it with: recctl activate %s %s\n", name, resp.GetVersion())
	}
	printServing(e, m)
	return nil
}

// versionFiles lists the regular files under dir as slash-separated paths
// relative to it, in lexical order. Symbolic links and other special files
// are refused (the server would get what they point to, not what the
// directory holds); hidden files and directories are skipped with a note, as
// a version directory cannot hold them.
func versionFiles(dir string, e *env) ([]string, error) {
	if _, err := os.Stat(filepath.Join(dir, "model.yaml")); err != nil {
		return nil, fmt.Errorf("%s is not a model version directory: %w", dir, err)
	}
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") {
			fmt.Fprintf(e.stderr, "skipping hidden %s\n", filepath.ToSlash(rel))
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			return fmt.Errorf("%s is a symbolic link; copy the file it points to into the directory", p)
		case d.IsDir():
			return nil
		case !d.Type().IsRegular():
			return fmt.Errorf("%s is not a regular file", p)
		}
		files = append(files, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return files, nil
}

// upload streams the header and then every file of dir in chunkSize chunks,
// and returns the server's answer and the bytes sent.
func upload(ctx context.Context, c pb.ModelServiceClient, dir string, files []string, h *pb.DeployHeader) (*pb.DeployModelResponse, int64, error) {
	stream, err := c.DeployModel(ctx)
	if err != nil {
		return nil, 0, err
	}
	// A Send the server cut short returns io.EOF; CloseAndRecv has the
	// server's status.
	send := func(m *pb.DeployModelRequest) (stop bool, err error) {
		if err := stream.Send(m); err != nil {
			if errors.Is(err, io.EOF) {
				return true, nil
			}
			return true, err
		}
		return false, nil
	}
	var sent int64
	stop, err := send(&pb.DeployModelRequest{Part: &pb.DeployModelRequest_Header{Header: h}})
	for _, rel := range files {
		if stop {
			break
		}
		var n int64
		n, stop, err = sendFile(filepath.Join(dir, filepath.FromSlash(rel)), rel, send)
		sent += n
	}
	if err != nil {
		return nil, sent, err
	}
	resp, err := stream.CloseAndRecv()
	return resp, sent, err
}

// sendFile sends one file as chunks of at most chunkSize bytes; an empty
// file is one empty chunk. Each chunk gets its own buffer: gRPC may still
// hold a sent message.
func sendFile(path, rel string, send func(*pb.DeployModelRequest) (bool, error)) (sent int64, stop bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, true, err
	}
	defer f.Close()
	for first := true; ; first = false {
		buf := make([]byte, chunkSize)
		n, rerr := io.ReadFull(f, buf)
		if rerr != nil && !errors.Is(rerr, io.EOF) && !errors.Is(rerr, io.ErrUnexpectedEOF) {
			return sent, true, fmt.Errorf("read %s: %w", path, rerr)
		}
		if n == 0 && !first {
			return sent, false, nil
		}
		if stop, err := send(&pb.DeployModelRequest{Part: &pb.DeployModelRequest_Chunk{Chunk: &pb.FileChunk{Path: rel, Data: buf[:n]}}}); stop {
			return sent, true, err
		}
		sent += int64(n)
		if n < chunkSize {
			return sent, false, nil
		}
	}
}

func runActivate(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "activate")
	var cf clientFlags
	cf.registerTimeout(fs, adminTimeout)
	var pct percentFlag
	fs.Var(&pct, "canary", "make the version the canary taking this percentage of traffic instead of the stable version")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return fmt.Errorf("%w: usage: recctl activate NAME VERSION|latest [--canary PCT]", errUsage)
	}
	conn, ctx, done, err := cf.adminConnect(ctx, e)
	if err != nil {
		return err
	}
	defer done()
	resp, err := pb.NewModelServiceClient(conn).ActivateVersion(ctx, &pb.ActivateVersionRequest{
		Name: pos[0], Version: pos[1], CanaryPercent: float64(pct),
	})
	if err != nil {
		return fmt.Errorf("activate %s version %s: %w", pos[0], pos[1], err)
	}
	if cf.json {
		return cf.printJSON(e, resp)
	}
	printServing(e, resp.GetModel())
	return nil
}

func runRollback(ctx context.Context, e *env, args []string) error {
	return runNamed(ctx, e, "rollback", args, func(ctx context.Context, c pb.ModelServiceClient, name string) (modelResponse, error) {
		return c.Rollback(ctx, &pb.RollbackRequest{Name: name})
	})
}

func runUnload(ctx context.Context, e *env, args []string) error {
	return runNamed(ctx, e, "unload", args, func(ctx context.Context, c pb.ModelServiceClient, name string) (modelResponse, error) {
		return c.UnloadModel(ctx, &pb.UnloadModelRequest{Name: name})
	})
}

// modelResponse is a management response carrying the model after the
// change.
type modelResponse interface {
	proto.Message
	GetModel() *pb.ModelInfo
}

// runNamed runs a management command whose only argument is a model name.
func runNamed(ctx context.Context, e *env, cmd string, args []string,
	call func(ctx context.Context, c pb.ModelServiceClient, name string) (modelResponse, error)) error {
	fs := newFlags(e, cmd)
	var cf clientFlags
	cf.registerTimeout(fs, adminTimeout)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: usage: recctl %s NAME", errUsage, cmd)
	}
	conn, ctx, done, err := cf.adminConnect(ctx, e)
	if err != nil {
		return err
	}
	defer done()
	resp, err := call(ctx, pb.NewModelServiceClient(conn), pos[0])
	if err != nil {
		return fmt.Errorf("%s %s: %w", cmd, pos[0], err)
	}
	if cf.json {
		return cf.printJSON(e, resp)
	}
	printServing(e, resp.GetModel())
	return nil
}

// printServing says what a model serves now, in one line.
func printServing(e *env, m *pb.ModelInfo) {
	var what string
	switch {
	case m.GetState() == pb.ModelState_MODEL_STATE_UNLOADED:
		what = "nothing: unloaded (recctl activate " + m.GetName() + " VERSION serves one again)"
	case m.GetActiveVersion() == "":
		what = "nothing (" + stateName(m.GetState()) + ")"
	default:
		what = "stable " + m.GetActiveVersion()
		if c := canary(m); c != "" {
			what += ", canary " + c
		}
	}
	fmt.Fprintf(e.stdout, "%s serves %s; policy %s; versions %s\n", m.GetName(), what, dash(m.GetPolicy()), versionStates(m))
	if m.GetError() != "" {
		fmt.Fprintf(e.stdout, "last error: %s\n", m.GetError())
	}
}
