package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/recserve/recserve/internal/testcert"
	pb "github.com/recserve/recserve/proto/recserve/v1"
	"github.com/recserve/recserve/server"
)

const adminToken = "t0p-s3cret-admin-token"

// withToken configures the admin token.
func withToken(tok string) func(*server.Config) {
	return func(c *server.Config) { c.Server.AdminToken = tok }
}

// bearerCtx returns ctx carrying "authorization: Bearer tok".
func bearerCtx(ctx context.Context, tok string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
}

// upload is one DeployModel stream: the messages to send, in order.
type upload []*pb.DeployModelRequest

func header(h *pb.DeployHeader) *pb.DeployModelRequest {
	return &pb.DeployModelRequest{Part: &pb.DeployModelRequest_Header{Header: h}}
}

func chunk(path string, data []byte) *pb.DeployModelRequest {
	return &pb.DeployModelRequest{Part: &pb.DeployModelRequest_Chunk{Chunk: &pb.FileChunk{Path: path, Data: data}}}
}

// versionUpload returns a header and the files of a version directory, each
// file split into chunks of chunkSize bytes.
func versionUpload(t *testing.T, dir string, h *pb.DeployHeader, chunkSize int) upload {
	t.Helper()
	u := upload{header(h)}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range ents {
		b, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for len(b) > chunkSize {
			u = append(u, chunk(de.Name(), b[:chunkSize]))
			b = b[chunkSize:]
		}
		u = append(u, chunk(de.Name(), b))
	}
	return u
}

// deploy sends msgs on one DeployModel stream and returns the server's
// answer. A Send the server cut short (io.EOF) leaves the status to
// CloseAndRecv.
func deploy(ctx context.Context, c pb.ModelServiceClient, msgs upload) (*pb.DeployModelResponse, error) {
	stream, err := c.DeployModel(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		if err := stream.Send(m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, err
		}
	}
	return stream.CloseAndRecv()
}

// TestAdminAuth checks that the model-management methods need the admin
// token and everything else is open.
func TestAdminAuth(t *testing.T) {
	data, repo := writeE2EData(t), writeE2ERepo(t)
	securedConn := runServer(t, data, repo, withToken(adminToken))
	secured := pb.NewModelServiceClient(securedConn)
	open := runServer(t, data, writeE2ERepo(t)) // no token configured
	ctx := t.Context()

	// Each mutating call with a request the handler answers without
	// changing anything (the token check comes first).
	mutating := []struct {
		name string
		call func(ctx context.Context, c pb.ModelServiceClient) error
		// authed is the code once authenticated.
		authed codes.Code
	}{
		{"DeployModel", func(ctx context.Context, c pb.ModelServiceClient) error {
			_, err := deploy(ctx, c, upload{chunk("model.yaml", []byte("kind: popularity\n"))})
			return err
		}, codes.InvalidArgument},
		{"ActivateVersion", func(ctx context.Context, c pb.ModelServiceClient) error {
			_, err := c.ActivateVersion(ctx, &pb.ActivateVersionRequest{Name: "nope", Version: "1"})
			return err
		}, codes.NotFound},
		{"Rollback", func(ctx context.Context, c pb.ModelServiceClient) error {
			_, err := c.Rollback(ctx, &pb.RollbackRequest{Name: "popularity"})
			return err
		}, codes.FailedPrecondition},
		{"UnloadModel", func(ctx context.Context, c pb.ModelServiceClient) error {
			_, err := c.UnloadModel(ctx, &pb.UnloadModelRequest{Name: "nope"})
			return err
		}, codes.NotFound},
	}
	creds := []struct {
		name string
		ctx  context.Context
		ok   bool
	}{
		{"no token", ctx, false},
		{"wrong token", bearerCtx(ctx, "guess"), false},
		{"token prefix", bearerCtx(ctx, adminToken[:5]), false},
		{"token with suffix", bearerCtx(ctx, adminToken+"x"), false},
		{"basic scheme", metadata.AppendToOutgoingContext(ctx, "authorization", "Basic "+adminToken), false},
		{"bare token", metadata.AppendToOutgoingContext(ctx, "authorization", adminToken), false},
		{"two tokens", metadata.AppendToOutgoingContext(bearerCtx(ctx, adminToken), "authorization", "Bearer "+adminToken), false},
		{"right token", bearerCtx(ctx, adminToken), true},
		{"lower-case scheme", metadata.AppendToOutgoingContext(ctx, "authorization", "bearer "+adminToken), true},
	}
	for _, m := range mutating {
		for _, cr := range creds {
			err := m.call(cr.ctx, secured)
			want := codes.Unauthenticated
			if cr.ok {
				want = m.authed
			}
			if got := status.Code(err); got != want {
				t.Errorf("%s with %s = %v; want code %v", m.name, cr.name, err, want)
			}
			if !cr.ok && status.Convert(err).Message() != "missing or invalid bearer token" {
				t.Errorf("%s with %s message = %q; want %q", m.name, cr.name, status.Convert(err).Message(), "missing or invalid bearer token")
			}
		}
		// A server without a token refuses even a token, and says how to
		// enable management.
		err := m.call(bearerCtx(ctx, adminToken), pb.NewModelServiceClient(open))
		if status.Code(err) != codes.Unauthenticated || !strings.Contains(status.Convert(err).Message(), "RECSERVE_ADMIN_TOKEN") {
			t.Errorf("%s on a server without a token = %v; want Unauthenticated naming RECSERVE_ADMIN_TOKEN", m.name, err)
		}
	}

	// Read-only methods need no token, on either server.
	for name, conn := range map[string]*grpc.ClientConn{"secured": securedConn, "open": open} {
		ms := pb.NewModelServiceClient(conn)
		if _, err := ms.ListModels(ctx, &pb.ListModelsRequest{}); err != nil {
			t.Errorf("%s: ListModels without a token = %v; want success", name, err)
		}
		if _, err := ms.GetModel(ctx, &pb.GetModelRequest{Name: "popularity"}); err != nil {
			t.Errorf("%s: GetModel without a token = %v; want success", name, err)
		}
		if _, err := pb.NewRecommendServiceClient(conn).Recommend(ctx, &pb.RecommendRequest{UserId: "u1"}); err != nil {
			t.Errorf("%s: Recommend without a token = %v; want success", name, err)
		}
		if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
			t.Errorf("%s: Health.Check without a token = %v; want success", name, err)
		}
		if _, err := listServices(t, conn); err != nil {
			t.Errorf("%s: reflection without a token = %v; want success", name, err)
		}
	}
}

