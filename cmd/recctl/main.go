// Command recctl is recserve's command-line tool: data set generation, import
// and splitting, model training and offline evaluation, and a gRPC client for
// a running server. Run `recctl help` for the commands; each command lives in
// the file named for its group (data.go, train.go, client.go, deploy.go, ...).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := runCommand(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "recctl:", err)
		os.Exit(exitCode(err))
	}
}
