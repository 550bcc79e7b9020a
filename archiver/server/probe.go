package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
)

// errStoreOverwrites is the refusal when the store accepted a second conditional create.
var errStoreOverwrites = errors.New("the store accepted a second conditional create (PUT with If-None-Match: *) of the same name and replaced the object: " +
	"it would let a retried or conflicting upload overwrite archive objects, which the archive relies on never happening; " +
	"use a store that answers 412 Precondition Failed to such a PUT (AWS S3, MinIO, VersityGW), " +
	"check that no proxy in front of it drops the If-None-Match header, " +
	"or pass --store-probe=false to start anyway")

// probeStore checks, before anything is written, that the store refuses to overwrite: it creates
// a probe object under layout.ProbePrefix, then creates the same name with other bytes, which must
// fail with storage.ErrExists. A store that cannot be reached is not a reason to refuse (the spool
// buffers an outage; /readyz reports it), so only a proven overwrite stops the start.
func (s *Server) probeStore(ctx context.Context) error {
	if !s.cfg.StoreProbe {
		s.log.Warn("--store-probe=false: not checking that the store refuses to overwrite objects")
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	nonce := make([]byte, 12)
	_, _ = rand.Read(nonce)
	key := layout.ProbeKey(hex.EncodeToString(nonce))
	err := probeOverwrite(ctx, s.store, key)
	if d, ok := s.store.(storage.Deleter); ok {
		if derr := d.Delete(ctx, key); derr != nil && !errors.Is(derr, storage.ErrNotExist) {
			s.log.Debug("could not delete the store probe object (a retention policy?); it is harmless", "key", key, "error", derr)
		}
	}
	var unsure *probeUnsure
	switch {
	case err == nil:
		s.log.Info("store refuses to overwrite objects (conditional-create probe passed)", "store", s.store.String())
		return nil
	case errors.As(err, &unsure):
		s.log.Warn("could not check that the store refuses to overwrite objects; starting anyway (the check runs again at the next start)", "store", s.store.String(), "error", unsure.err)
		return nil
	default:
		return fmt.Errorf("store probe (%s, object %s): %w", s.store, key, err)
	}
}

// probeUnsure wraps a failure that says nothing about overwrites (store unreachable, denied).
type probeUnsure struct{ err error }

func (p *probeUnsure) Error() string { return p.err.Error() }

// probeOverwrite creates key twice with different bytes: nil when the second create was refused,
// errStoreOverwrites when it was not, *probeUnsure when the store could not be asked.
func probeOverwrite(ctx context.Context, st storage.Putter, key string) error {
	const ct = "application/json"
	if err := st.Put(ctx, key, []byte(`{"probe":"first"}`+"\n"), ct); err != nil {
		return &probeUnsure{err}
	}
	err := st.Put(ctx, key, []byte(`{"probe":"second"}`+"\n"), ct)
	switch {
	case errors.Is(err, storage.ErrExists):
		return nil
	case err == nil:
		return errStoreOverwrites
	default:
		return &probeUnsure{err}
	}
}
