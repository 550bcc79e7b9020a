package digest_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/digest"
	"github.com/livehook/terraform-provider-livehook/archiver/layout"
)

// BenchmarkDescribe is the Recorder's added cost per stored object (hash and record scan), for a
// 10s batch at a million callbacks a day and for a full 8MiB batch:
//
//	go test ./archiver/digest -run '^$' -bench Describe
func BenchmarkDescribe(b *testing.B) {
	for _, records := range []int{58, 15000} {
		var lines []byte
		for i := range records {
			body := fmt.Appendf(nil, `{"domain":"push.example.com","app":"live","stream":"stream-%06d","user_args":"auth_info=abc%%2Bdef&cdn=hw","client_ip":"100.125.58.90","node_ip":"112.12.196.218","publish_timestamp":"%d","event":"PUBLISH"}`, i, 1_700_000_000+i)
			lines = layout.AppendRecord(lines, body, layout.Archive{ReceivedAt: time.Unix(1_700_000_000, int64(i)), EventID: "0123456789abcdef0123456789abcdef", Signature: "verified", Instance: "host-a"})
		}
		body, _ := layout.EncodeObject(lines, true)
		b.Run(fmt.Sprintf("records=%d", records), func(b *testing.B) {
			b.SetBytes(int64(len(lines)))
			for range b.N {
				if _, err := digest.Describe("dt=2026-11-20/host-a-00000000000000000001-000.jsonl.gz", body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
