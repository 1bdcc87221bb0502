package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/repository"
	"github.com/recserve/recserve/serving/router"
)

// violations returns the BadRequest field names carried by err's status.
func violations(err error) []string {
	var fields []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	return fields
}

func TestToStatus(t *testing.T) {
	notFound := fmt.Errorf("model %q: %w", "x", models.ErrNotFound)
	tests := []struct {
		name      string
		err       error
		code      codes.Code
		field     string // "" for no BadRequest detail
		msg       string // exact status message; "" to skip
		logsCause bool
	}{
		{"field error", &models.FieldError{Field: "k", Err: errors.New("must be between 1 and 1000")}, codes.InvalidArgument, "k", "k: must be between 1 and 1000", false},
		{"field not found", &models.FieldError{Field: "model", Err: notFound}, codes.NotFound, "model", `model: model "x": not found`, false},
		{"field not ready", &models.FieldError{Field: "model", Err: fmt.Errorf("m: %w", models.ErrNotReady)}, codes.FailedPrecondition, "model", "", false},
		{"wrapped field error", fmt.Errorf("outer: %w", &models.FieldError{Field: "item_ids[2]", Err: errors.New("empty item id")}), codes.InvalidArgument, "item_ids[2]", "", false},
		{"not found", notFound, codes.NotFound, "", `model "x": not found`, false},
		{"not ready", fmt.Errorf("m: %w", models.ErrNotReady), codes.FailedPrecondition, "", "", false},
		{"unsupported", fmt.Errorf("m: %w", models.ErrUnsupported), codes.FailedPrecondition, "", "", false},
		{"deadline", fmt.Errorf("history: %w", context.DeadlineExceeded), codes.DeadlineExceeded, "", "", false},
		{"canceled", context.Canceled, codes.Canceled, "", "", false},
		{"deadline beats field", &models.FieldError{Field: "model", Err: context.DeadlineExceeded}, codes.DeadlineExceeded, "", "", false},
		{"loading", errLoading, codes.Unavailable, "", "", false},
		{"loading named field", &models.FieldError{Field: "name", Err: errLoading}, codes.Unavailable, "", "", false},
		{"status passes through", status.Error(codes.ResourceExhausted, "slow down"), codes.ResourceExhausted, "", "slow down", false},
		{"invalid name", &models.FieldError{Field: "header.name", Err: fmt.Errorf("model %q: %w", "../x", repository.ErrInvalidName)}, codes.InvalidArgument, "header.name", "", false},
		{"upload too large", fmt.Errorf("upload: %w", repository.ErrTooLarge), codes.ResourceExhausted, "", "", false},
		{"version exists", &models.FieldError{Field: "header.version", Err: fmt.Errorf("m/1: %w", repository.ErrExists)}, codes.AlreadyExists, "header.version", "", false},
		{"rejected says why", fmt.Errorf("deploy m 2: %w: warm-up gave NaN", repository.ErrRejected), codes.InvalidArgument, "", "deploy m 2: model version rejected: warm-up gave NaN", false},
		{"rejected beats not found", fmt.Errorf("%w: %w", repository.ErrRejected, models.ErrNotFound), codes.InvalidArgument, "", "", false},
		{"nothing to roll back", fmt.Errorf("m: %w", repository.ErrNoRollback), codes.FailedPrecondition, "", "", false},
		{"canary of the stable version", fmt.Errorf("m: %w", repository.ErrConflict), codes.FailedPrecondition, "", "", false},
		{"unexpected", errors.New("disk on fire at /secret/path"), codes.Internal, "", "internal error", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, nil))
			got := toStatus(context.Background(), log, tt.err)
			st, ok := status.FromError(got)
			if !ok {
				t.Fatalf("toStatus(%v) = %v; want a status error", tt.err, got)
			}
			if st.Code() != tt.code {
				t.Errorf("toStatus(%v) code = %v; want %v", tt.err, st.Code(), tt.code)
			}
			var wantFields []string
			if tt.field != "" {
				wantFields = []string{tt.field}
			}
			if f := violations(got); strings.Join(f, ",") != strings.Join(wantFields, ",") {
				t.Errorf("toStatus(%v) field violations = %q; want %q", tt.err, f, wantFields)
			}
			if tt.msg != "" && st.Message() != tt.msg {
				t.Errorf("toStatus(%v) message = %q; want %q", tt.err, st.Message(), tt.msg)
			}
			logged := strings.Contains(buf.String(), "disk on fire")
			if logged != tt.logsCause {
				t.Errorf("toStatus(%v) logged cause = %v (log %q); want %v", tt.err, logged, buf.String(), tt.logsCause)
			}
		})
	}
	if got := toStatus(context.Background(), slog.New(slog.DiscardHandler), nil); got != nil {
		t.Errorf("toStatus(nil) = %v; want nil", got)
	}
}

