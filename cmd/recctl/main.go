// Command recctl is recserve's command-line tool: data set generation, import
// and splitting, model training and offline evaluation, and a gRPC client for
// a running server. Run `recctl help` for the commands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/recserve/recserve/internal/recctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := recctl.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "recctl:", err)
		os.Exit(recctl.ExitCode(err))
	}
}
