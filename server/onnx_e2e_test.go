package server_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/onnx"
	pb "github.com/recserve/recserve/proto/recserve/v1"
)

// foreignModels is the Python script of TestForeignONNXModels: two PyTorch
// models of architectures our trainers do not have, exported to ONNX with
// hand-written model.yaml files, as an ML engineer working elsewhere would
// deploy them:
//
//	mlp   user_vector: a 2-layer MLP (tanh) with a log-softmax over the
//	      multi-hot history; tensors "clicks" -> "logp"; its vocabulary lists
//	      the items in reverse order, so column i is not item i
//	conv  sequence: item embeddings, a 1-D convolution over the last 3 items
//	      and max-pooling; tensors "seq" -> "out"
//
// argv: the repository directory, then a JSON object user -> history (item
// ids, oldest first, all views). It builds each user's input by the
// documented rules and prints {"mlp": {user: scores by vocabulary index},
// "conv": {...}, "mlp_items": [...], "conv_items": [...]}.
const foreignModels = `
import json, os, sys
import torch
from torch import nn

repo, users = sys.argv[1], json.loads(sys.argv[2])
torch.manual_seed(11)
items = ["i%02d" % n for n in range(1, 31)]

class MLP(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.l1, self.l2 = nn.Linear(n, 24), nn.Linear(24, n)
    def forward(self, clicks):
        return torch.log_softmax(self.l2(torch.tanh(self.l1(clicks))), dim=-1)

class Conv(nn.Module):
    def __init__(self, n, dim=8):
        super().__init__()
        self.emb = nn.Embedding(n + 1, dim, padding_idx=0)
        self.conv = nn.Conv1d(dim, 16, kernel_size=2, padding=1)
        self.out = nn.Linear(16, n)
    def forward(self, seq):
        h = self.conv(self.emb(seq).transpose(1, 2))
        return self.out(torch.relu(h).max(dim=2).values)

def save(name, model, example, inp, out, vocab, yaml):
    d = os.path.join(repo, name, "1")
    os.makedirs(d)
    model.eval()
    torch.onnx.export(model, (example,), os.path.join(d, "model.onnx"), input_names=[inp], output_names=[out],
                      dynamic_axes={inp: {0: "b"}, out: {0: "b"}}, opset_version=13)
    with open(os.path.join(d, "items.txt"), "w") as f:
        f.write("\n".join(vocab) + "\n")
    with open(os.path.join(d, "model.yaml"), "w") as f:
        f.write(yaml)

result = {}
mlp_vocab = list(reversed(items))
mlp = MLP(len(items))
save("mlp", mlp, torch.zeros(2, len(items)), "clicks", "logp", mlp_vocab,
     "kind: onnx\nfile: model.onnx\nitems: items.txt\nsignature: user_vector\ninputs: [clicks]\noutputs: [logp]\n"
     "params:\n  weights: view:1,cart:3,purchase:5\nmetadata:\n  trained_by: someone else\n")
conv = Conv(len(items))
L = 3
save("conv", conv, torch.zeros(2, L, dtype=torch.int64), "seq", "out", items,
     "kind: onnx\nfile: model.onnx\nitems: items.txt\nsignature: sequence\ninputs: [seq]\noutputs: [out]\n"
     "params:\n  max_batch_size: 16\n  max_queue_delay_us: 200\n")
result["mlp"], result["conv"] = {}, {}
with torch.no_grad():
    for user, hist in users.items():
        x = torch.zeros(1, len(items))
        for it in hist:
            x[0, mlp_vocab.index(it)] += 1.0
        result["mlp"][user] = mlp(x)[0].tolist()
        seq = [items.index(it) + 1 for it in hist][-L:]
        s = torch.tensor([[0] * (L - len(seq)) + seq])
        result["conv"][user] = conv(s)[0].tolist()
result["mlp_items"], result["conv_items"] = mlp_vocab, items
print(json.dumps(result))
`

