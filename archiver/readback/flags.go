package readback

import (
	"flag"

	"github.com/livehook/terraform-provider-livehook/archiver/storage"
)

// StoreFlags registers the flags that select the archive to read (--store, --s3-endpoint,
// --s3-region), so every command that reads the archive spells them the same way.
func StoreFlags(fs *flag.FlagSet, o *storage.Options) {
	fs.StringVar(&o.URL, "store", "", "archive location: s3://BUCKET/PREFIX or file:///DIR (default: file store ./archive)")
	fs.StringVar(&o.Endpoint, "s3-endpoint", "", "S3-compatible endpoint, e.g. http://127.0.0.1:7070 (default: AWS)")
	fs.StringVar(&o.Region, "s3-region", "", "S3 region (default: $AWS_REGION, else us-east-1 for --s3-endpoint)")
}