// TestAdminTokenNotLogged checks that neither the configured token nor a
// wrong one a client sent reaches the log.
func TestAdminTokenNotLogged(t *testing.T) {
	rec := &recorder{}
	ts := start(t, server.Options{Logger: slog.New(rec), AdminToken: adminToken}, &fakeRouter{}, emptyRepository{})
	ms := pb.NewModelServiceClient(dial(t, ts.addr))
	const wrong = "wrong-token-value"
	for _, tok := range []string{adminToken, wrong} {
		ctx := bearerCtx(t.Context(), tok)
		ms.Rollback(ctx, &pb.RollbackRequest{Name: "m"})
		deploy(ctx, ms, upload{header(&pb.DeployHeader{Name: "m"})})
	}
	rpcs := rec.find("rpc")
	if len(rpcs) != 4 {
		t.Errorf("logged %d rpc lines; want 4 (each admin call once, at info)", len(rpcs))
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, r := range rec.records {
		var b strings.Builder
		b.WriteString(r.Message)
		r.Attrs(func(a slog.Attr) bool {
			b.WriteString(" " + a.String())
			return true
		})
		if line := b.String(); strings.Contains(line, adminToken) || strings.Contains(line, wrong) {
			t.Errorf("log line %q contains a token", line)
		}
	}
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key
// into a temporary directory; it returns the two PEM files and a pool
// trusting the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	certFile, keyFile, err := testcert.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if pool, err = testcert.Pool(certFile); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pool
}

// TestTLS serves TLS from certificate files and talks to it with a client
// trusting that certificate.
func TestTLS(t *testing.T) {
	data, repo := writeE2EData(t), writeE2ERepo(t)
	certFile, keyFile, pool := selfSigned(t)
	addr := startRun(t, server.Config{Addr: "127.0.0.1:0", Repo: repo, Data: data, Server: server.DefaultOptions(),
		TLSCertFile: certFile, TLSKeyFile: keyFile, RepoPoll: 10 * time.Millisecond})
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	waitServing(t, healthpb.NewHealthClient(conn), "")
	ms := pb.NewModelServiceClient(conn)
	if _, err := ms.ListModels(t.Context(), &pb.ListModelsRequest{}); err != nil {
		t.Errorf("ListModels over TLS = %v; want success", err)
	}
	// Management stays refused over TLS without a configured token.
	if _, err := ms.Rollback(bearerCtx(t.Context(), adminToken), &pb.RollbackRequest{Name: "popularity"}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("Rollback over TLS on a server without a token = %v; want Unauthenticated", err)
	}
	// A plaintext client gets no answer from a TLS server.
	plain := dial(t, addr)
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(plain).Check(ctx, &healthpb.HealthCheckRequest{}); err == nil {
		t.Errorf("plaintext Health.Check against a TLS server succeeded; want an error")
	}
	// A client that does not trust the certificate is refused too.
	untrusting, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: x509.NewCertPool()})))
	if err != nil {
		t.Fatal(err)
	}
	defer untrusting.Close()
	if _, err := healthpb.NewHealthClient(untrusting).Check(ctx, &healthpb.HealthCheckRequest{}); err == nil {
		t.Errorf("Health.Check from a client not trusting the certificate succeeded; want an error")
	}
}

