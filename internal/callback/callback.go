// Package callback holds what the Live service and a receiver must agree on about the
// publish callback: event names, and the auth_sign signature (spec/callback.md).
package callback

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// Event names carried in the "event" field.
const (
	EventPublish     = "PUBLISH"
	EventPublishDone = "PUBLISH_DONE"
)

// Sign returns auth_sign: lower_hex(hmac_sha256(key, event+domain+app+stream+decimal(authTimestamp))).
func Sign(key, event, domain, app, stream string, authTimestamp int64) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(event))
	m.Write([]byte(domain))
	m.Write([]byte(app))
	m.Write([]byte(stream))
	m.Write([]byte(strconv.FormatInt(authTimestamp, 10)))
	return hex.EncodeToString(m.Sum(nil))
}

// Valid reports, in constant time, whether sign is the signature of the other arguments.
func Valid(sign, key, event, domain, app, stream string, authTimestamp int64) bool {
	want := Sign(key, event, domain, app, stream, authTimestamp)
	return hmac.Equal([]byte(want), []byte(sign))
}
