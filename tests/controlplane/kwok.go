package main

import (
	"context"
	goflag "flag"
	"os"

	"github.com/spf13/pflag"
	"sigs.k8s.io/kwok/pkg/config"
	kwokcmd "sigs.k8s.io/kwok/pkg/kwok/cmd"
	"sigs.k8s.io/kwok/pkg/log"
	"sigs.k8s.io/kwok/pkg/utils/signals"
)

// runKwok runs sigs.k8s.io/kwok, built against the same k8s.io modules as the API server, so
// that pods bound to fake nodes become Running and Ready without a kubelet.
func runKwok(args []string) int {
	// The Kubernetes packages linked into this binary register their own global flags (a
	// non-boolean --version among them) that cobra would merge into kwok's command.
	pflag.CommandLine = pflag.NewFlagSet("kwok", pflag.ExitOnError)
	goflag.CommandLine = goflag.NewFlagSet("kwok", goflag.ExitOnError)

	flags := pflag.NewFlagSet("global", pflag.ContinueOnError)
	flags.ParseErrorsAllowlist.UnknownFlags = true
	flags.Usage = func() {}

	ctx := signals.SetupSignalContext()
	ctx, logger := log.InitFlags(ctx, flags)
	ctx, err := config.InitFlags(ctx, flags)
	if err != nil {
		logger.Error("kwok configuration", "err", err)
		return 1
	}
	return executeKwok(ctx, flags, args)
}

func executeKwok(ctx context.Context, flags *pflag.FlagSet, args []string) int {
	command := kwokcmd.NewCommand(ctx)
	command.PersistentFlags().AddFlagSet(flags)
	command.SetArgs(args)
	if err := command.ExecuteContext(ctx); err != nil {
		_, _ = os.Stderr.WriteString("kwok: " + err.Error() + "\n")
		return 1
	}
	return 0
}
