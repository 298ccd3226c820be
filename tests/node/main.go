// Command kubenode is the real node of Emporium's local cluster: the upstream kubelet and
// kube-proxy from k8s.io/kubernetes (the same version as tests/controlplane), in one binary so
// the two share one link step and one cache entry. scripts/node.sh runs it.
//
//	kubenode kubelet [flags]      the upstream kubelet
//	kubenode kube-proxy [flags]   the upstream kube-proxy
//	kubenode forward LISTEN=TARGET...   TCP relays from the node's address to the stack's
package main

import (
	"context"
	"fmt"
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

const usage = `kubenode: the real node of Emporium's local cluster.

Usage:
  kubenode kubelet [flags]      the upstream kubelet
  kubenode kube-proxy [flags]   the upstream kube-proxy
  kubenode forward LISTEN=TARGET...
                                TCP relays, e.g. 10.245.0.1:5432=127.0.0.1:5432 (pods reach
                                the stack's loopback services at the node's address)
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	sub, rest := os.Args[1], os.Args[2:]
	switch sub {
	case "kubelet":
		cmd := kubelet.NewKubeletCommand(context.Background())
		cmd.SetArgs(rest)
		os.Exit(cli.Run(cmd))
	case "kube-proxy":
		cmd := proxy.NewProxyCommand()
		cmd.SetArgs(rest)
		os.Exit(cli.Run(cmd))
	case "forward":
		os.Exit(runForward(rest))
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "kubenode: unknown command %q\n\n%s", sub, usage)
		os.Exit(2)
	}
}
