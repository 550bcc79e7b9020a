package sink

import (
	"errors"
	"testing"
)

type recordResolver struct{ got []error }

func (r *recordResolver) Resolve(_ *Entry, err error) { r.got = append(r.got, err) }

// Finish exits the entry's Load (if any), tells the Resolver, then the waiter; a stale second
// outcome never blocks.
func TestFinish(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name     string
		withLoad bool
		err      error
	}{{"ok with load", true, nil}, {"error with load", true, boom}, {"no load", false, nil}} {
		t.Run(tc.name, func(t *testing.T) {
			load := &Load{}
			load.Enter()
			e, res := NewEntry(), &recordResolver{}
			e.Resolver = res
			if tc.withLoad {
				e.Load = load
			}
			e.Finish(tc.err)
			want := 1
			if tc.withLoad {
				want = 0
			}
			if a := load.Active(); a != want {
				t.Fatalf("active after Finish = %d, want %d", a, want)
			}
			if len(res.got) != 1 || res.got[0] != tc.err {
				t.Fatalf("resolver got %v, want [%v]", res.got, tc.err)
			}
			if err := <-e.Done; err != tc.err {
				t.Fatalf("Done = %v, want %v", err, tc.err)
			}
		})
	}
	var nilLoad *Load // counts nothing, never panics
	nilLoad.Enter()
	nilLoad.Exit()
	if nilLoad.Active() != 0 {
		t.Fatal("nil Load is active")
	}
}
