package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/recserve/recserve/proto/recserve/v1"
)

// AdminTokenEnv is the environment variable cmd/recserve reads the admin
// token from, and recctl sends it from.
const AdminTokenEnv = "RECSERVE_ADMIN_TOKEN"

// adminMethod reports the methods that change what the server serves or
// read a shopper's personal history; they need the admin token. Everything
// else (recommendations, Track from internal services, listings, health,
// reflection) is open.
func adminMethod(fullMethod string) bool {
	switch fullMethod {
	case pb.ModelService_DeployModel_FullMethodName,
		pb.ModelService_ActivateVersion_FullMethodName,
		pb.ModelService_Rollback_FullMethodName,
		pb.ModelService_UnloadModel_FullMethodName,
		pb.EventService_UpsertItems_FullMethodName,
		pb.EventService_DeleteItems_FullMethodName,
		pb.EventService_DeleteUser_FullMethodName,
		pb.EventService_GetUser_FullMethodName,
		pb.EventService_Export_FullMethodName:
		return true
	}
	return false
}

// adminAuth checks the bearer token of admin methods. It keeps only the
// token's SHA-256, and compares digests in constant time, so neither the
// token's bytes nor its length leak through timing. It is immutable and safe
// for concurrent use.
type adminAuth struct {
	digest [sha256.Size]byte
	set    bool
}

func newAdminAuth(token string) adminAuth {
	if token == "" {
		return adminAuth{}
	}
	return adminAuth{digest: sha256.Sum256([]byte(token)), set: true}
}

// check returns nil when ctx may call method, else an Unauthenticated
// status that never echoes what the client sent.
func (a adminAuth) check(ctx context.Context, method string) error {
	if !adminMethod(method) {
		return nil
	}
	if !a.set {
		return status.Error(codes.Unauthenticated,
			"model management is disabled: start the server with "+AdminTokenEnv+" set to enable it")
	}
	tok, ok := bearer(ctx)
	if !ok {
		return status.Error(codes.Unauthenticated, "missing or invalid bearer token")
	}
	got := sha256.Sum256([]byte(tok))
	if subtle.ConstantTimeCompare(got[:], a.digest[:]) != 1 {
		return status.Error(codes.Unauthenticated, "missing or invalid bearer token")
	}
	return nil
}

// bearer returns the token of the one "authorization: Bearer <token>"
// metadata value (the scheme is case-insensitive, RFC 7235).
func bearer(ctx context.Context) (string, bool) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) != 1 {
		return "", false
	}
	scheme, tok, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return "", false
	}
	tok = strings.TrimLeft(tok, " ")
	return tok, tok != ""
}

func (a adminAuth) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := a.check(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (a adminAuth) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := a.check(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return h(srv, ss)
}
