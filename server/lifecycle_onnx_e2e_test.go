package server_test

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/onnx"
	pb "github.com/recserve/recserve/proto/recserve/v1"
	"github.com/recserve/recserve/server"
)

// onnxVersion writes a version directory serving the onnx test fixture file
// (models/onnx/testdata, items i01..i10 of the e2e catalogue) under the given
// signature, and returns it.
func onnxVersion(t *testing.T, file, signature string) string {
	t.Helper()
	dir := t.TempDir()
	for src, dst := range map[string]string{file: "model.onnx", "items.txt": "items.txt"} {
		b, err := os.ReadFile(filepath.Join("..", "models", "onnx", "testdata", src))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := models.WriteSpec(dir, models.Spec{Kind: onnx.Kind, File: "model.onnx", Items: "items.txt", Signature: signature}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// stoppableServer starts a server (startStoppable) and returns clients for
// it and the function that stops it.
func stoppableServer(t *testing.T, cfg server.Config) (pb.RecommendServiceClient, pb.ModelServiceClient, func()) {
	t.Helper()
	addr, stopRun := startStoppable(t, cfg)
	conn := dial(t, addr)
	waitServing(t, healthpb.NewHealthClient(conn), "")
	stop := func() { conn.Close(); stopRun() }
	return pb.NewRecommendServiceClient(conn), pb.NewModelServiceClient(conn), stop
}

// TestLifecycleUnderLoad is the model lifecycle's acceptance test, through
// the real server with real onnxruntime sessions: 50 cycles of deploy →
// activate → rollback while four clients call Recommend fail no request; bad
// uploads (corrupt ONNX, wrong signature, NaN outputs, oversize, path
// traversal) are rejected with clear errors while the serving version keeps
// serving; a restart serves the activated versions; a deploy without the
// token is Unauthenticated.
func TestLifecycleUnderLoad(t *testing.T) {
	if lib, err := onnx.FindLibrary(); err != nil || !fileExists(lib) {
		t.Skipf("onnxruntime library not found (run `make ort` or set %s): %q, %v", onnx.LibraryEnv, lib, err)
	}
	data, repo := writeE2EData(t), writeE2ERepo(t)
	good := onnxVersion(t, "user_vector.onnx", onnx.UserVector)
	if err := os.CopyFS(filepath.Join(repo, "nn", "1"), os.DirFS(good)); err != nil {
		t.Fatal(err)
	}
	cfg := server.Config{Addr: "127.0.0.1:0", Repo: repo, Data: data, Server: server.DefaultOptions(), MaxUploadBytes: 1 << 20}
	cfg.Server.AdminToken = adminToken
	rec, ms, stop := stoppableServer(t, cfg)
	admin := bearerCtx(t.Context(), adminToken)

	// Four clients: two ask the onnx model directly, two the default route.
	loadCtx, stopLoad := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	var requests, failures atomic.Int64
	var firstErr atomic.Value
	var versionsSeen sync.Map
	for g := range 4 {
		wg.Go(func() {
			users := []string{"u1", "u2", "u3", "anon"}
			for i := 0; loadCtx.Err() == nil; i++ {
				req := &pb.RecommendRequest{UserId: users[(g+i)%len(users)], K: 3}
				if g < 2 {
					req.Model = "nn"
				}
				if req.UserId == "anon" {
					req.UserId, req.SessionItems = "", []string{"i02"}
				}
				ctx, cancel := context.WithTimeout(loadCtx, 5*time.Second)
				resp, err := rec.Recommend(ctx, req)
				cancel()
				if loadCtx.Err() != nil {
					return
				}
				requests.Add(1)
				if err != nil || len(resp.GetItems()) == 0 {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, status.Convert(err).String()+" items="+resp.String())
					continue
				}
				for _, mv := range resp.GetModelVersions() {
					if mv.GetName() == "nn" {
						versionsSeen.Store(mv.GetVersion(), true)
					}
				}
			}
		})
	}

	for cycle := range 50 {
		dep, err := deploy(admin, ms, versionUpload(t, good, &pb.DeployHeader{Name: "nn"}, 512))
		if err != nil {
			t.Fatalf("cycle %d: deploy: %v", cycle, err)
		}
		if _, err := ms.ActivateVersion(admin, &pb.ActivateVersionRequest{Name: "nn", Version: dep.GetVersion()}); err != nil {
			t.Fatalf("cycle %d: activate %s: %v", cycle, dep.GetVersion(), err)
		}
		// Let the load reach the new version before taking it back.
		time.Sleep(5 * time.Millisecond)
		rb, err := ms.Rollback(admin, &pb.RollbackRequest{Name: "nn"})
		if err != nil {
			t.Fatalf("cycle %d: rollback: %v", cycle, err)
		}
		if got := rb.GetModel().GetActiveVersion(); got != "1" {
			t.Fatalf("cycle %d: after rollback active = %s; want 1", cycle, got)
		}
	}
	stopLoad()
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Errorf("%d of %d requests failed during 50 deploy/activate/rollback cycles; first: %v", n, requests.Load(), firstErr.Load())
	}
	seen := 0
	versionsSeen.Range(func(any, any) bool { seen++; return true })
	t.Logf("%d requests during 50 cycles, %d nn versions answered", requests.Load(), seen)
	if requests.Load() < 200 || seen < 2 {
		t.Errorf("load too light to mean anything: %d requests, %d versions seen; want ≥ 200 and ≥ 2", requests.Load(), seen)
	}

	// Bad uploads are rejected and version 1 keeps serving.
	corrupt := onnxVersion(t, "user_vector.onnx", onnx.UserVector)
	junk := make([]byte, 4096)
	rand.Read(junk)
	if err := os.WriteFile(filepath.Join(corrupt, "model.onnx"), junk, 0o644); err != nil {
		t.Fatal(err)
	}
	big := onnxVersion(t, "user_vector.onnx", onnx.UserVector)
	if err := os.WriteFile(filepath.Join(big, "padding.bin"), make([]byte, 2<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		upload   upload
		code     codes.Code
		contains string
	}{
		{"corrupt onnx", versionUpload(t, corrupt, &pb.DeployHeader{Name: "nn", Activate: true}, 1<<10), codes.InvalidArgument, "model.onnx"},
		{"wrong signature", versionUpload(t, onnxVersion(t, "user_vector.onnx", onnx.Sequence), &pb.DeployHeader{Name: "nn", Activate: true}, 1<<10), codes.InvalidArgument, "sequence"},
		{"wrong output shape", versionUpload(t, onnxVersion(t, "wrong_shape.onnx", onnx.UserVector), &pb.DeployHeader{Name: "nn", Activate: true}, 1<<10), codes.InvalidArgument, "scores"},
		{"NaN outputs", versionUpload(t, onnxVersion(t, "nan.onnx", onnx.UserVector), &pb.DeployHeader{Name: "nn", Activate: true}, 1<<10), codes.InvalidArgument, "finite"},
		{"oversize", versionUpload(t, big, &pb.DeployHeader{Name: "nn", Activate: true}, 256<<10), codes.ResourceExhausted, "bytes"},
		{"path traversal", append(versionUpload(t, good, &pb.DeployHeader{Name: "nn", Activate: true}, 1<<10), chunk("../../evil.txt", []byte("x"))), codes.InvalidArgument, "chunk.path"},
		{"name traversal", versionUpload(t, good, &pb.DeployHeader{Name: "../nn", Activate: true}, 1<<10), codes.InvalidArgument, "header.name"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := deploy(admin, ms, tt.upload)
			if st := status.Convert(err); st.Code() != tt.code || !strings.Contains(st.Message()+fieldViolationsString(err), tt.contains) {
				t.Fatalf("deploy: %v; want %v mentioning %q", err, tt.code, tt.contains)
			}
			t.Logf("rejected: %v", err)
			resp, err := rec.Recommend(t.Context(), &pb.RecommendRequest{UserId: "u1", K: 3, Model: "nn"})
			if err != nil || len(resp.GetItems()) == 0 || resp.GetModelVersions()[0].GetVersion() != "1" {
				t.Errorf("after the rejected upload Recommend(nn) = %v, %v; want items from version 1", resp, err)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(repo), "evil.txt")); err == nil {
				t.Errorf("an upload wrote outside the repository")
			}
		})
	}

	// Without the token nothing changes.
	if _, err := deploy(t.Context(), ms, versionUpload(t, good, &pb.DeployHeader{Name: "nn", Activate: true}, 1<<10)); status.Code(err) != codes.Unauthenticated {
		t.Errorf("deploy without a token: %v; want Unauthenticated", err)
	}

	// Pin nn to version 3 with version 4 as a 25% canary, then restart.
	if _, err := ms.ActivateVersion(admin, &pb.ActivateVersionRequest{Name: "nn", Version: "3"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ms.ActivateVersion(admin, &pb.ActivateVersionRequest{Name: "nn", Version: "4", CanaryPercent: 25}); err != nil {
		t.Fatal(err)
	}
	if _, err := ms.UnloadModel(admin, &pb.UnloadModelRequest{Name: "popcat"}); err != nil {
		t.Fatal(err)
	}
	stop()
	_, ms2, _ := stoppableServer(t, cfg)
	for name, want := range map[string]struct {
		active, canary string
		state          pb.ModelState
	}{
		"nn":         {"3", "4", pb.ModelState_MODEL_STATE_READY},
		"popcat":     {"", "", pb.ModelState_MODEL_STATE_UNLOADED},
		"popularity": {"1", "", pb.ModelState_MODEL_STATE_READY},
	} {
		got, err := ms2.GetModel(t.Context(), &pb.GetModelRequest{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		m := got.GetModel()
		if m.GetActiveVersion() != want.active || m.GetCanaryVersion() != want.canary || m.GetState() != want.state {
			t.Errorf("after restart %s = active %q canary %q state %v; want %q %q %v", name,
				m.GetActiveVersion(), m.GetCanaryVersion(), m.GetState(), want.active, want.canary, want.state)
		}
	}
}

func fieldViolationsString(err error) string { return strings.Join(fieldViolations(err), " ") }
