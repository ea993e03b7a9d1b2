package proxy

// ApiVersions, versions 0 to 4.
//
// Answers from the handler table, so what is advertised is what is served. A request
// at a version above 4 is answered by internal/wire in v0 form with UNSUPPORTED_VERSION
// and the supported range (KIP-511), so the client retries at a version it shares.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (p *Proxy) apiVersions(_ context.Context, req *kmsg.ApiVersionsRequest) (kmsg.Response, error) {
	return APIs().AnswerApiVersions(req), nil
}
