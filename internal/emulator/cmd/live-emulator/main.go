// Command live-emulator runs the Huawei Cloud Live stand-in (package emulator) on a local
// address, for the demo, manual testing and scripts. It prints "listening on http://ADDR"
// on stdout once it accepts connections, and stops cleanly on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/livehook/terraform-provider-livehook/internal/emulator"
)

// version is stamped at build time from the release tag (GoReleaser): -X main.version=1.2.3.
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// domainList is a repeatable flag; each value may also be a comma-separated list.
type domainList []string

func (d *domainList) String() string { return strings.Join(*d, ",") }
func (d *domainList) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*d = append(*d, p)
		}
	}
	return nil
}

func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("live-emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		domains   domainList
		listen    = fs.String("listen", "127.0.0.1:8790", "address to listen on (port 0 picks a free one)")
		projectID = fs.String("project-id", "", "project ID served under /v1/{project_id}/ (env HW_PROJECT_ID)")
		accessKey = fs.String("access-key", "", "access key requests must be signed with (env HW_ACCESS_KEY)")
		secretKey = fs.String("secret-key", "", "secret key of the access key (env HW_SECRET_KEY; prefer the env: flags show in ps)")
		statePath = fs.String("state", "", "JSON file keeping configs and domains across restarts (written 0600: holds auth_sign_key values)")
		rateLimit = fs.Int("rate-limit", 0, "management API requests per minute; 0 = unlimited")
		failRate  = fs.Float64("fail-rate", 0, "fraction (0..1) of management requests answered 500 LIVE.100011000")
		latency   = fs.Duration("latency", 0, "delay added to every management answer")
		usrArgs   = fs.Bool("usr-args", false, `spell the callback field "usr_args" (as the seed document) instead of "user_args"`)
		retries   = fs.Int("callback-retries", emulator.DefaultCallbackRetries, "retries of a failed callback (0 = none)")
		cbTimeout = fs.Duration("callback-timeout", emulator.DefaultCallbackTimeout, "timeout of one callback attempt")
		cbBackoff = fs.Duration("callback-backoff", emulator.DefaultCallbackBackoff, "first pause between callback attempts (doubles)")
		logLevel  = fs.String("log-level", "info", "debug, info, warn or error")
		logFormat = fs.String("log-format", "text", "text or json")
		showVer   = fs.Bool("version", false, "print the version and exit")
	)
	fs.Var(&domains, "domain", "push domain that exists (repeatable, or comma-separated)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *showVer {
		fmt.Fprintln(stdout, "live-emulator", version)
		return 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "live-emulator: unexpected arguments %q\n", fs.Args())
		return 2
	}
	envOr := func(v *string, env string) {
		if *v == "" {
			*v = getenv(env)
		}
	}
	envOr(projectID, "HW_PROJECT_ID")
	envOr(accessKey, "HW_ACCESS_KEY")
	envOr(secretKey, "HW_SECRET_KEY")

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "live-emulator: --log-level %q: use debug, info, warn or error\n", *logLevel)
		return 2
	}
	opts := &slog.HandlerOptions{Level: level}
	var logger *slog.Logger
	switch *logFormat {
	case "text":
		logger = slog.New(slog.NewTextHandler(stderr, opts))
	case "json":
		logger = slog.New(slog.NewJSONHandler(stderr, opts))
	default:
		fmt.Fprintf(stderr, "live-emulator: --log-format %q: use text or json\n", *logFormat)
		return 2
	}

	if *retries == 0 {
		*retries = -1 // the package reads 0 as "default"; on the command line 0 means none
	}
	srv, err := emulator.New(emulator.Config{
		ProjectID: *projectID, AccessKey: *accessKey, SecretKey: *secretKey,
		Domains: domains, StatePath: *statePath,
		RateLimit: *rateLimit, FailRate: *failRate, Latency: *latency,
		UsrArgs: *usrArgs, CallbackRetries: *retries, CallbackTimeout: *cbTimeout, CallbackBackoff: *cbBackoff,
		Logger: logger,
	})
	if err != nil {
		fmt.Fprintf(stderr, "live-emulator: %v (set --project-id/--access-key/--secret-key or HW_PROJECT_ID/HW_ACCESS_KEY/HW_SECRET_KEY)\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	base, err := srv.Start(*listen)
	if err != nil {
		fmt.Fprintf(stderr, "live-emulator: %v\n", err)
		return 1
	}
	logger.Info("listening on "+base, "project_id", *projectID, "access_key", *accessKey,
		"domains", srv.Domains(), "state", *statePath)
	fmt.Fprintf(stdout, "listening on %s\n", base)

	<-ctx.Done()
	stop()
	logger.Info("shutting down")
	done := make(chan error, 1)
	go func() { done <- srv.Close() }()
	select {
	case err := <-done:
		if err != nil {
			logger.Error("shutdown", "err", err)
			return 1
		}
	case <-time.After(10 * time.Second):
		logger.Error("shutdown took longer than 10s")
		return 1
	}
	return 0
}
