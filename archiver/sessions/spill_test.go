package sessions

import (
	"bufio"
	"bytes"
	"testing"
	"time"
)

// FuzzDecodePartial: a damaged temporary file gives an error, never a panic or a huge
// allocation, and what encodes decodes to the same partial.
func FuzzDecodePartial(f *testing.F) {
	p := partial{key: key{domain: "d.example.com", app: "live", stream: "s\x00\xff", pts: 1794301200}, listed: true,
		pub:  seen{ok: true, first: time.Unix(1794301201, 5).UTC(), verified: true},
		done: seen{ok: true, first: time.Unix(-5, 999999999).UTC()}}
	f.Add(encodePartial(nil, &p))
	f.Add(encodePartial(nil, &partial{}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{fPub, 0, 0, 0, 2, 0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for range 1000 {
			var got partial
			ok, err := decodePartial(r, &got)
			if err != nil || !ok {
				return
			}
			again := encodePartial(nil, &got)
			var back partial
			if ok, err := decodePartial(bufio.NewReader(bytes.NewReader(again)), &back); !ok || err != nil || back.key != got.key ||
				back.listed != got.listed || !sameSeen(back.pub, got.pub) || !sameSeen(back.done, got.done) {
				t.Fatalf("round trip: %+v -> %+v (%v)", got, back, err)
			}
		}
	})
}

func sameSeen(a, b seen) bool {
	return a.ok == b.ok && a.verified == b.verified && a.first.Equal(b.first)
}
