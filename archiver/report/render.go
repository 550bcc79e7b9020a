package report

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/sessions"
)

//go:embed page.html
var pageHTML string

//go:embed page.js
var pageJS string

//go:embed page.css
var pageCSS string

var page = template.Must(template.New("report").Funcs(template.FuncMap{"human": sessions.HumanDuration}).Parse(pageHTML))

// view is what the template reads: Data plus what is easier to compute here than to spell there.
type view struct {
	*Data
	Title               string
	Zone                string
	Generated           string
	CSS                 template.CSS
	JS                  template.JS
	Payload             template.JS // the sessions and settings as JSON (HTML-safe: <, >, & escaped)
	HeatCells           []heatCell
	HeatH               int
	Hours               []hourLabel
	TopBars             []topBar
	TopH                int
	Proven, InRangeDays int // days of the range without a problem, days of the range
}

type heatCell struct {
	X, Y    int
	Fill    string
	Title   string
	T       int64
	Label   string // the row's day, on the first cell of a row
	LabelY  int
	HasText bool
}

type hourLabel struct {
	X int
	H string
}

type topBar struct {
	Y, W, TextY int
	Name, Label string // Label: Name shortened from the left to fit
	Streamed    string
	Sessions    int
	ValueX      int
}

// payload is the JSON the page's script starts from.
type payload struct {
	Cols       *Columns   `json:"cols"`
	RangeStart int64      `json:"rangeStart"`
	RangeEnd   int64      `json:"rangeEnd"`
	Generated  int64      `json:"generated"`
	Zone       string     `json:"zone"`
	Offsets    [][2]int64 `json:"offsets"` // [unix seconds, UTC offset in seconds from then on], to show times in the zone
}

// Render writes the page.
func Render(w io.Writer, d *Data) error {
	v := view{Data: d, Zone: d.Loc.String(), Generated: d.Provenance.Generated.In(d.Loc).Format(time.RFC3339),
		CSS: template.CSS(pageCSS), JS: template.JS(pageJS)}
	v.Title = fmt.Sprintf("Push sessions %s..%s", d.From, d.To)
	if d.From == d.To {
		v.Title = "Push sessions " + d.From
	}
	// The timeline spans the range; sessions begun before it are drawn from its left edge.
	start := d.RangeStart.Unix()
	cols := d.Cols.nonNil()
	b, err := json.Marshal(payload{Cols: &cols, RangeStart: start, RangeEnd: d.RangeEnd.Unix(),
		Generated: d.Provenance.Generated.Unix(), Zone: v.Zone, Offsets: offsets(d.Loc, start, d.RangeEnd.Unix())})
	if err != nil {
		return fmt.Errorf("encoding the sessions: %w", err)
	}
	v.Payload = template.JS(b) // json.Marshal escapes <, >, &, U+2028 and U+2029: no </script> can appear
	const cell, left = 18, 86
	for r, day := range d.Heat.Days {
		for h, n := range d.Heat.Counts[r] {
			c := heatCell{X: left + h*cell, Y: 20 + r*cell, Fill: heatColour(n, d.Heat.Max),
				Title: fmt.Sprintf("%s %02d:00: %d session starts", day, h, n)}
			if d.Heat.Starts[r] != 0 { // "earlier" and "later" have no hour to zoom to
				// The wall-clock hour h of that day: not start + h hours on a day the zone's offset changes.
				y, m, dd := time.Unix(d.Heat.Starts[r], 0).In(d.Loc).Date()
				c.T = time.Date(y, m, dd, h, 0, 0, 0, d.Loc).Unix()
			}
			if h == 0 {
				c.HasText, c.Label, c.LabelY = true, day, c.Y+13
			}
			v.HeatCells = append(v.HeatCells, c)
		}
	}
	v.HeatH = 30 + len(d.Heat.Days)*cell
	for h := 0; h < 24; h += 3 {
		v.Hours = append(v.Hours, hourLabel{X: left + h*cell, H: fmt.Sprintf("%02d", h)})
	}
	var most int64 = 1
	for _, t := range d.Top {
		most = max(most, t.StreamedS)
	}
	for i, t := range d.Top {
		w := int(1 + 280*t.StreamedS/most)
		label := []rune(t.Name)
		if len(label) > 40 {
			label = append([]rune("…"), label[len(label)-39:]...)
		}
		v.TopBars = append(v.TopBars, topBar{Y: i * 22, TextY: i*22 + 14, W: w, ValueX: topLeft + w + 6, Name: t.Name, Label: string(label),
			Streamed: sessions.HumanDuration(t.StreamedS), Sessions: t.Sessions})
	}
	v.TopH = len(d.Top)*22 + 4
	if d.Integrity != nil {
		v.Proven, v.InRangeDays = d.Integrity.Proven()
	}
	return page.Execute(w, v)
}

// topLeft is where the top streams' bars start (their names are left of it).
const topLeft = 250

// nonNil returns c with empty slices for nil ones: JSON null would stop the page's script.
func (c Columns) nonNil() Columns {
	c.Streams, c.IPs = orEmpty(c.Streams), orEmpty(c.IPs)
	c.Start, c.Dur = orEmpty(c.Start), orEmpty(c.Dur)
	c.Stream, c.Client, c.Node, c.DClient, c.DNode = orEmpty(c.Stream), orEmpty(c.Client), orEmpty(c.Node), orEmpty(c.DClient), orEmpty(c.DNode)
	c.Flags = orEmpty(c.Flags)
	return c
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// heatColour shades n of max from pale to dark blue (white for none).
func heatColour(n, most int) string {
	if n == 0 || most == 0 {
		return "#f4f6f8"
	}
	f := float64(n) / float64(most)
	// from #d6e6f5 to #08306b
	r := 214 + (8-214)*f
	g := 230 + (48-230)*f
	b := 245 + (107-245)*f
	return fmt.Sprintf("#%02x%02x%02x", int(r), int(g), int(b))
}

// offsets lists the zone's UTC offsets over start..end with the instants they begin, so the
// page shows times in --tz without relying on the browser's own zone.
func offsets(loc *time.Location, start, end int64) [][2]int64 {
	t := time.Unix(start, 0).In(loc)
	_, off := t.Zone()
	out := [][2]int64{{start, int64(off)}}
	for t.Unix() < end {
		_, next := t.ZoneBounds()
		if next.IsZero() || next.Unix() >= end {
			break
		}
		t = next.In(loc)
		_, off = t.Zone()
		out = append(out, [2]int64{t.Unix(), int64(off)})
	}
	return out
}
