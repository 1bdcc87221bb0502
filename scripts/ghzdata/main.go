// Command ghzdata writes ghz request files as length-delimited binary
// protobuf messages (ghz -B), so the load generator sends requests without
// rendering a JSON template per call: one RecommendRequest per user of a data
// set, or one empty health check request.
//
//	ghzdata -kind recommend -data DIR -users N -k 10 [-model NAME | -route NAME] -out FILE
//	ghzdata -kind health -out FILE
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"

	"github.com/recserve/recserve/dataset"
	pb "github.com/recserve/recserve/proto/recserve/v1"
)

func main() {
	kind := flag.String("kind", "recommend", "recommend or health")
	data := flag.String("data", "var/demo/data", "data set directory (recommend)")
	users := flag.Int("users", 1000, "number of distinct users to cycle through (recommend)")
	k := flag.Int("k", 10, "k of each request (recommend)")
	model := flag.String("model", "", "model override of each request (recommend)")
	route := flag.String("route", "", "route of each request (recommend)")
	out := flag.String("out", "", "output file")
	flag.Parse()
	if err := run(*kind, *data, *users, *k, *model, *route, *out); err != nil {
		fmt.Fprintln(os.Stderr, "ghzdata:", err)
		os.Exit(1)
	}
}

func run(kind, data string, users, k int, model, route, out string) error {
	var msgs []proto.Message
	switch kind {
	case "health":
		msgs = []proto.Message{&healthpb.HealthCheckRequest{}}
	case "recommend":
		ids := map[string]struct{}{}
		err := readUsers(data, ids)
		if err != nil {
			return err
		}
		sorted := make([]string, 0, len(ids))
		for id := range ids {
			sorted = append(sorted, id)
		}
		sort.Strings(sorted)
		for _, id := range sorted[:min(users, len(sorted))] {
			msgs = append(msgs, &pb.RecommendRequest{UserId: id, K: int32(k), Model: model, Route: route})
		}
	default:
		return fmt.Errorf("unknown -kind %q", kind)
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if _, err := protodelim.MarshalTo(f, m); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

func readUsers(dir string, ids map[string]struct{}) error {
	f, err := os.Open(dir + "/" + dataset.InteractionsFile)
	if err != nil {
		return err
	}
	defer f.Close()
	return dataset.ReadInteractions(f, f.Name(), func(in dataset.Interaction) error {
		ids[in.UserID] = struct{}{}
		return nil
	})
}