func TestTLSConfigErrors(t *testing.T) {
	data, repo := writeE2EData(t), writeE2ERepo(t)
	certFile, keyFile, _ := selfSigned(t)
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		cert, key  string
		wantErrSub string
	}{
		{"cert without key", certFile, "", "give both or neither"},
		{"key without cert", "", keyFile, "give both or neither"},
		{"garbage certificate", garbage, keyFile, "load TLS certificate"},
		{"missing key", certFile, filepath.Join(t.TempDir(), "missing.pem"), "load TLS certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := server.Config{Addr: "127.0.0.1:0", Repo: repo, Data: data, TLSCertFile: tt.cert, TLSKeyFile: tt.key}
			started := false
			err := server.Run(t.Context(), cfg, nil, func(net.Addr) { started = true })
			if err == nil || !strings.Contains(err.Error(), tt.wantErrSub) {
				t.Errorf("Run(tls cert %q key %q) = %v; want an error containing %q", tt.cert, tt.key, err, tt.wantErrSub)
			}
			if started {
				t.Errorf("Run(tls cert %q key %q) started listening; want it to fail first", tt.cert, tt.key)
			}
		})
	}
}

// TestDeployModelErrors sends malformed and refused uploads: each gets a
// clear status naming the field, and leaves the repository and what it
// serves as they were.
func TestDeployModelErrors(t *testing.T) {
	data, repo := writeE2EData(t), writeE2ERepo(t)
	const maxUpload = 16 << 10
	conn := runServer(t, data, repo, withToken(adminToken), func(c *server.Config) { c.MaxUploadBytes = maxUpload })
	ms := pb.NewModelServiceClient(conn)
	ctx := bearerCtx(t.Context(), adminToken)
	yaml := []byte("kind: popularity\n")
	good := func(h *pb.DeployHeader) upload {
		return versionUpload(t, filepath.Join(repo, "popularity", "1"), h, 1<<20)
	}
	tests := []struct {
		name  string
		msgs  upload
		code  codes.Code
		field string // "" for no BadRequest detail
	}{
		{"empty stream", upload{}, codes.InvalidArgument, "header"},
		{"chunk first", upload{chunk("model.yaml", yaml)}, codes.InvalidArgument, "header"},
		{"second header", upload{header(&pb.DeployHeader{Name: "newpop"}), chunk("model.yaml", yaml), header(&pb.DeployHeader{Name: "newpop"})}, codes.InvalidArgument, "header"},
		{"empty message", upload{header(&pb.DeployHeader{Name: "newpop"}), {}}, codes.InvalidArgument, "part"},
		{"no name", upload{header(&pb.DeployHeader{})}, codes.InvalidArgument, "header.name"},
		{"name escapes", upload{header(&pb.DeployHeader{Name: "../evil"})}, codes.InvalidArgument, "header.name"},
		{"hidden name", upload{header(&pb.DeployHeader{Name: ".staging"})}, codes.InvalidArgument, "header.name"},
		{"bad name with version", upload{header(&pb.DeployHeader{Name: "a/b", Version: "3"})}, codes.InvalidArgument, "header.name"},
		{"version escapes", upload{header(&pb.DeployHeader{Name: "newpop", Version: "../1"})}, codes.InvalidArgument, "header.version"},
		{"existing version", upload{header(&pb.DeployHeader{Name: "popularity", Version: "1"})}, codes.AlreadyExists, "header.version"},
		{"canary 100", upload{header(&pb.DeployHeader{Name: "popularity", CanaryPercent: 100})}, codes.InvalidArgument, "header.canary_percent"},
		{"canary negative", upload{header(&pb.DeployHeader{Name: "popularity", CanaryPercent: -1})}, codes.InvalidArgument, "header.canary_percent"},
		{"activate and canary", upload{header(&pb.DeployHeader{Name: "popularity", Activate: true, CanaryPercent: 10})}, codes.InvalidArgument, "header.canary_percent"},
		{"path traversal", upload{header(&pb.DeployHeader{Name: "newpop"}), chunk("../x", yaml)}, codes.InvalidArgument, "chunk.path"},
		{"path traversal inside", upload{header(&pb.DeployHeader{Name: "newpop"}), chunk("a/../../x", yaml)}, codes.InvalidArgument, "chunk.path"},
		{"absolute path", upload{header(&pb.DeployHeader{Name: "newpop"}), chunk("/etc/passwd", yaml)}, codes.InvalidArgument, "chunk.path"},
		{"empty path", upload{header(&pb.DeployHeader{Name: "newpop"}), chunk("", yaml)}, codes.InvalidArgument, "chunk.path"},
		{"chunks not consecutive", upload{header(&pb.DeployHeader{Name: "newpop"}), chunk("a", yaml), chunk("b", yaml), chunk("a", yaml)}, codes.InvalidArgument, "chunk.path"},
		{"too large", upload{header(&pb.DeployHeader{Name: "newpop"}), chunk("model.yaml", yaml), chunk("big.bin", make([]byte, maxUpload))}, codes.ResourceExhausted, ""},
		{"too large in small chunks", append(upload{header(&pb.DeployHeader{Name: "newpop"})}, splitChunks("big.bin", make([]byte, maxUpload+1), 1000)...), codes.ResourceExhausted, ""},
		{"no model.yaml", upload{header(&pb.DeployHeader{Name: "popularity"}), chunk("table.bin", []byte("x"))}, codes.InvalidArgument, ""},
		{"does not load", upload{header(&pb.DeployHeader{Name: "popularity", Activate: true}), chunk("model.yaml", []byte("kind: mystery\n"))}, codes.InvalidArgument, ""},
		{"corrupt artifact", append(good(&pb.DeployHeader{Name: "popularity", Activate: true})[:1],
			chunk("model.yaml", []byte("kind: popularity\nfile: table.json\n")), chunk("table.json", []byte("{not json"))), codes.InvalidArgument, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := deploy(ctx, ms, tt.msgs)
			if got := status.Code(err); got != tt.code {
				t.Fatalf("DeployModel = %v, %v; want code %v", resp, err, tt.code)
			}
			var want []string
			if tt.field != "" {
				want = []string{tt.field}
			}
			if got := fieldViolations(err); !reflect.DeepEqual(got, want) {
				t.Errorf("DeployModel (%v) field violations = %q; want %q", err, got, want)
			}
		})
	}

	// Nothing changed: popularity still serves version 1, no model or
	// version was created, and no upload was left staged.
	got, err := ms.GetModel(t.Context(), &pb.GetModelRequest{Name: "popularity"})
	if err != nil {
		t.Fatal(err)
	}
	if m := got.GetModel(); m.GetActiveVersion() != "1" || !reflect.DeepEqual(m.GetVersions(), []string{"1"}) || m.GetState() != pb.ModelState_MODEL_STATE_READY {
		t.Errorf("popularity after bad uploads = %v; want ready, version 1 only", m)
	}
	if _, err := ms.GetModel(t.Context(), &pb.GetModelRequest{Name: "newpop"}); status.Code(err) != codes.NotFound {
		t.Errorf("GetModel(newpop) after refused uploads = %v; want NotFound", err)
	}
	if names := dirNames(t, repo); !reflect.DeepEqual(names, []string{"broken", "popcat", "popularity"}) {
		t.Errorf("repository directories after bad uploads = %v; want only the original models", names)
	}
	if staged := dirNames(t, filepath.Join(repo, ".staging")); len(staged) != 0 {
		t.Errorf("uploads left in .staging: %v", staged)
	}
	resp, err := pb.NewRecommendServiceClient(conn).Recommend(t.Context(), &pb.RecommendRequest{UserId: "u1", Model: "popularity", K: 1})
	if err != nil || len(resp.GetModelVersions()) != 1 || resp.GetModelVersions()[0].GetVersion() != "1" {
		t.Errorf("Recommend(popularity) after bad uploads = %v, %v; want version 1", resp, err)
	}
}