func TestToStatusFieldDescription(t *testing.T) {
	err := toStatus(context.Background(), slog.New(slog.DiscardHandler), &models.FieldError{Field: "k", Err: errors.New("too big")})
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			if got := br.GetFieldViolations()[0].GetDescription(); got != "too big" {
				t.Errorf("BadRequest description = %q; want %q", got, "too big")
			}
			return
		}
	}
	t.Errorf("toStatus(FieldError) has no BadRequest detail")
}

func TestLazyDepsBeforeLoad(t *testing.T) {
	var l lazyDeps
	ctx := context.Background()
	if _, err := l.Recommend(ctx, router.Request{UserID: "u"}); !errors.Is(err, errLoading) {
		t.Errorf("lazyDeps.Recommend before load error = %v; want errLoading", err)
	}
	if _, err := l.Score(ctx, router.ScoreRequest{UserID: "u"}); !errors.Is(err, errLoading) {
		t.Errorf("lazyDeps.Score before load error = %v; want errLoading", err)
	}
	if _, err := l.Info("m"); !errors.Is(err, errLoading) {
		t.Errorf("lazyDeps.Info before load error = %v; want errLoading", err)
	}
	if got, err := l.List(); got != nil || !errors.Is(err, errLoading) {
		t.Errorf("lazyDeps.List before load = %v, %v; want nil, errLoading", got, err)
	}
	if _, err := l.NewUpload("m", ""); !errors.Is(err, errLoading) {
		t.Errorf("lazyDeps.NewUpload before load error = %v; want errLoading", err)
	}
	if _, err := l.Commit(ctx, nil, repository.DeployOptions{}); !errors.Is(err, errLoading) {
		t.Errorf("lazyDeps.Commit before load error = %v; want errLoading", err)
	}
	if _, err := l.Activate(ctx, "m", "1", 0); !errors.Is(err, errLoading) {
		t.Errorf("lazyDeps.Activate before load error = %v; want errLoading", err)
	}
	if _, err := l.Rollback(ctx, "m"); !errors.Is(err, errLoading) {
		t.Errorf("lazyDeps.Rollback before load error = %v; want errLoading", err)
	}
	if _, err := l.Unload(ctx, "m"); !errors.Is(err, errLoading) {
		t.Errorf("lazyDeps.Unload before load error = %v; want errLoading", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  Config
		want []string
	}{
		{Config{Addr: "a", Repo: "r", Data: "d"}, nil},
		{Config{}, []string{"addr: required", "repo: required", "data: required"}},
		{Config{Addr: "a", Repo: "r"}, []string{"data: required"}},
		{Config{Addr: "a", Repo: "r", Data: "d", TLSCertFile: "c.pem", TLSKeyFile: "k.pem", RepoPoll: time.Second, MaxUploadBytes: 1 << 20, Server: Options{AdminToken: "s3cr3t-T0ken"}}, nil},
		{Config{Addr: "a", Repo: "r", Data: "d", TLSCertFile: "c.pem"}, []string{"tls-cert and tls-key: give both or neither"}},
		{Config{Addr: "a", Repo: "r", Data: "d", TLSKeyFile: "k.pem"}, []string{"tls-cert and tls-key: give both or neither"}},
		{Config{Addr: "a", Repo: "r", Data: "d", MaxUploadBytes: -1, RepoPoll: -time.Second}, []string{"max-upload-bytes", "repo-poll"}},
		{Config{Addr: "a", Repo: "r", Data: "d", Server: Options{AdminToken: "two words"}}, []string{"RECSERVE_ADMIN_TOKEN", "printable ASCII"}},
		{Config{Addr: "a", Repo: "r", Data: "d", Server: Options{AdminToken: "tok\n"}}, []string{"RECSERVE_ADMIN_TOKEN"}},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if (err == nil) != (tt.want == nil) {
			t.Errorf("%+v.Validate() = %v; want errors %q", tt.cfg, err, tt.want)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v.Validate() = %q; want it to contain %q", tt.cfg, err, w)
			}
		}
	}
}
