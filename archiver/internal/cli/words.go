package cli

import (
	"flag"
	"fmt"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/layout"
)

// DayWords is how the -h texts name what a day flag accepts.
const DayWords = "YYYY-MM-DD, today or yesterday (UTC)"

// Day turns the date words "today" and "yesterday" into the UTC partition day relative to now
// (so a cron job needs no date arithmetic); anything else is returned as given, for the
// command's own YYYY-MM-DD check. Partition days are UTC days whatever --tz says.
func Day(s string, now time.Time) string {
	switch s {
	case "today":
		return layout.Day(now, nil)
	case "yesterday":
		return layout.Day(now.AddDate(0, 0, -1), nil)
	}
	return s
}

// Days is a --from/--to day range as given on the command line.
type Days struct{ From, To string }

// DayFlags registers --from and --to, worded the same for every command that reads a range.
func DayFlags(fs *flag.FlagSet, d *Days) {
	fs.StringVar(&d.From, "from", "", "first partition day: "+DayWords+" (required)")
	fs.StringVar(&d.To, "to", "", "last partition day, inclusive: "+DayWords+" (default: --from)")
}

// Resolve returns the range with its date words turned into days (see Day).
func (d Days) Resolve(now time.Time) Days { return Days{From: Day(d.From, now), To: Day(d.To, now)} }

// Filter selects callbacks (or the sessions they make) by exact values; an empty field matches
// everything.
type Filter struct{ Domain, App, Stream, Event string }

// Events the --event filter accepts.
const (
	EventPublish     = "PUBLISH"
	EventPublishDone = "PUBLISH_DONE"
)

// FilterFlags registers --domain, --app, --stream and --event; what names the things filtered
// ("events", "sessions") in their help.
func FilterFlags(fs *flag.FlagSet, f *Filter, what string) {
	fs.StringVar(&f.Domain, "domain", "", "only "+what+" of this push domain")
	fs.StringVar(&f.App, "app", "", "only "+what+" of this app")
	fs.StringVar(&f.Stream, "stream", "", "only "+what+" of this stream")
	help := "only " + what + " with this callback: PUBLISH or PUBLISH_DONE"
	if what == "events" {
		help = "only PUBLISH or PUBLISH_DONE events"
	}
	fs.StringVar(&f.Event, "event", "", help)
}

// Check validates the filter's values.
func (f Filter) Check() error {
	switch f.Event {
	case "", EventPublish, EventPublishDone:
		return nil
	}
	return fmt.Errorf("invalid --event %q: want PUBLISH or PUBLISH_DONE (upper case)", OneLine(f.Event))
}

// Match reports whether a callback's names pass the domain, app and stream filters.
func (f Filter) Match(domain, app, stream string) bool {
	return (f.Domain == "" || domain == f.Domain) && (f.App == "" || app == f.App) && (f.Stream == "" || stream == f.Stream)
}

// TZFlag registers --tz, the zone times are shown in.
func TZFlag(fs *flag.FlagSet, tz *string) {
	fs.StringVar(tz, "tz", "UTC", "show times in this IANA zone, e.g. Asia/Shanghai or Local (partition days stay UTC)")
}

// Zone loads a --tz value. The binary embeds the zone database (time/tzdata), so every IANA name
// works on any host.
func Zone(name string) (*time.Location, error) {
	if name == "" || name == "UTC" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("invalid --tz %q: want an IANA zone name such as Asia/Shanghai, UTC or Local", OneLine(name))
	}
	return loc, nil
}

// TimeLayout is how tables print a time in loc: RFC 3339 with Z in UTC, with the zone's offset
// elsewhere; nanos adds the nanoseconds archive.received_at carries.
func TimeLayout(loc *time.Location, nanos bool) string {
	switch {
	case nanos && loc == time.UTC:
		return layout.ReceivedAtLayout
	case nanos:
		return "2006-01-02T15:04:05.000000000-07:00"
	}
	return time.RFC3339
}
