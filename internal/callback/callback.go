// Package callback holds what the Live service and a receiver must agree on about the
// publish callback: event names, and the auth_sign signature (spec/callback.md).
package callback

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strconv"
	"sync"
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

// Verifier checks signatures made with one key without allocating per call: it reuses HMAC states
// (keyed once) and scratch buffers. intake verifies every signed callback with one. Safe for
// concurrent use.
type Verifier struct {
	key  []byte
	pool sync.Pool // *verifyState
}

type verifyState struct {
	mac hash.Hash
	msg []byte
	sum []byte
}

// NewVerifier returns a verifier of signatures made with key.
func NewVerifier(key string) *Verifier {
	v := &Verifier{key: []byte(key)}
	v.pool.New = func() any { return &verifyState{mac: hmac.New(sha256.New, v.key), msg: make([]byte, 0, 256)} }
	return v
}

// Valid is the package's Valid for the verifier's key, in constant time for a sign of the right
// length.
func (v *Verifier) Valid(sign, event, domain, app, stream string, authTimestamp int64) bool {
	if len(sign) != 2*sha256.Size {
		return false
	}
	st := v.pool.Get().(*verifyState)
	defer v.pool.Put(st)
	msg := append(st.msg[:0], event...)
	msg = append(msg, domain...)
	msg = append(msg, app...)
	msg = append(msg, stream...)
	msg = strconv.AppendInt(msg, authTimestamp, 10)
	if cap(msg) <= 4096 { // a huge stream name must not pin its buffer in the pool
		st.msg = msg
	}
	st.mac.Reset()
	st.mac.Write(msg)
	st.sum = st.mac.Sum(st.sum[:0])
	var want [2 * sha256.Size]byte
	hex.Encode(want[:], st.sum)
	var diff byte
	for i := range want {
		diff |= want[i] ^ sign[i]
	}
	return diff == 0
}
