package report

import (
	"context"
	"crypto/ed25519"

	"github.com/livehook/terraform-provider-livehook/archiver/verify"
)

// Integrity is `archiver verify`'s answer for the report's range.
type Integrity struct {
	Summary verify.Summary
	Days    []DayCheck       // the range's days, then the neighbour days sessions read too
	Other   []verify.Problem // problems of no one day (chains, coverage), the first MaxProblems
	Err     string           // the check could not run (the page says so)
}

// DayCheck is one partition day's result.
type DayCheck struct {
	Day      string
	InRange  bool // false: a day beyond the range, read for the partners of its sessions
	Objects  int
	Events   int
	Count    int              // problems of the day
	Problems []verify.Problem // the first MaxProblems of them
}

// MaxProblems bounds the problems listed per day (the count is always whole).
const MaxProblems = 50

// checkRange runs archiver verify's check over the range, with the neighbour days archiver
// sessions reads (Margin 1), as `archiver verify` does. It is the report's one use of the
// verify package.
func checkRange(ctx context.Context, store verify.Store, from, to string, pub ed25519.PublicKey, archiveID string) *Integrity {
	r, err := verify.Check(ctx, store, verify.Options{From: from, To: to, PublicKey: pub, ArchiveID: archiveID, Margin: 1})
	if err != nil {
		return &Integrity{Err: err.Error()}
	}
	in := &Integrity{Summary: r.Summary}
	for _, d := range r.Days {
		in.Days = append(in.Days, DayCheck{Day: d.Day, InRange: d.InRange, Objects: d.Objects, Events: d.Events,
			Count: len(d.Problems), Problems: d.Problems[:min(len(d.Problems), MaxProblems)]})
	}
	for _, p := range r.Problems {
		if p.Day == "" && len(in.Other) < MaxProblems {
			in.Other = append(in.Other, p)
		}
	}
	return in
}

// Verified reports whether the whole range verified.
func (in *Integrity) Verified() bool { return in.Err == "" && in.Summary.Problems == 0 }

// Proven counts the range's days without a problem, and the range's days.
func (in *Integrity) Proven() (proven, days int) {
	for _, d := range in.Days {
		if d.InRange {
			days++
			if d.Count == 0 && in.Err == "" {
				proven++
			}
		}
	}
	return proven, days
}
