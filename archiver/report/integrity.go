package report

import (
	"context"
	"crypto/ed25519"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/verify"
)

// DayCheck is `archiver verify`'s answer for one partition day.
type DayCheck struct {
	Day      string
	Summary  verify.Summary
	Problems []verify.Problem // the first MaxProblems
	Err      string           // the check could not run
}

// MaxProblems bounds the problems listed per day (the count is always whole).
const MaxProblems = 50

// checkDays verifies each day of from..to on its own, so the report can say which days are
// proven. It is the report's one use of the verify package (whose API is the contract).
func checkDays(ctx context.Context, store verify.Store, from, to time.Time, pub ed25519.PublicKey) []DayCheck {
	var out []DayCheck
	for t := from; t.Before(to); t = t.AddDate(0, 0, 1) {
		day := t.Format(layout.DayLayout)
		probs, sum, err := verify.Verify(ctx, store, verify.Options{From: day, To: day, PublicKey: pub})
		c := DayCheck{Day: day, Summary: sum, Problems: probs[:min(len(probs), MaxProblems)]}
		if err != nil {
			c.Err = err.Error()
		}
		out = append(out, c)
	}
	return out
}
