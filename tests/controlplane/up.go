package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	_ "embed"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

//go:embed kwok-stages.yaml
var kwokStages []byte

type upOptions struct {
	dir         string
	port        int
	kwok        bool
	keepData    bool
	readyFile   string
	startupWait time.Duration
}

// child is one started component.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan error
}

func runUp(args []string) int {
	var o upOptions
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	fs.StringVar(&o.dir, "dir", ".state/controlplane", "state directory: pki/, etcd/, logs/, kubeconfig")
	fs.IntVar(&o.port, "port", 0, "kube-apiserver secure port on 127.0.0.1 (0 picks a free one)")
	fs.BoolVar(&o.kwok, "kwok", true, "run kwok with two fake nodes (zones local-a, local-b) whose pods become Running/Ready")
	fs.BoolVar(&o.keepData, "keep-data", false, "keep etcd data from the previous run instead of starting empty")
	fs.StringVar(&o.readyFile, "ready-file", "", "file to write once everything is ready (default <dir>/ready)")
	fs.DurationVar(&o.startupWait, "startup-timeout", 90*time.Second, "how long to wait for each component to become ready")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: controlplane up [flags]\n\nStarts etcd (embedded), kube-apiserver, kube-controller-manager and kube-scheduler on 127.0.0.1,\nwrites <dir>/kubeconfig and <dir>/ready, and runs until SIGINT or SIGTERM, then stops every child.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := up(o); err != nil {
		fmt.Fprintf(os.Stderr, "controlplane: %v\n", err)
		return 1
	}
	return 0
}

