// Command testapp is the small workload the dev cluster's own tests run:
// one static binary with the few things a test pod needs to do.
//
//	testapp serve [--addr :8080]       HTTP server; answers with its pod name
//	testapp get URL...                 GET each URL, fail unless 200
//	testapp lookup NAME...             resolve each name, print the addresses
//	testapp touch FILE                 create FILE (an init container's proof)
//	testapp wait-file FILE             fail unless FILE exists
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: testapp serve|get|lookup|touch|wait-file ...")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "serve":
		err = serve(ctx, args)
	case "get":
		err = get(ctx, args)
	case "lookup":
		err = lookup(ctx, args)
	case "touch":
		err = touch(args)
	case "wait-file":
		err = waitFile(args)
	default:
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "testapp:", err)
		os.Exit(1)
	}
}

func serve(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fs.String("addr", ":8080", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, _ := os.Hostname()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s\n", host)
	})
	mux.HandleFunc("/ready", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	srv := &http.Server{
		Addr:              *addr,
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutdown)
	}
}

func get(ctx context.Context, urls []string) error {
	client := &http.Client{Timeout: 10 * time.Second}
	for _, u := range urls {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", u, resp.Status)
		}
		fmt.Printf("GET %s: %s %s", u, resp.Status, body)
	}
	return nil
}

func lookup(ctx context.Context, names []string) error {
	for _, n := range names {
		addrs, err := net.DefaultResolver.LookupHost(ctx, n)
		if err != nil {
			return err
		}
		fmt.Printf("%s %v\n", n, addrs)
	}
	return nil
}

func touch(args []string) error {
	if len(args) != 1 {
		return errors.New("touch FILE")
	}
	return os.WriteFile(args[0], []byte(time.Now().UTC().Format(time.RFC3339Nano)+"\n"), 0o644)
}

func waitFile(args []string) error {
	if len(args) != 1 {
		return errors.New("wait-file FILE")
	}
	_, err := os.Stat(args[0])
	return err
}