func splitChunks(path string, b []byte, size int) upload {
	var u upload
	for len(b) > size {
		u = append(u, chunk(path, b[:size]))
		b = b[size:]
	}
	return append(u, chunk(path, b))
}

// dirNames lists the entries of dir, sorted; a missing dir has none.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, de := range ents {
		if de.IsDir() && !strings.HasPrefix(de.Name(), ".") {
			names = append(names, de.Name())
		}
	}
	sort.Strings(names)
	return names
}

// TestModelLifecycle deploys, canaries, rolls back, activates and unloads
// versions of a popularity model through the API, checking what serves
// after each step.
func TestModelLifecycle(t *testing.T) {
	data, repo := writeE2EData(t), writeE2ERepo(t)
	conn := runServer(t, data, repo, withToken(adminToken))
	ms := pb.NewModelServiceClient(conn)
	rec := pb.NewRecommendServiceClient(conn)
	ctx := bearerCtx(t.Context(), adminToken)
	v1 := filepath.Join(repo, "popularity", "1")

	// servedVersion asks Recommend which version of popularity answers u.
	servedVersion := func(user string) string {
		t.Helper()
		resp, err := rec.Recommend(t.Context(), &pb.RecommendRequest{UserId: user, Model: "popularity", K: 1})
		if err != nil {
			t.Fatalf("Recommend(%s, popularity) = %v", user, err)
		}
		return resp.GetModelVersions()[0].GetVersion()
	}
	// labels maps version to "label/state" from version_info.
	labels := func(m *pb.ModelInfo) map[string]string {
		out := map[string]string{}
		for _, v := range m.GetVersionInfo() {
			out[v.GetVersion()] = v.GetLabel() + "/" + strings.ToLower(strings.TrimPrefix(v.GetState().String(), "MODEL_STATE_"))
		}
		return out
	}

	// Deploy version 2 (the next integer) and activate it, in small chunks.
	resp, err := deploy(ctx, ms, versionUpload(t, v1, &pb.DeployHeader{Name: "popularity", Activate: true}, 100))
	if err != nil {
		t.Fatalf("DeployModel(popularity, activate) = %v", err)
	}
	if m := resp.GetModel(); resp.GetVersion() != "2" || m.GetActiveVersion() != "2" || m.GetPolicy() != "specific" ||
		!reflect.DeepEqual(labels(m), map[string]string{"1": "/available", "2": "stable/ready"}) {
		t.Fatalf("DeployModel(popularity, activate) = version %q, model %v; want version 2 stable, 1 available", resp.GetVersion(), m)
	}
	if got := servedVersion("u1"); got != "2" {
		t.Errorf("after deploying 2: popularity serves %s; want 2", got)
	}
	for _, f := range []string{"model.yaml", "popularity.json"} {
		want, _ := os.ReadFile(filepath.Join(v1, f))
		got, err := os.ReadFile(filepath.Join(repo, "popularity", "2", f))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("uploaded %s differs from the original (err %v)", f, err)
		}
	}

	// Version 5 as a 50% canary: some users get it, the rest get 2.
	resp, err = deploy(ctx, ms, versionUpload(t, v1, &pb.DeployHeader{Name: "popularity", Version: "5", CanaryPercent: 50}, 1<<20))
	if err != nil {
		t.Fatalf("DeployModel(popularity 5, canary 50) = %v", err)
	}
	if m := resp.GetModel(); m.GetActiveVersion() != "2" || m.GetCanaryVersion() != "5" || m.GetCanaryPercent() != 50 ||
		!reflect.DeepEqual(labels(m), map[string]string{"1": "/available", "2": "stable/ready", "5": "canary/ready"}) {
		t.Fatalf("DeployModel(canary) model = %v; want stable 2, canary 5 at 50%%", m)
	}
	served := map[string]int{}
	for i := range 40 {
		served[servedVersion(fmt.Sprintf("user%d", i))]++
	}
	if served["2"] == 0 || served["5"] == 0 || served["2"]+served["5"] != 40 {
		t.Errorf("40 users under a 50%% canary were served %v; want both 2 and 5", served)
	}

	// Rollback removes the canary, then goes back to version 1.
	rb, err := ms.Rollback(ctx, &pb.RollbackRequest{Name: "popularity"})
	if err != nil || rb.GetModel().GetActiveVersion() != "2" || rb.GetModel().GetCanaryVersion() != "" {
		t.Fatalf("Rollback (canary) = %v, %v; want stable 2 without canary", rb, err)
	}
	rb, err = ms.Rollback(ctx, &pb.RollbackRequest{Name: "popularity"})
	if err != nil || rb.GetModel().GetActiveVersion() != "1" {
		t.Fatalf("Rollback (stable) = %v, %v; want stable 1", rb, err)
	}
	if got := servedVersion("u1"); got != "1" {
		t.Errorf("after rollback: popularity serves %s; want 1", got)
	}

	// Activate a version already on disk.
	act, err := ms.ActivateVersion(ctx, &pb.ActivateVersionRequest{Name: "popularity", Version: "5"})
	if err != nil || act.GetModel().GetActiveVersion() != "5" {
		t.Fatalf("ActivateVersion(5) = %v, %v; want stable 5", act, err)
	}

	// Deploy without activating: 6 lands on disk, 5 keeps serving.
	resp, err = deploy(ctx, ms, versionUpload(t, v1, &pb.DeployHeader{Name: "popularity"}, 1<<20))
	if err != nil || resp.GetVersion() != "6" || resp.GetModel().GetActiveVersion() != "5" || labels(resp.GetModel())["6"] != "/available" {
		t.Fatalf("DeployModel(no activate) = %v, %v; want version 6 available, 5 serving", resp, err)
	}

	// Unload, then back to the latest policy: the newest version serves.
	un, err := ms.UnloadModel(ctx, &pb.UnloadModelRequest{Name: "popularity"})
	if err != nil || un.GetModel().GetState() != pb.ModelState_MODEL_STATE_UNLOADED || un.GetModel().GetActiveVersion() != "" {
		t.Fatalf("UnloadModel = %v, %v; want unloaded, nothing active", un, err)
	}
	if _, err := rec.Recommend(t.Context(), &pb.RecommendRequest{UserId: "u1", Model: "popularity"}); status.Code(err) == codes.OK {
		t.Errorf("Recommend(model popularity) after unload succeeded; want an error")
	}
	act, err = ms.ActivateVersion(ctx, &pb.ActivateVersionRequest{Name: "popularity", Version: "latest"})
	if err != nil || act.GetModel().GetActiveVersion() != "6" || act.GetModel().GetPolicy() != "latest" {
		t.Fatalf("ActivateVersion(latest) = %v, %v; want policy latest serving 6", act, err)
	}

	// A new model deploys with a nested file.
	up := versionUpload(t, v1, &pb.DeployHeader{Name: "popnew", Activate: true}, 1<<20)
	up = append(up, chunk("notes/README.txt", []byte("trained by hand\n")))
	resp, err = deploy(ctx, ms, up)
	if err != nil || resp.GetVersion() != "1" || resp.GetModel().GetState() != pb.ModelState_MODEL_STATE_READY {
		t.Fatalf("DeployModel(popnew) = %v, %v; want version 1 ready", resp, err)
	}
	if b, err := os.ReadFile(filepath.Join(repo, "popnew", "1", "notes", "README.txt")); err != nil || string(b) != "trained by hand\n" {
		t.Errorf("popnew/1/notes/README.txt = %q, %v; want the uploaded text", b, err)
	}
	list, err := ms.ListModels(t.Context(), &pb.ListModelsRequest{})
	if err != nil || len(list.GetModels()) != 4 {
		t.Errorf("ListModels after deploying popnew = %v, %v; want 4 models", list, err)
	}
}

