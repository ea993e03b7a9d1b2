package wire

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// APIRange is the range of versions of one API that a handler serves.
type APIRange struct{ Min, Max int16 }

// APITable maps each API key a handler serves to its versions. It is the one source
// for both the Server's version check and the handler's ApiVersions answer, so the
// two cannot disagree.
type APITable map[int16]APIRange

// Versions reports the versions served for key; use it as Server.Versions.
func (t APITable) Versions(key int16) (min, max int16, ok bool) {
	r, ok := t[key]
	return r.Min, r.Max, ok
}

// Advertised is the range ApiVersions lists for key when r is served. It is r, except
// that Produce served from v3 is listed from v0: KIP-896 removed Produce v0-v2, and
// Kafka 4.0 lists them anyway while refusing them (KAFKA-18659), because librdkafka
// before its fix compresses a gzip, snappy or lz4 batch only if the broker lists
// Produce v0, and otherwise sends it uncompressed ("Broker does not support
// compression type gzip: not compressing batch"). Clients send the highest version
// both sides list, so none sends v0-v2 to a broker that lists v12; one that does is
// refused as any unserved version is (the connection is closed), as Kafka 4.0 does.
func Advertised(key int16, r APIRange) APIRange {
	if key == produceKey && r.Min <= 3 {
		r.Min = 0
	}
	return r
}

// ApiVersionsResponse answers an ApiVersions request with the table, keys in order,
// each range as Advertised lists it.
func (t APITable) ApiVersionsResponse() *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	keys := make([]int16, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		ak := kmsg.NewApiVersionsResponseApiKey()
		r := Advertised(k, t[k])
		ak.ApiKey, ak.MinVersion, ak.MaxVersion = k, r.Min, r.Max
		resp.ApiKeys = append(resp.ApiKeys, ak)
	}
	return resp
}

// errInvalidRequestCode is Kafka's INVALID_REQUEST error code.
const errInvalidRequestCode = 42

// AnswerApiVersions answers req with the table, or, when CheckClientSoftware refuses req,
// with INVALID_REQUEST and no keys, as Kafka does.
func (t APITable) AnswerApiVersions(req *kmsg.ApiVersionsRequest) *kmsg.ApiVersionsResponse {
	if CheckClientSoftware(req) != nil {
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.ErrorCode = errInvalidRequestCode
		return resp
	}
	return t.ApiVersionsResponse()
}

// CheckClientSoftware checks the client software name and version that ApiVersions v3
// and later carry (KIP-511): each must match [a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?,
// which rules out an empty one. Kafka answers a request that fails with INVALID_REQUEST.
func CheckClientSoftware(req *kmsg.ApiVersionsRequest) error {
	if req.GetVersion() < 3 {
		return nil
	}
	for _, f := range []struct{ name, value string }{
		{"name", req.ClientSoftwareName},
		{"version", req.ClientSoftwareVersion},
	} {
		if !validSoftwareField(f.value) {
			return fmt.Errorf("%w: ApiVersions v%d client software %s %q: want letters, digits, '-' and '.', starting and ending with a letter or digit",
				errBadRequest, req.GetVersion(), f.name, f.value)
		}
	}
	return nil
}

// validSoftwareField matches [a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?.
func validSoftwareField(s string) bool {
	if s == "" || !isAlnum(s[0]) || !isAlnum(s[len(s)-1]) {
		return false
	}
	for i := range len(s) {
		if c := s[i]; !isAlnum(c) && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