// TestForeignONNXModels deploys PyTorch models written here (not by our
// trainers) with hand-written model.yaml files and checks, through the real
// server, that Recommend with "model" returns the top items torch computes for
// each user, and that ListModels/GetModel show the models READY with their
// signature.
func TestForeignONNXModels(t *testing.T) {
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import torch, onnx").Run(); err != nil {
		t.Skipf("%s with torch and onnx is not available: %v", python, err)
	}
	if lib, err := onnx.FindLibrary(); err != nil || !fileExists(lib) {
		t.Skipf("onnxruntime library not found (run `make ort` or set %s): %q, %v", onnx.LibraryEnv, lib, err)
	}
	data, repo := writeE2EData(t), writeE2ERepo(t)
	users, err := json.Marshal(e2eHistory)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, "-c", foreignModels, repo, string(users))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	var torch struct {
		MLP       map[string][]float64 `json:"mlp"`
		Conv      map[string][]float64 `json:"conv"`
		MLPItems  []string             `json:"mlp_items"`
		ConvItems []string             `json:"conv_items"`
	}
	if err := json.Unmarshal(out, &torch); err != nil {
		t.Fatalf("python output %q: %v", out, err)
	}

	// slow: the mlp with a one-request queue whose batches wait 2s (longer
	// than the requests' deadline) to fill, so concurrent requests overflow
	// it. (Validation at load pays that wait once.)
	slow := filepath.Join(repo, "slow", "1")
	if err := os.MkdirAll(slow, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"model.onnx", "items.txt"} {
		b, err := os.ReadFile(filepath.Join(repo, "mlp", "1", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(slow, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := models.WriteSpec(slow, models.Spec{Kind: onnx.Kind, File: "model.onnx", Items: "items.txt", Signature: onnx.UserVector,
		Params: map[string]any{"max_batch_size": 1000, "max_queue_delay_us": 2_000_000, "max_queue_size": 1, "runners": 1}}); err != nil {
		t.Fatal(err)
	}

	conn := runServer(t, data, repo)
	rec := pb.NewRecommendServiceClient(conn)
	ms := pb.NewModelServiceClient(conn)
	ctx := t.Context()

	for _, m := range []struct {
		name, signature string
		scores          map[string][]float64
		vocab           []string
	}{
		{"mlp", onnx.UserVector, torch.MLP, torch.MLPItems},
		{"conv", onnx.Sequence, torch.Conv, torch.ConvItems},
	} {
		t.Run(m.name, func(t *testing.T) {
			for user, hist := range e2eHistory {
				// torch's ranking: best score first, ties by id, seen items
				// excluded (the request keeps the default exclude-seen filter).
				type scored struct {
					id    string
					score float64
				}
				var want []scored
				for i, s := range m.scores[user] {
					if !slices.Contains(hist, m.vocab[i]) {
						want = append(want, scored{m.vocab[i], s})
					}
				}
				slices.SortFunc(want, func(a, b scored) int {
					if a.score != b.score {
						if a.score > b.score {
							return -1
						}
						return 1
					}
					return strings.Compare(a.id, b.id)
				})
				const k = 5
				resp, err := rec.Recommend(ctx, &pb.RecommendRequest{UserId: user, K: k, Model: m.name})
				if err != nil {
					t.Fatalf("Recommend(%s, model %s) = %v", user, m.name, err)
				}
				if resp.GetRoute() != "model:"+m.name || resp.GetColdStart() {
					t.Errorf("Recommend(%s).route = %q, cold_start %v; want model:%s, false", user, resp.GetRoute(), resp.GetColdStart(), m.name)
				}
				got := resp.GetItems()
				if len(got) != k {
					t.Fatalf("Recommend(%s, model %s) = %d items; want %d", user, m.name, len(got), k)
				}
				for i, it := range got {
					w := want[i]
					if it.GetItemId() != w.id || math.Abs(it.GetScore()-w.score) > 1e-4*math.Max(1, math.Abs(w.score)) {
						t.Errorf("Recommend(%s, model %s)[%d] = %s %.6g; torch %s %.6g", user, m.name, i, it.GetItemId(), it.GetScore(), w.id, w.score)
					}
					if !slices.Equal(it.GetSources(), []string{m.name}) {
						t.Errorf("Recommend(%s)[%d].sources = %v; want [%s]", user, i, it.GetSources(), m.name)
					}
				}
			}

			resp, err := ms.GetModel(ctx, &pb.GetModelRequest{Name: m.name})
			if err != nil {
				t.Fatal(err)
			}
			info := resp.GetModel()
			if info.GetState() != pb.ModelState_MODEL_STATE_READY || info.GetKind() != onnx.Kind || info.GetSignature() != m.signature || info.GetError() != "" {
				t.Errorf("GetModel(%s) = state %v kind %q signature %q error %q; want READY onnx %s", m.name, info.GetState(), info.GetKind(), info.GetSignature(), info.GetError(), m.signature)
			}
			if roles := info.GetRoles(); !slices.Contains(roles, "recommender") || !slices.Contains(roles, "scorer") {
				t.Errorf("GetModel(%s).roles = %v; want recommender and scorer", m.name, roles)
			}
		})
	}

	t.Run("full queue is ResourceExhausted", func(t *testing.T) {
		got := make([]codes.Code, 6)
		var wg sync.WaitGroup
		for i := range got {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
				defer cancel()
				_, err := rec.Recommend(ctx, &pb.RecommendRequest{UserId: "u1", K: 3, Model: "slow"})
				got[i] = status.Code(err)
			})
		}
		wg.Wait()
		if !slices.Contains(got, codes.ResourceExhausted) {
			t.Errorf("codes of %d concurrent Recommends on a one-request queue = %v; want some ResourceExhausted", len(got), got)
		}
		for _, c := range got {
			if c != codes.ResourceExhausted && c != codes.DeadlineExceeded {
				t.Errorf("code %v; want ResourceExhausted or DeadlineExceeded", c)
			}
		}
	})

	list, err := ms.ListModels(ctx, &pb.ListModelsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]*pb.ModelInfo{}
	for _, info := range list.GetModels() {
		found[info.GetName()] = info
	}
	for name, sig := range map[string]string{"mlp": onnx.UserVector, "conv": onnx.Sequence} {
		if info := found[name]; info == nil || info.GetState() != pb.ModelState_MODEL_STATE_READY || info.GetSignature() != sig {
			t.Errorf("ListModels: %s = %v; want READY with signature %s", name, info, sig)
		}
	}
	if info := found["mlp"]; info != nil && info.GetMetadata()["trained_by"] != "someone else" {
		t.Errorf("ListModels: mlp metadata = %v; want trained_by from model.yaml", info.GetMetadata())
	}
	// The Go-native models serve beside them.
	if info := found["popularity"]; info == nil || info.GetState() != pb.ModelState_MODEL_STATE_READY {
		t.Errorf("ListModels: popularity = %v; want READY", info)
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// TestONNXWithoutLibrary starts the server with a library path that does not
// exist: the onnx model fails to load with the fix in its error, and the
// Go-native models serve.
func TestONNXWithoutLibrary(t *testing.T) {
	t.Setenv(onnx.LibraryEnv, filepath.Join(t.TempDir(), "missing", "libonnxruntime.so.1"))
	repo := writeE2ERepo(t)
	dir := filepath.Join(repo, "nn", "1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := models.WriteSpec(dir, models.Spec{Kind: onnx.Kind, File: "model.onnx", Items: "items.txt", Signature: onnx.UserVector}); err != nil {
		t.Fatal(err)
	}
	conn := runServer(t, writeE2EData(t), repo)
	ms := pb.NewModelServiceClient(conn)
	resp, err := ms.GetModel(t.Context(), &pb.GetModelRequest{Name: "nn"})
	if err != nil {
		t.Fatal(err)
	}
	if info := resp.GetModel(); info.GetState() != pb.ModelState_MODEL_STATE_FAILED ||
		!strings.Contains(info.GetError(), "onnxruntime library not loaded") || !strings.Contains(info.GetError(), "make ort") {
		t.Errorf("GetModel(nn) = state %v error %q; want FAILED with the fix", info.GetState(), info.GetError())
	}
	r, err := pb.NewRecommendServiceClient(conn).Recommend(t.Context(), &pb.RecommendRequest{UserId: "u1", K: 3, Route: "plain"})
	if err != nil || len(r.GetItems()) != 3 {
		t.Errorf("Recommend(plain) without onnxruntime = %v, %v; want 3 items", r.GetItems(), err)
	}
}
