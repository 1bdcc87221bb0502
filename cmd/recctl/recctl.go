// Package recctl implements the recctl commands. Each command parses its own
// flags and calls into the training, dataset or client packages; no model or
// data logic lives here.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// command is one recctl sub-command.
type command struct {
	summary string
	run     func(ctx context.Context, env *env, args []string) error
}

// env carries a command's outputs.
type env struct {
	stdout, stderr io.Writer
}

// errUsage marks a command-line mistake (exit code 2).
var errUsage = errors.New("usage")

// exitCode maps an error from runCommand to a process exit code: 2 for usage errors,
// 1 otherwise.
func exitCode(err error) int {
	if errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

func commands() map[string]command {
	return map[string]command{
		"datagen":    {"generate the synthetic e-commerce demo data set", runDatagen},
		"import":     {"convert MovieLens, RetailRocket or generic CSV data to the canonical format", runImport},
		"split":      {"split a data set into train/ and test/ (per user, by time or at random)", runSplit},
		"train":      {"train a Go-native model into a repository version directory", runTrain},
		"eval":       {"evaluate every model (and route) of a repository offline; --impressions LOG: logged arms' click-through beside their routes' offline metrics", runEval},
		"recommend":  {"ask a running server for recommendations", runRecommend},
		"score":      {"ask a running server to score items for a user", runScore},
		"similar":    {"ask a running server for items similar to an item", runSimilar},
		"models":     {"list the models of a running server: what serves, policy, every version's state", runModels},
		"deploy":     {"upload a model version directory to a running server (NAME DIR [--activate | --canary PCT])", runDeploy},
		"activate":   {"serve a version of a model as stable or canary (NAME VERSION|latest [--canary PCT])", runActivate},
		"rollback":   {"remove a model's canary, else go back to its previous stable version (NAME)", runRollback},
		"unload":     {"stop serving a model; its versions stay on disk (NAME)", runUnload},
		"predict":    {"score a CSV of feature rows offline with a model version directory", runPredict},
		"features":   {"export the purchase-propensity training matrix of a data set (one row per sampled user-item pair)", runFeatures},
		"replay":     {"send a data set's interactions to a running server through TrackStream (--rate, --events, --duration)", runReplay},
		"export":     {"write the canonical data set of a live state store (--state DIR | --store URL, --out DIR)", runExport},
		"experiment": {"report an experiment's arms, a route's or a model's versions: users, CTR, conversion, revenue, lift, verdict (report NAME | --route R | --model M)", runExperiment},
		"datainfo":   {"summarise a data set and say which trainers it can feed (purchases, item text, categories, histories)", runDatainfo},
		"simulate":   {"play simulated shoppers against a running server and print each experiment arm's ground truth (--users, --requests, --route)", runSimulate},
	}
}

// runCommand executes the command named by args[0].
func runCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	e := &env{stdout: stdout, stderr: stderr}
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr, cmds)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	c, ok := cmds[args[0]]
	if !ok {
		usage(stderr, cmds)
		return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}
	return c.run(ctx, e, args[1:])
}

func usage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: recctl COMMAND [flags]   (recctl COMMAND -h for flags)")
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(e *env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("recctl "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

// parse parses args and wraps mistakes as usage errors.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

// parseInterspersed parses flags that may come before or after positional
// arguments (`recctl models NAME --json`), which flag.Parse alone stops at,
// and returns the positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parse(fs, args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// required reports missing required flags.
func required(fs *flag.FlagSet, names ...string) error {
	var missing []string
	for _, n := range names {
		if f := fs.Lookup(n); f == nil || f.Value.String() == "" {
			missing = append(missing, "--"+n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s: missing %s", errUsage, fs.Name(), strings.Join(missing, ", "))
	}
	return nil
}

// stringList is a repeatable or comma-separated string flag.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }

func (s *stringList) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*s = append(*s, p)
		}
	}
	return nil
}

// repeated is a repeatable flag that keeps each value whole (for k=v params).
type repeated []string

func (r *repeated) String() string { return strings.Join(*r, " ") }

func (r *repeated) Set(v string) error {
	*r = append(*r, v)
	return nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
