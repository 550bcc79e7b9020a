package demo

import (
	"io"
	"strings"
	"testing"
	"time"
)

// TestVerify covers the demo's verdict on fabricated deliveries and archives: it must fail
// on a lost, a doubled and a foreign event, not only pass on the happy path.
func TestVerify(t *testing.T) {
	t.Parallel()
	ev := func(kind, stream string) Event {
		return Event{Domain: DefaultDomain, App: App, Stream: stream, Event: kind, PublishTimestamp: "1795736055"}
	}
	a, b, c := ev("PUBLISH", "s1"), ev("PUBLISH_DONE", "s1"), ev("PUBLISH", "s2")
	arch := func(es ...Event) []ArchivedEvent {
		var out []ArchivedEvent
		for _, e := range es {
			out = append(out, ArchivedEvent{Event: e, EventID: "x"})
		}
		return out
	}
	cases := []struct {
		name                         string
		delivered                    []Event
		archived                     []ArchivedEvent
		wantErr                      string
		missing, duplicated, foreign int
	}{
		{name: "exactly once", delivered: []Event{a, b}, archived: arch(b, a)},
		{name: "lost", delivered: []Event{a, b}, archived: arch(a), wantErr: "missing: PUBLISH_DONE", missing: 1},
		{name: "stored twice", delivered: []Event{a, b}, archived: arch(a, b, a), wantErr: "stored more than once: PUBLISH ", duplicated: 1},
		{name: "never delivered", delivered: []Event{a}, archived: arch(a, c), wantErr: "never delivered: PUBLISH " + DefaultDomain + "/live/s2", foreign: 1},
		{name: "nothing delivered", wantErr: "0 delivered"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := &runner{o: Options{Out: io.Discard}, start: time.Now(), res: &Result{Delivered: tc.delivered, Archived: tc.archived}}
			err := r.verify()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("verify = %v, want nil", err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("verify = %v, want an error containing %q", err, tc.wantErr)
			}
			if len(r.res.Missing) != tc.missing || len(r.res.Duplicated) != tc.duplicated || len(r.res.Unexpected) != tc.foreign {
				t.Errorf("missing %v, duplicated %v, unexpected %v", r.res.Missing, r.res.Duplicated, r.res.Unexpected)
			}
		})
	}
}

func TestIdentity(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, body string
		want       Event
		wantErr    bool
	}{
		{"string timestamp", `{"domain":"d","app":"a","stream":"s","event":"PUBLISH","publish_timestamp":"1587954134"}`,
			Event{"d", "a", "s", "PUBLISH", "1587954134"}, false},
		{"seed quirk kept raw", `{"domain":"d","app":"a","stream":"s","event":"PUBLISH","publish_timestamp":"1587954134,"}`,
			Event{"d", "a", "s", "PUBLISH", "1587954134,"}, false},
		{"number timestamp", `{"domain":"d","app":"a","stream":"s","event":"PUBLISH_DONE","publish_timestamp":1587954134}`,
			Event{"d", "a", "s", "PUBLISH_DONE", "1587954134"}, false},
		{"archive line", `{"domain":"d","app":"a","stream":"s","event":"PUBLISH","publish_timestamp":"1","archive":{"event_id":"e"}}`,
			Event{"d", "a", "s", "PUBLISH", "1"}, false},
		{"no event", `{"domain":"d"}`, Event{}, true},
		{"not an object", `[1]`, Event{}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := identity([]byte(tc.body))
			if (err != nil) != tc.wantErr {
				t.Fatalf("identity err = %v, wantErr %t", err, tc.wantErr)
			}
			if !tc.wantErr && got != tc.want {
				t.Errorf("identity = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseArchivedNeedsArchiveObject(t *testing.T) {
	t.Parallel()
	if _, err := parseArchived([]byte(`{"domain":"d","app":"a","stream":"s","event":"PUBLISH","publish_timestamp":"1"}`)); err == nil {
		t.Error("a line without the archive object was accepted")
	}
	e, err := parseArchived([]byte(`{"domain":"d","app":"a","stream":"s","event":"PUBLISH","publish_timestamp":"1","archive":{"event_id":"abc","signature":"verified","received_at":"2026-01-01T00:00:00Z"}}`))
	if err != nil || e.EventID != "abc" || e.Signature != "verified" {
		t.Errorf("parseArchived = %+v, %v", e, err)
	}
}

func TestParseOutputs(t *testing.T) {
	t.Parallel()
	out := "Warning: Provider development overrides are in effect\n{\n" +
		`"a":{"sensitive":false,"type":"string","value":"x"},` +
		`"n":{"sensitive":false,"type":"number","value":3},` +
		`"k":{"sensitive":true,"type":"string","value":"secret"}` + "\n}\n"
	got := parseOutputs(out)
	want := map[string]string{"a": "x", "n": "3", "k": "(sensitive)"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("output %s = %q, want %q", k, got[k], v)
		}
	}
	if strings.Contains(strings.Join([]string{got["a"], got["n"], got["k"]}, ","), "secret") {
		t.Error("sensitive output value leaked")
	}
}
