package server

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/digest"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
)

// DigestConfig is the integrity part of `archiver serve`: --digest-key and --object-lock.
type DigestConfig struct {
	Key        string             // PEM PKCS#8 Ed25519 private key file; "" => no digests
	ArchiveID  string             // --archive-id; "" => the store's identity (storage.Identity)
	ObjectLock *storage.Retention // nil => no retention
	// Interval between digests (not a flag; 0 => hourly, tests shorten it).
	Interval time.Duration
}

func addDigestFlags(fs *flag.FlagSet, c *DigestConfig) {
	fs.StringVar(&c.Key, "digest-key", "", "Ed25519 private key (PEM PKCS#8, openssl genpkey -algorithm ed25519) to sign hourly digests of every stored object, for archiver verify")
	fs.StringVar(&c.ArchiveID, "archive-id", "", "name of the archive the digests are signed for (default: the store, s3://BUCKET/PREFIX or file:///DIR); give every replica, archiver compact and archiver verify the same value when the archive may move")
	fs.Func("object-lock", "MODE:DAYS (GOVERNANCE or COMPLIANCE): set S3 Object Lock retention on every object and digest; the bucket must have Object Lock enabled", func(v string) error {
		r, err := storage.ParseRetention(v)
		if err != nil {
			return err
		}
		c.ObjectLock = &r
		return nil
	})
}

// digestState is the running digest writer (nil fields when not configured).
type digestState struct {
	writer *digest.Writer
	key    ed25519.PrivateKey
	retain digest.RetainFunc
	store  storage.Store
	// journal is the spool-mode instance's local record of what it wrote (nil in store mode).
	journal *digest.Journal
}

// recordingStore is the store with Put going through the digest Recorder (or Retainer).
type recordingStore struct {
	storage.Store
	rec *digest.Recorder
}

func (r recordingStore) Put(ctx context.Context, key string, body []byte, contentType string) error {
	return r.rec.Put(ctx, key, body, contentType)
}

// openDigests loads the digest key and checks Object Lock, and returns the store every writer
// must use: store itself when neither is configured, else store wrapped in the Recorder.
func (s *Server) openDigests(ctx context.Context, store storage.Store) (storage.Store, error) {
	c := s.cfg.Digest
	s.digests = &digestState{}
	if c.Key == "" {
		s.log.Warn("no --digest-key: the archive will not be verifiable (archiver verify needs signed digests); create a key with: openssl genpkey -algorithm ed25519 -out digest-key.pem")
	}
	var retain digest.RetainFunc
	if c.ObjectLock != nil {
		lk, ok := store.(storage.Locker)
		if !ok {
			return nil, fmt.Errorf("--object-lock: %s: %w", store, storage.ErrLockUnsupported)
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := lk.CheckObjectLock(cctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("--object-lock: %w", err)
		}
		r := *c.ObjectLock
		retain = func(ctx context.Context, key string) error { return lk.Retain(ctx, key, r, s.cfg.Now()) }
		s.log.Info("Object Lock retention on every object and digest", "mode", r.Mode, "days", r.Days)
	}
	if c.Key == "" && retain == nil {
		return store, nil
	}
	if c.Key == "" {
		return recordingStore{Store: store, rec: digest.NewRetainer(store, retain)}, nil
	}
	key, err := digest.LoadPrivateKey(c.Key)
	if err != nil {
		return nil, err
	}
	rec := digest.NewRecorder(store, retain, s.log)
	s.digests.writer = &digest.Writer{Recorder: rec, Interval: c.Interval, Now: s.cfg.Now, Logger: s.log, OnFlush: s.countDigest}
	s.digests.key = key
	s.digests.retain = retain
	s.digests.store = store
	return recordingStore{Store: store, rec: rec}, nil
}

// countDigest counts a digest's outcome as the Writer reports it: written only once it is stored
// with its retention and journal entry, failed otherwise.
func (s *Server) countDigest(err error) {
	if err != nil {
		s.metrics.DigestFailures.Inc()
		return
	}
	s.metrics.DigestsWritten.Inc()
	s.metrics.LastDigest.SetToCurrentTime()
}

// startDigests continues the digest chain named chain and starts the hourly writer. chain is the
// instance part of this process's object keys: unique to the process in store mode, the spool's in
// spool mode, so no two running processes ever write one chain.
func (s *Server) startDigests(ctx context.Context, chain string) error {
	d := s.digests
	if d == nil || d.writer == nil {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	c, err := digest.OpenChain(cctx, d.store, d.key, chain, s.cfg.Now(), time.Time{}, d.retain)
	if err != nil {
		return fmt.Errorf("--digest-key: %w", err)
	}
	c.SetArchive(s.cfg.Digest.ArchiveID)
	c.Witness()
	if s.spool != nil {
		// Spool mode continues one chain across restarts: the journal next to the spool says what
		// this instance wrote itself, so a restart never signs what it finds in the bucket.
		j, err := digest.OpenJournal(filepath.Join(s.cfg.Spool, digest.JournalFile))
		if err != nil {
			return fmt.Errorf("--digest-key: %w", err)
		}
		d.journal = j
		d.writer.Recorder.UseJournal(j)
		if err := c.UseJournal(cctx, j); errors.Is(err, digest.ErrHeadGone) {
			s.log.Error("the digest chain of this instance is broken: someone deleted or changed its last digest in the store", "chain", chain, "error", err)
		} else if err != nil {
			return fmt.Errorf("--digest-key: %w", err)
		}
	}
	d.writer.Chain = c
	if err := d.writer.Recover(cctx); err != nil {
		return fmt.Errorf("--digest-key: %w", err)
	}
	continues := c.Previous() != nil
	// A chain that begins (store mode: at every start; spool mode: a spool's first chain)
	// witnesses the other chains at once in a start digest, before callbacks are taken: in store
	// mode it is the only witness of the previous process's chain. A spool-mode restart continues
	// its chain (through the journal), and StartNewChain is then Start.
	d.writer.StartNewChain(cctx)
	s.log.Info("writing signed digests", "chain", chain, "key_id", digest.KeyID(d.key.Public().(ed25519.PublicKey)), "continues", continues)
	return nil
}

// closeDigests writes the shutdown digest (after the last object was stored).
func (s *Server) closeDigests(ctx context.Context) error {
	d := s.digests
	if d == nil || d.writer == nil || d.writer.Chain == nil {
		return nil
	}
	err := d.writer.Close(ctx)
	if d.journal != nil {
		_ = d.journal.Close()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w (the objects since the last digest will show as unlisted in archiver verify)", err)
	}
	return err
}