func up(o upOptions) error {
	start := time.Now()
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return err
	}
	if o.readyFile == "" {
		o.readyFile = filepath.Join(dir, "ready")
	}
	_ = os.Remove(o.readyFile)
	logDir := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	keys := pki{dir: filepath.Join(dir, "pki")}
	if err := keys.ensure(); err != nil {
		return fmt.Errorf("creating certificates in %s: %w", keys.dir, err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	// etcd, embedded in this process.
	etcdDir := filepath.Join(dir, "etcd")
	if !o.keepData {
		if err := os.RemoveAll(etcdDir); err != nil {
			return err
		}
	}
	etcdClient, etcdPeer := freePort(), freePort()
	cfg := embed.NewConfig()
	cfg.Dir = etcdDir
	cfg.Name = "emporium"
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{filepath.Join(logDir, "etcd.log")}
	cfg.ListenClientUrls = []url.URL{mustURL("http://127.0.0.1:" + strconv.Itoa(etcdClient))}
	cfg.AdvertiseClientUrls = cfg.ListenClientUrls
	cfg.ListenPeerUrls = []url.URL{mustURL("http://127.0.0.1:" + strconv.Itoa(etcdPeer))}
	cfg.AdvertisePeerUrls = cfg.ListenPeerUrls
	cfg.InitialCluster = "emporium=http://127.0.0.1:" + strconv.Itoa(etcdPeer)
	// Tests and benchmarks create and delete a lot; keep the database small and fsyncs cheap.
	cfg.AutoCompactionMode = "periodic"
	cfg.AutoCompactionRetention = "5m"
	cfg.UnsafeNoFsync = true
	etcd, err := embed.StartEtcd(cfg)
	if err != nil {
		return fmt.Errorf("starting etcd in %s (see %s): %w", etcdDir, filepath.Join(logDir, "etcd.log"), err)
	}
	defer etcd.Close()
	select {
	case <-etcd.Server.ReadyNotify():
	case <-time.After(o.startupWait):
		return fmt.Errorf("etcd did not become ready within %s", o.startupWait)
	case <-ctx.Done():
		return nil
	}

	port := o.port
	if port == 0 {
		port = freePort()
	}
	server := "https://127.0.0.1:" + strconv.Itoa(port)
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(kubeconfig, server, keys); err != nil {
		return err
	}

	var children []*child
	defer func() { stopChildren(children) }()
	startChild := func(name string, args ...string) (*child, error) {
		c, err := spawn(name, filepath.Join(logDir, name+".log"), args...)
		if err == nil {
			children = append(children, c)
		}
		return c, err
	}

	apiserver, err := startChild("kube-apiserver",
		"--etcd-servers=http://127.0.0.1:"+strconv.Itoa(etcdClient),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		// The endpoint reconciler refuses loopback addresses. When the real node runs,
		// scripts/node.sh gives the `kubernetes` Service an EndpointSlice at the node's address,
		// where it relays to this one.
		"--endpoint-reconciler-type=none",
		"--secure-port="+strconv.Itoa(port),
		"--cert-dir="+filepath.Join(dir, "apiserver-certs"),
		"--tls-cert-file="+keys.path("apiserver.crt"),
		"--tls-private-key-file="+keys.path("apiserver.key"),
		"--client-ca-file="+keys.path("ca.crt"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+keys.path("sa.pub"),
		"--service-account-signing-key-file="+keys.path("sa.key"),
		"--service-cluster-ip-range=10.96.0.0/16",
		// A real node (scripts/node.sh) is reached at its InternalIP for logs and exec; its
		// name does not resolve.
		"--kubelet-preferred-address-types=InternalIP,Hostname",
		"--authorization-mode=RBAC",
		// The aggregation layer, for metrics-server (metrics.k8s.io) on the real node: the API
		// server proxies as front-proxy-client, and dials an APIService's endpoint directly
		// (its address on the node's bridge) rather than its ClusterIP.
		"--requestheader-client-ca-file="+keys.path("front-proxy-ca.crt"),
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file="+keys.path("front-proxy-client.crt"),
		"--proxy-client-key-file="+keys.path("front-proxy-client.key"),
		"--enable-aggregator-routing=true",
		"--profiling=false",
		"--v=1",
	)
	if err != nil {
		return err
	}
	client, err := adminClient(keys)
	if err != nil {
		return err
	}
	if err := waitFor(ctx, o.startupWait, []*child{apiserver}, func() bool {
		return get(client, server+"/readyz") == http.StatusOK
	}); err != nil {
		return fmt.Errorf("kube-apiserver: %w (see %s)", err, filepath.Join(logDir, "kube-apiserver.log"))
	}

	controllerManager, err := startChild("kube-controller-manager",
		"--kubeconfig="+kubeconfig,
		"--authentication-kubeconfig="+kubeconfig,
		"--authorization-kubeconfig="+kubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port=0",
		"--leader-elect=false",
		"--controllers=*",
		"--service-account-private-key-file="+keys.path("sa.key"),
		"--root-ca-file="+keys.path("ca.crt"),
		"--cluster-signing-cert-file="+keys.path("ca.crt"),
		"--cluster-signing-key-file="+keys.path("ca.key"),
		"--use-service-account-credentials=false",
		"--concurrent-deployment-syncs=10",
		"--concurrent-replicaset-syncs=10",
		"--concurrent-gc-syncs=20",
		"--concurrent-namespace-syncs=10",
		"--kube-api-qps=200",
		"--kube-api-burst=400",
		"--v=1",
	)
	if err != nil {
		return err
	}
	scheduler, err := startChild("kube-scheduler",
		"--kubeconfig="+kubeconfig,
		"--authentication-kubeconfig="+kubeconfig,
		"--authorization-kubeconfig="+kubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port=0",
		"--leader-elect=false",
		"--v=1",
	)
	if err != nil {
		return err
	}
	// The service-account controller creating "default" in "default" shows the controller
	// manager is running; pods cannot be admitted before it exists.
	if err := waitFor(ctx, o.startupWait, []*child{apiserver, controllerManager, scheduler}, func() bool {
		return get(client, server+"/api/v1/namespaces/default/serviceaccounts/default") == http.StatusOK
	}); err != nil {
		return fmt.Errorf("kube-controller-manager: %w (see %s)", err, filepath.Join(logDir, "kube-controller-manager.log"))
	}

	watched := []*child{apiserver, controllerManager, scheduler}
	kwokState := "off (--kwok=false)"
	if o.kwok {
		stages := filepath.Join(dir, "kwok-stages.yaml")
		if err := os.WriteFile(stages, kwokStages, 0o644); err != nil {
			return err
		}
		kwok, err := startChild("kwok",
			"--config="+stages,
			"--kubeconfig="+kubeconfig,
			"--manage-all-nodes=false",
			"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
			"--manage-nodes-with-label-selector=",
			"--cidr=10.244.0.1/16",
			"--node-ip=10.244.0.1",
			"--server-address=127.0.0.1:"+strconv.Itoa(freePort()),
		)
		if err != nil {
			return err
		}
		watched = append(watched, kwok)
		for i, zone := range []string{"local-a", "local-b"} {
			if err := createFakeNode(client, server, fmt.Sprintf("kwok-node-%d", i), zone); err != nil {
				return err
			}
		}
		kwokState = "running, fake nodes kwok-node-0 (zone local-a) and kwok-node-1 (zone local-b)"
	}

	ready := fmt.Sprintf("KUBECONFIG=%s\nKUBE_SERVER=%s\nKWOK=%t\n", kubeconfig, server, o.kwok)
	if err := os.WriteFile(o.readyFile, []byte(ready), 0o644); err != nil {
		return err
	}
	fmt.Printf("control plane ready in %.1fs: %s\n  kubeconfig: %s\n  logs:       %s\n  kwok:       %s\n",
		time.Since(start).Seconds(), server, kubeconfig, logDir, kwokState)

	// Run until a signal arrives or any component dies (then the whole plane is unusable).
	exited := make(chan string, len(watched))
	for _, c := range watched {
		go func(c *child) {
			err := <-c.done
			c.done <- err // let stopChildren see it too
			exited <- fmt.Sprintf("%s exited: %v", c.name, err)
		}(c)
	}
	select {
	case <-ctx.Done():
		fmt.Println("control plane stopping")
		return nil
	case msg := <-exited:
		return fmt.Errorf("%s (see %s)", msg, logDir)
	}
}

func spawn(name, logPath string, args ...string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return spawnBinary(name, self, logPath, append([]string{name}, args...)...)
}

func spawnBinary(name, binary, logPath string, args ...string) (*child, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// If this supervisor is killed outright, the kernel kills its children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan error, 1)}
	go func() {
		c.done <- cmd.Wait()
		logFile.Close()
	}()
	return c, nil
}

// stopChildren stops in reverse start order: SIGTERM, then SIGKILL after a grace period.
func stopChildren(children []*child) {
	for i := len(children) - 1; i >= 0; i-- {
		c := children[i]
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	}
}

func waitFor(ctx context.Context, timeout time.Duration, watch []*child, ok func() bool) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if ok() {
			return nil
		}
		for _, c := range watch {
			select {
			case err := <-c.done:
				c.done <- err
				return fmt.Errorf("%s exited during start-up: %v", c.name, err)
			default:
			}
		}
		select {
		case <-ctx.Done():
			return errors.New("interrupted")
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("not ready within %s", timeout)
}

func adminClient(keys pki) (*http.Client, error) {
	cert, err := tls.LoadX509KeyPair(keys.path("admin.crt"), keys.path("admin.key"))
	if err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(keys.path("ca.crt"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}},
	}, nil
}

func get(client *http.Client, u string) int {
	resp, err := client.Get(u)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func createFakeNode(client *http.Client, server, name, zone string) error {
	node := fmt.Sprintf(`{"apiVersion":"v1","kind":"Node","metadata":{"name":%q,
	"annotations":{"node.alpha.kubernetes.io/ttl":"0","kwok.x-k8s.io/node":"fake"},
	"labels":{"kubernetes.io/hostname":%q,"kubernetes.io/os":"linux","kubernetes.io/arch":"amd64","type":"kwok","topology.kubernetes.io/zone":%q}},
	"spec":{},
	"status":{"allocatable":{"cpu":"64","memory":"256Gi","pods":"1000"},"capacity":{"cpu":"64","memory":"256Gi","pods":"1000"}}}`, name, name, zone)
	resp, err := client.Post(server+"/api/v1/nodes", "application/json", strings.NewReader(node))
	if err != nil {
		return fmt.Errorf("creating fake node: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusConflict {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("creating fake node: %s: %s", resp.Status, body)
	}
	return nil
}

func writeKubeconfig(path, server string, keys pki) error {
	read := func(name string) (string, error) {
		b, err := os.ReadFile(keys.path(name))
		return base64.StdEncoding.EncodeToString(b), err
	}
	ca, err := read("ca.crt")
	if err != nil {
		return err
	}
	crt, err := read("admin.crt")
	if err != nil {
		return err
	}
	key, err := read("admin.key")
	if err != nil {
		return err
	}
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: emporium-local
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: emporium-admin
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: emporium-local
  context:
    cluster: emporium-local
    user: emporium-admin
current-context: emporium-local
`, server, ca, crt, key)
	return os.WriteFile(path, []byte(cfg), 0o600)
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("no free port on 127.0.0.1: %v", err))
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func mustURL(s string) url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return *u
}
