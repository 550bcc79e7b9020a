package sessions

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/internal/cli"
)

// Formats of Writer.
const (
	FormatTable = "table"
	FormatJSONL = "jsonl"
	FormatCSV   = "csv"
)

// Columns are the field names of the jsonl and csv formats, in order.
var Columns = []string{"domain", "app", "stream", "publish_timestamp", "started_at", "ended_at", "duration_s", "status", "verified",
	"client_ip", "node_ip", "done_client_ip", "done_node_ip"}

// Writer prints sessions in one format, streaming (nothing is held but the summary counts).
type Writer struct {
	format string
	loc    *time.Location
	w      *bufio.Writer
	csv    *csv.Writer
	buf    []byte
	n      int
	counts map[Status]int
	total  int64 // seconds streamed by closed sessions
}

// NewWriter returns a Writer for format (FormatTable, FormatJSONL or FormatCSV), times in UTC.
func NewWriter(w io.Writer, format string) (*Writer, error) { return NewWriterIn(w, format, time.UTC) }

// NewWriterIn is NewWriter with started_at and ended_at shown in loc (--tz).
func NewWriterIn(w io.Writer, format string, loc *time.Location) (*Writer, error) {
	sw := &Writer{format: format, loc: loc, w: bufio.NewWriterSize(w, 64<<10), counts: map[Status]int{}}
	switch format {
	case FormatJSONL:
	case FormatCSV:
		sw.csv = csv.NewWriter(sw.w)
		_ = sw.csv.Write(Columns) // an error sticks in sw.csv and is returned by Write or Close
	case FormatTable:
		fmt.Fprintf(sw.w, "%-*s  %-*s  %10s  %-8s  %-8s  %-15s  %-15s  %s\n", sw.timeWidth(), "STARTED_AT", sw.timeWidth(), "ENDED_AT",
			"DURATION", "STATUS", "VERIFIED", "CLIENT_IP", "NODE_IP", "DOMAIN/APP/STREAM")
	default:
		return nil, fmt.Errorf("invalid --format %q: want table, jsonl or csv", format)
	}
	return sw, nil
}

// Write prints one session.
func (sw *Writer) Write(s Session) error {
	sw.n++
	sw.counts[s.Status]++
	d, hasEnd := s.DurationS()
	if s.Status == Closed {
		sw.total += d
	}
	switch sw.format {
	case FormatJSONL:
		sw.buf = append(s.AppendJSONIn(sw.buf[:0], sw.loc), '\n')
		_, err := sw.w.Write(sw.buf)
		return err
	case FormatCSV:
		ended, dur := "", ""
		if hasEnd {
			ended, dur = s.EndedAt.In(sw.loc).Format(cli.TimeLayout(sw.loc, true)), strconv.FormatInt(d, 10)
		}
		_ = sw.csv.Write([]string{s.Domain, s.App, s.Stream, strconv.FormatInt(s.PublishTimestamp, 10),
			s.StartedAt().In(sw.loc).Format(time.RFC3339), ended, dur, string(s.Status), strconv.FormatBool(s.Verified),
			s.ClientIP, s.NodeIP, s.DoneClientIP, s.DoneNodeIP})
		return sw.csv.Error()
	default:
		ended, dur := "-", "-"
		if hasEnd {
			ended, dur = s.EndedAt.In(sw.loc).Format(time.RFC3339), HumanDuration(d)
		}
		verified := "no"
		if s.Verified {
			verified = "yes"
		}
		_, err := fmt.Fprintf(sw.w, "%-*s  %-*s  %10s  %-8s  %-8s  %-15s  %-15s  %s/%s/%s\n", sw.timeWidth(), s.StartedAt().In(sw.loc).Format(time.RFC3339),
			sw.timeWidth(), ended, dur, s.Status, verified, ipCell(s.ClientIP, s.DoneClientIP), ipCell(s.NodeIP, s.DoneNodeIP),
			cli.Cell(s.Domain), cli.Cell(s.App), cli.Cell(s.Stream))
		return err
	}
}

// timeWidth is the width of an RFC 3339 time in the table: 20 in UTC (Z), 25 with an offset.
func (sw *Writer) timeWidth() int {
	if sw.loc == time.UTC {
		return 20
	}
	return 25
}

// ipCell is a table's IP column: the PUBLISH's value, and the PUBLISH_DONE's after "->" where
// it differs.
func ipCell(ip, done string) string {
	if done == "" {
		return cli.Cell(ip)
	}
	return cli.Cell(ip) + "->" + cli.Cell(done)
}

// Summary is the table's last line: sessions per status and the time streamed by closed ones.
func (sw *Writer) Summary() string {
	return fmt.Sprintf("%d sessions: %d closed, %d open, %d end_only; streamed %s (closed sessions)",
		sw.n, sw.counts[Closed], sw.counts[Open], sw.counts[EndOnly], HumanDuration(sw.total))
}

// Count is how many sessions were written.
func (sw *Writer) Count() int { return sw.n }

// Close writes the table's summary and flushes.
func (sw *Writer) Close() error {
	if sw.csv != nil {
		sw.csv.Flush()
		if err := sw.csv.Error(); err != nil {
			return err
		}
	}
	if sw.format == FormatTable {
		fmt.Fprintf(sw.w, "\n%s\n", sw.Summary())
	}
	return sw.w.Flush()
}

// HumanDuration renders seconds as 45s, 12m05s, 3h02m05s or 2d03h04m.
func HumanDuration(sec int64) string {
	sign := ""
	if sec < 0 {
		sign, sec = "-", -sec
	}
	d, h, m, s := sec/86400, sec/3600%24, sec/60%60, sec%60
	switch {
	case d > 0:
		return fmt.Sprintf("%s%dd%02dh%02dm", sign, d, h, m)
	case h > 0:
		return fmt.Sprintf("%s%dh%02dm%02ds", sign, h, m, s)
	case m > 0:
		return fmt.Sprintf("%s%dm%02ds", sign, m, s)
	}
	return fmt.Sprintf("%s%ds", sign, s)
}
