package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

// runForward relays TCP connections from each LISTEN address to its TARGET: the stack's
// services listen on 127.0.0.1 only, and pods reach them at the node's bridge address
// (10.245.0.1), which exists only while the node runs. Nothing listens on any other interface.
//
//	kubenode forward 10.245.0.1:5432=127.0.0.1:5432 [LISTEN=TARGET...]
func runForward(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "kubenode forward: want LISTEN=TARGET pairs, e.g. 10.245.0.1:5432=127.0.0.1:5432")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var listeners []net.Listener
	for _, pair := range args {
		listen, target, ok := strings.Cut(pair, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "kubenode forward: %q is not LISTEN=TARGET\n", pair)
			return 2
		}
		l, err := net.Listen("tcp", listen)
		if err != nil {
			fmt.Fprintf(os.Stderr, "kubenode forward: cannot listen on %s: %v\n", listen, err)
			return 1
		}
		listeners = append(listeners, l)
		go accept(l, target)
		fmt.Fprintf(os.Stderr, "kubenode forward: %s -> %s\n", listen, target)
	}
	<-ctx.Done()
	for _, l := range listeners {
		_ = l.Close()
	}
	return 0
}

func accept(l net.Listener, target string) {
	for {
		conn, err := l.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return // closed
		}
		go relay(conn.(*net.TCPConn), target)
	}
}

func relay(client *net.TCPConn, target string) {
	defer client.Close()
	upstream, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubenode forward: %s -> %s: %v\n", client.RemoteAddr(), target, err)
		return
	}
	server := upstream.(*net.TCPConn)
	defer server.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	pipe := func(dst, src *net.TCPConn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		_ = dst.CloseWrite() // pass the half-close on: the other direction may still flow
	}
	go pipe(server, client)
	go pipe(client, server)
	wg.Wait()
}
