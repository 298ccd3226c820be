// Command controlplane runs a real, local Kubernetes control plane for Emporium's tests and
// `make dev`: an embedded etcd, kube-apiserver, kube-controller-manager and kube-scheduler, all
// built from the upstream modules, listening only on 127.0.0.1 with TLS and a generated admin
// kubeconfig.
//
// One binary plays every part. `controlplane up` is the supervisor: it embeds etcd, then starts
// itself again as `controlplane kube-apiserver ...` (and so on) in child processes, because each
// upstream command owns process-wide state (flags, feature gates, metrics registries, signal
// handlers) and two of them cannot share a process safely.
package main

import (
	"fmt"
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

const usage = `controlplane: a local Kubernetes control plane (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler) for Emporium's tests and development.

Usage:
  controlplane up [flags]                  start everything, write a kubeconfig, wait for a signal
  controlplane kube-apiserver [flags]      the upstream kube-apiserver (used by 'up')
  controlplane kube-controller-manager ... the upstream kube-controller-manager (used by 'up')
  controlplane kube-scheduler [flags]      the upstream kube-scheduler (used by 'up')
  controlplane kwok [flags]                sigs.k8s.io/kwok: fake nodes whose pods become Ready (used by 'up')

Run 'controlplane up --help' for the supervisor's flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	sub, rest := os.Args[1], os.Args[2:]
	switch sub {
	case "up":
		os.Exit(runUp(rest))
	case "kube-apiserver":
		cmd := apiserver.NewAPIServerCommand()
		cmd.SetArgs(rest)
		os.Exit(cli.Run(cmd))
	case "kube-controller-manager":
		cmd := controllermanager.NewControllerManagerCommand()
		cmd.SetArgs(rest)
		os.Exit(cli.Run(cmd))
	case "kube-scheduler":
		cmd := scheduler.NewSchedulerCommand()
		cmd.SetArgs(rest)
		os.Exit(cli.Run(cmd))
	case "kwok":
		os.Exit(runKwok(rest))
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "controlplane: unknown command %q\n\n%s", sub, usage)
		os.Exit(2)
	}
}