// TestLifecycleBadInput checks the unary management methods' validation.
func TestLifecycleBadInput(t *testing.T) {
	conn := runServer(t, writeE2EData(t), writeE2ERepo(t), withToken(adminToken))
	ms := pb.NewModelServiceClient(conn)
	ctx := bearerCtx(t.Context(), adminToken)
	tests := []struct {
		name     string
		activate *pb.ActivateVersionRequest
		rollback *pb.RollbackRequest
		unload   *pb.UnloadModelRequest
		code     codes.Code
		field    string
	}{
		{name: "activate without name", activate: &pb.ActivateVersionRequest{Version: "1"}, code: codes.InvalidArgument, field: "name"},
		{name: "activate without version", activate: &pb.ActivateVersionRequest{Name: "popularity"}, code: codes.InvalidArgument, field: "version"},
		{name: "activate canary 100", activate: &pb.ActivateVersionRequest{Name: "popularity", Version: "1", CanaryPercent: 100}, code: codes.InvalidArgument, field: "canary_percent"},
		{name: "activate canary NaN", activate: &pb.ActivateVersionRequest{Name: "popularity", Version: "1", CanaryPercent: math.NaN()}, code: codes.InvalidArgument, field: "canary_percent"},
		{name: "activate unknown model", activate: &pb.ActivateVersionRequest{Name: "nope", Version: "1"}, code: codes.NotFound, field: "name"},
		{name: "activate bad model name", activate: &pb.ActivateVersionRequest{Name: "../popularity", Version: "1"}, code: codes.InvalidArgument, field: "name"},
		{name: "activate unknown version", activate: &pb.ActivateVersionRequest{Name: "popularity", Version: "9"}, code: codes.NotFound, field: "version"},
		{name: "activate bad version", activate: &pb.ActivateVersionRequest{Name: "popularity", Version: "../1"}, code: codes.InvalidArgument, field: "version"},
		{name: "activate failing version", activate: &pb.ActivateVersionRequest{Name: "broken", Version: "1"}, code: codes.InvalidArgument},
		{name: "rollback without name", rollback: &pb.RollbackRequest{}, code: codes.InvalidArgument, field: "name"},
		{name: "rollback unknown model", rollback: &pb.RollbackRequest{Name: "nope"}, code: codes.NotFound, field: "name"},
		{name: "rollback single version", rollback: &pb.RollbackRequest{Name: "popularity"}, code: codes.FailedPrecondition},
		{name: "unload without name", unload: &pb.UnloadModelRequest{}, code: codes.InvalidArgument, field: "name"},
		{name: "unload unknown model", unload: &pb.UnloadModelRequest{Name: "nope"}, code: codes.NotFound, field: "name"},
	}
	for _, tt := range tests {
		var err error
		switch {
		case tt.activate != nil:
			_, err = ms.ActivateVersion(ctx, tt.activate)
		case tt.rollback != nil:
			_, err = ms.Rollback(ctx, tt.rollback)
		default:
			_, err = ms.UnloadModel(ctx, tt.unload)
		}
		if got := status.Code(err); got != tt.code {
			t.Errorf("%s: code = %v (%v); want %v", tt.name, got, err, tt.code)
		}
		var want []string
		if tt.field != "" {
			want = []string{tt.field}
		}
		if got := fieldViolations(err); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: field violations = %q (%v); want %q", tt.name, got, err, want)
		}
	}
	// None of it changed what serves.
	m, err := ms.GetModel(t.Context(), &pb.GetModelRequest{Name: "popularity"})
	if err != nil || m.GetModel().GetActiveVersion() != "1" || m.GetModel().GetState() != pb.ModelState_MODEL_STATE_READY {
		t.Errorf("popularity after bad requests = %v, %v; want ready version 1", m, err)
	}
}

// TestRepoPoll copies a new version into the repository directory, as
// another replica's deploy would, and waits for the polling server to serve
// it.
func TestRepoPoll(t *testing.T) {
	data, repo := writeE2EData(t), writeE2ERepo(t)
	ms := pb.NewModelServiceClient(runServer(t, data, repo, func(c *server.Config) { c.RepoPoll = 5 * time.Millisecond }))
	src, dst := filepath.Join(repo, "popularity", "1"), filepath.Join(repo, "popularity", "2")
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		m, err := ms.GetModel(t.Context(), &pb.GetModelRequest{Name: "popularity"})
		if err == nil && m.GetModel().GetActiveVersion() == "2" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("popularity after copying version 2 in = %v, %v; want version 2 active within 20s", m, err)
		}
		time.Sleep(5 * time.Millisecond) // polling the server's poll loop; no event to wait on
	}
}
