// Command ghzsummary prints one line per ghz JSON report (requests/s, p50,
// p99, error count), or with -ratio the throughput ratio of two reports.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

type report struct {
	Count         int64   `json:"count"`
	Rps           float64 `json:"rps"`
	StatusCodeMap map[string]int64
	Distribution  []struct {
		Percentage float64 `json:"percentage"`
		Latency    int64   `json:"latency"`
	} `json:"latencyDistribution"`
}

func main() {
	ratio := flag.Bool("ratio", false, "print the rps ratio of the first report to the second")
	flag.Parse()
	var reps []report
	for _, path := range flag.Args() {
		b, err := os.ReadFile(path)
		if err != nil {
			fail(err)
		}
		var r report
		if err := json.Unmarshal(b, &r); err != nil {
			fail(fmt.Errorf("%s: %w", path, err))
		}
		reps = append(reps, r)
	}
	if *ratio {
		if len(reps) != 2 || reps[1].Rps == 0 {
			fail(fmt.Errorf("-ratio needs two reports with traffic"))
		}
		fmt.Printf("throughput ratio %s / %s = %.2f\n", strings.TrimSuffix(filepath.Base(flag.Arg(0)), ".json"), strings.TrimSuffix(filepath.Base(flag.Arg(1)), ".json"), reps[0].Rps/reps[1].Rps)
		return
	}
	for _, r := range reps {
		p := func(pct float64) time.Duration {
			for _, d := range r.Distribution {
				if d.Percentage == pct {
					return time.Duration(d.Latency)
				}
			}
			return 0
		}
		errs := int64(0)
		for code, n := range r.StatusCodeMap {
			if code != "OK" {
				errs += n
			}
		}
		fmt.Printf("requests %d  rps %.0f  p50 %v  p99 %v  errors %d\n", r.Count, r.Rps, p(50), p(99), errs)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "ghzsummary:", err)
	os.Exit(1)
}
