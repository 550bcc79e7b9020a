package sessions

import (
	"context"

	"github.com/livehook/terraform-provider-livehook/archiver/readback"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
)

// Progress is where a read is, for progress reports.
type Progress struct {
	Day      string // partition day being read
	DayIndex int    // 0-based index of Day in Query.Days
	Days     int    // how many days the read covers
	Records  int64  // records read so far
}

// ReadOptions tune Read.
type ReadOptions struct {
	Options
	// Progress, when set, is called when a day starts and every ProgressEvery records.
	Progress func(Progress)
	// Unusable, when set, is called for each record of the range that cannot be paired.
	Unusable func(day string, e readback.Event)
}

// ProgressEvery is how many records pass between two Progress calls within a day.
const ProgressEvery = 1 << 16

// Read reads the partition days of q from s (readback.Read, one day at a time, in order) and
// calls fn for each listed session, in order (see Pairer.Finish).
func Read(ctx context.Context, s storage.Store, q Query, opt ReadOptions, fn func(Session) error) (Stats, error) {
	days, err := q.Days()
	if err != nil {
		return Stats{}, err
	}
	p, err := NewPairer(q, opt.Options)
	if err != nil {
		return Stats{}, err
	}
	p.Unusable = opt.Unusable
	var n int64
	for i, day := range days {
		if opt.Progress != nil {
			opt.Progress(Progress{Day: day, DayIndex: i, Days: len(days), Records: n})
		}
		// The domain filter goes to readback; app and stream are filtered by the Pairer.
		err := readback.Read(ctx, s, readback.Query{From: day, To: day, Domain: q.Domain}, func(e readback.Event) error {
			n++
			if opt.Progress != nil && n%ProgressEvery == 0 {
				opt.Progress(Progress{Day: day, DayIndex: i, Days: len(days), Records: n})
			}
			return p.Add(day, e)
		})
		if err != nil {
			p.sorter.close()
			return p.stats, err
		}
		if err := ctx.Err(); err != nil {
			p.sorter.close()
			return p.stats, err
		}
	}
	// A day without records must still count as read.
	p.stats.Days = len(days)
	return p.Finish(fn)
}
