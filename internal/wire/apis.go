package wire

import (
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

// ApiVersionsResponse answers an ApiVersions request with the table, keys in order.
func (t APITable) ApiVersionsResponse() *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	keys := make([]int16, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		ak := kmsg.NewApiVersionsResponseApiKey()
		ak.ApiKey, ak.MinVersion, ak.MaxVersion = k, t[k].Min, t[k].Max
		resp.ApiKeys = append(resp.ApiKeys, ak)
	}
	return resp
}
