package server

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/relay"
)

// addForwardFlags registers --forward and --forward-config (the relay).
func addForwardFlags(fs *flag.FlagSet, c *Config) {
	fs.Func("forward", "pass every archived callback on to this receiver, NAME=URL (repeatable; NAME: a-z, 0-9, -); needs --ack spool. Options per destination: --forward-config", func(v string) error {
		c.Forward = append(c.Forward, v)
		return nil
	})
	fs.StringVar(&c.ForwardConfig, "forward-config", "", "YAML file of destinations (name, url, domains, events, timeout, max_age, headers, ca_file, resign); re-read on SIGHUP")
	fs.Func("forward-purge", "drop the kept queue of a removed destination NAME at start (repeatable): its undelivered events are not forwarded (they stay in the archive for archiver replay)", func(v string) error {
		c.ForwardPurge = append(c.ForwardPurge, v)
		return nil
	})
}

// forwarding reports whether the relay is configured.
func (c *Config) forwarding() bool { return len(c.Forward) > 0 || c.ForwardConfig != "" }

// Destinations reads --forward and --forward-config.
func (c *Config) Destinations() ([]relay.Destination, error) {
	var flags []relay.Destination
	for _, v := range c.Forward {
		d, err := relay.ParseForward(v)
		if err != nil {
			return nil, err
		}
		flags = append(flags, d)
	}
	var file []relay.Destination
	if c.ForwardConfig != "" {
		var err error
		if file, err = relay.LoadConfig(c.ForwardConfig); err != nil {
			return nil, err
		}
	}
	return relay.Merge(flags, file)
}

func (c *Config) validateForward() error {
	for _, name := range c.ForwardPurge {
		if !relay.ValidName(name) {
			return fmt.Errorf("--forward-purge %q: not a destination name (a-z, 0-9, -)", name)
		}
	}
	if !c.forwarding() {
		return nil
	}
	if c.Ack == AckStore {
		return errors.New("--forward needs the spool: --ack store keeps no local record to forward from; use --ack spool (the default) with --spool DIR, or drop --forward/--forward-config")
	}
	dests, err := c.Destinations()
	if err != nil {
		return err
	}
	for _, d := range dests {
		if slices.Contains(c.ForwardPurge, d.Name) {
			return fmt.Errorf("--forward-purge %s: %s is a configured destination; remove it from --forward/--forward-config first", d.Name, d.Name)
		}
	}
	return nil
}

// relayDir is where the relay keeps its queues (cursors, dead letters) inside a spool directory.
func relayDir(spool string) string { return filepath.Join(spool, "relay") }

// startRelay builds the relay on the open spool (before uploads start, so no segment a
// destination still needs is deleted).
func (s *Server) startRelay() error {
	dir := relayDir(s.cfg.Spool)
	if s.spool == nil || !s.cfg.forwarding() && !keptQueues(dir) {
		return nil
	}
	dests, err := s.cfg.Destinations()
	if err != nil {
		return err
	}
	r, err := relay.New(relay.Options{
		Spool: s.spool, Dir: dir, Store: s.store, Registry: s.metrics.Registry, Purge: s.cfg.ForwardPurge,
		Logger: s.log, Instance: s.instance, Backoff: s.cfg.ForwardBackoff, LagDegraded: s.cfg.ForwardLagDegraded,
		Now: s.cfg.Now,
		Key: func(domain string) (string, bool) {
			keys, ok := s.keys.Lookup(domain)
			if !ok || len(keys) == 0 {
				return "", false
			}
			return keys[0], true // the current key: the first of a rotation's list
		},
	}, dests)
	if err != nil {
		return fmt.Errorf("starting the relay: %w", err)
	}
	s.spool.SetRetainer(r)
	s.relay = r
	r.Start()
	names := make([]string, len(dests))
	for i, d := range dests {
		names[i] = d.Name
	}
	s.log.Info("forwarding callbacks", "destinations", names)
	return nil
}

// relaySettle bounds how long a shutdown waits for the destinations to take the last events.
const relaySettle = 2 * time.Second

// settleRelay seals the spool's last segment and gives the destinations a moment to pass it, so
// a healthy destination gets the events of the last moments and no uploaded segment has to be
// kept for the next start (a lagging destination's are kept, and forwarded then).
func (s *Server) settleRelay(ctx context.Context) {
	if err := s.spool.Close(ctx); err != nil {
		return // the backend's shutdown reports it
	}
	ctx, cancel := context.WithTimeout(ctx, relaySettle)
	defer cancel()
	if !s.relay.Settle(ctx) {
		s.log.Info("shutting down with events not yet forwarded; they are forwarded after the next start", "lagging", s.relay.Lagging())
	}
}

// keptQueues reports whether removed destinations' queues are kept under dir: the relay then
// runs (holding their segments) even with no destination configured.
func keptQueues(dir string) bool {
	des, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, de := range des {
		if de.IsDir() {
			return true
		}
	}
	return false
}

// ReloadForward re-reads --forward-config (SIGHUP); on error the destinations stay as they were.
func (s *Server) ReloadForward() error {
	if s.relay == nil {
		return nil
	}
	dests, err := s.cfg.Destinations()
	if err == nil {
		err = s.relay.Reload(dests)
	}
	if err != nil {
		s.metrics.ReloadFailures.With("forward").Inc()
		s.log.Error("reloading the forward destinations failed; keeping the previous ones", "error", err)
		return err
	}
	s.log.Info("reloaded the forward destinations", "destinations", len(dests))
	return nil
}

// relayDegraded is /readyz's note about lagging destinations ("" when none).
func (s *Server) relayDegraded() string {
	if s.relay == nil {
		return ""
	}
	if l := s.relay.Lagging(); len(l) > 0 {
		return "forwarding lags: " + strings.Join(l, ", ")
	}
	return ""
}
