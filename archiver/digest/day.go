package digest

import (
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/layout"
)

// ResolveDay turns "today" and "yesterday" (UTC, relative to now) into YYYY-MM-DD, so a CronJob
// without a shell can name the day; anything else is returned unchanged for the caller to check.
func ResolveDay(s string, now time.Time) string {
	switch s {
	case "today":
		return layout.Day(now, nil)
	case "yesterday":
		return layout.Day(now.AddDate(0, 0, -1), nil)
	}
	return s
}
