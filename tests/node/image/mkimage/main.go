// Command mkimage builds a single-layer OCI image from static binaries without a Docker engine
// (github.com/google/go-containerregistry) and writes it as an image tarball that
// `ctr -n k8s.io images import` reads.
//
//	mkimage -o hello.tar -name localhost/emporium/hello:local -user 65532:65532 \
//	  -entrypoint /hello -port 8080 -file /hello=./hello-binary
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	var files, envs, ports multi
	out := flag.String("o", "", "output image tarball")
	ref := flag.String("name", "", "image name, e.g. localhost/emporium/hello:local")
	user := flag.String("user", "65532:65532", "user the image runs as")
	entrypoint := flag.String("entrypoint", "", "entrypoint (space-separated)")
	flag.Var(&files, "file", "IMAGE_PATH=HOST_PATH, a file to put in the layer (mode 0555, owner root); repeatable")
	flag.Var(&envs, "env", "KEY=VALUE; repeatable")
	flag.Var(&ports, "port", "exposed TCP port; repeatable")
	flag.Parse()
	if *out == "" || *ref == "" || len(files) == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := build(*out, *ref, *user, *entrypoint, files, envs, ports); err != nil {
		fmt.Fprintf(os.Stderr, "mkimage: %v\n", err)
		os.Exit(1)
	}
}

func build(out, ref, user, entrypoint string, files, envs, ports []string) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	// A fixed timestamp makes the image reproducible: the same binaries give the same digest.
	epoch := time.Unix(0, 0).UTC()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, f := range files {
		imagePath, hostPath, ok := strings.Cut(f, "=")
		if !ok {
			return fmt.Errorf("-file %q: want IMAGE_PATH=HOST_PATH", f)
		}
		imagePath = strings.TrimPrefix(imagePath, "/")
		// Parent directories first.
		parts := strings.Split(imagePath, "/")
		for i := 1; i < len(parts); i++ {
			d := strings.Join(parts[:i], "/") + "/"
			if !dirs[d] {
				dirs[d] = true
				if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: epoch}); err != nil {
					return err
				}
			}
		}
		data, err := os.ReadFile(hostPath)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: imagePath, Mode: 0o555, Size: int64(len(data)), ModTime: epoch}); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	layerBytes := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	})
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = runtime.GOARCH
	cf.Created = v1.Time{Time: epoch}
	cf.Config.User = user
	// PATH=/ unless the caller names its own PATH (images that mirror a Dockerfile's base).
	cf.Config.Env = envs
	if !hasKey(envs, "PATH") {
		cf.Config.Env = append([]string{"PATH=/"}, envs...)
	}
	if entrypoint != "" {
		cf.Config.Entrypoint = strings.Fields(entrypoint)
	}
	if len(ports) > 0 {
		cf.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range ports {
			cf.Config.ExposedPorts[p+"/tcp"] = struct{}{}
		}
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(out, tag, img)
}

func hasKey(envs []string, key string) bool {
	for _, e := range envs {
		if k, _, _ := strings.Cut(e, "="); k == key {
			return true
		}
	}
	return false
}
