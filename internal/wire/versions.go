package wire

import "github.com/twmb/franz-go/pkg/kmsg"

// versionsFunc reports the versions served for an API key; ok=false for an unknown key.
type versionsFunc func(key int16) (min, max int16, ok bool)

// errUnsupportedVersionCode is Kafka's UNSUPPORTED_VERSION error code.
const errUnsupportedVersionCode = 35

// clampVersions bounds what a Server's Versions reports to what kmsg can decode: a version
// kmsg does not know cannot be parsed, whatever the handler claims.
func clampVersions(served versionsFunc) versionsFunc {
	return func(key int16) (int16, int16, bool) {
		req := kmsg.RequestForKey(key)
		if req == nil {
			return 0, 0, false
		}
		if served == nil {
			return 0, req.MaxVersion(), true
		}
		lo, hi, ok := served(key)
		hi = min(hi, req.MaxVersion())
		if !ok || lo < 0 || lo > hi {
			return 0, 0, false
		}
		return lo, hi, true
	}
}

// unsupportedAPIVersions is the KIP-511 answer to an ApiVersions request newer than the
// server: version 0, UNSUPPORTED_VERSION, and every range served (as Advertised lists it), so the client can retry
// at a version both sides know.
func unsupportedAPIVersions(versions versionsFunc) *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	resp.ErrorCode = errUnsupportedVersionCode
	for key := int16(0); key <= kmsg.MaxKey; key++ {
		if lo, hi, ok := versions(key); ok {
			r := Advertised(key, APIRange{lo, hi})
			resp.ApiKeys = append(resp.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: key, MinVersion: r.Min, MaxVersion: r.Max})
		}
	}
	return resp
}
