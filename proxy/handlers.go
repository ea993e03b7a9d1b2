package proxy

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/wire"
)

// handler serves one API over a range of versions.
type handler struct {
	versions wire.APIRange
	serve    func(p *Proxy, ctx context.Context, req *wire.Request) (kmsg.Response, error)
}

// handlerTable is every API the proxy serves. Versions are those each file's header
// explains; the wire server refuses others before a handler sees them.
func handlerTable() map[int16]handler {
	return map[int16]handler{
		0:  {wire.APIRange{Min: 3, Max: 13}, typed((*Proxy).produce)},
		1:  {wire.APIRange{Min: 4, Max: 18}, typed((*Proxy).fetch)},
		2:  {wire.APIRange{Min: 1, Max: 6}, typed((*Proxy).listOffsets)},
		3:  {wire.APIRange{Min: 0, Max: 13}, typed((*Proxy).metadata)},
		18: {wire.APIRange{Min: 0, Max: 4}, typed((*Proxy).apiVersions)},
		19: {wire.APIRange{Min: 0, Max: 7}, typed((*Proxy).createTopics)},
		20: {wire.APIRange{Min: 0, Max: 6}, typed((*Proxy).deleteTopics)},
		21: {wire.APIRange{Min: 0, Max: 2}, typed((*Proxy).deleteRecords)},
		22: {wire.APIRange{Min: 0, Max: 5}, withHeader((*Proxy).initProducerID)},
		23: {wire.APIRange{Min: 2, Max: 4}, typed((*Proxy).offsetForLeaderEpoch)},
		32: {wire.APIRange{Min: 0, Max: 4}, typed((*Proxy).describeConfigs)},
		33: {wire.APIRange{Min: 0, Max: 2}, typed((*Proxy).alterConfigs)},
		37: {wire.APIRange{Min: 0, Max: 3}, typed((*Proxy).createPartitions)},
		44: {wire.APIRange{Min: 0, Max: 1}, typed((*Proxy).incrementalAlterConfigs)},
		60: {wire.APIRange{Min: 0, Max: 2}, typed((*Proxy).describeCluster)},
		61: {wire.APIRange{Min: 0, Max: 0}, typed((*Proxy).describeProducers)},
		75: {wire.APIRange{Min: 0, Max: 0}, typed((*Proxy).describeTopicPartitions)},

		29: {wire.APIRange{Min: 0, Max: 3}, typed((*Proxy).describeACLs)},
		30: {wire.APIRange{Min: 0, Max: 3}, typed((*Proxy).createACLs)},
		31: {wire.APIRange{Min: 0, Max: 3}, typed((*Proxy).deleteACLs)},
		50: {wire.APIRange{Min: 0, Max: 0}, typed((*Proxy).describeUserScramCredentials)},
		51: {wire.APIRange{Min: 0, Max: 0}, typed((*Proxy).alterUserScramCredentials)},
		// SaslHandshake and SaslAuthenticate: the wire server answers them before any
		// handler runs (wire.Security); listed so that ApiVersions advertises them.
		wire.SASLHandshakeKey:    {wire.SASLAPIs[wire.SASLHandshakeKey], answeredByWire},
		wire.SASLAuthenticateKey: {wire.SASLAPIs[wire.SASLAuthenticateKey], answeredByWire},

		8:  {wire.APIRange{Min: 0, Max: 9}, withHeader((*Proxy).offsetCommit)},
		9:  {wire.APIRange{Min: 0, Max: 9}, withHeader((*Proxy).offsetFetch)},
		10: {wire.APIRange{Min: 0, Max: 6}, typed((*Proxy).findCoordinator)},
		11: {wire.APIRange{Min: 0, Max: 9}, withHeader((*Proxy).joinGroup)},
		12: {wire.APIRange{Min: 0, Max: 4}, withHeader((*Proxy).heartbeat)},
		13: {wire.APIRange{Min: 0, Max: 5}, withHeader((*Proxy).leaveGroup)},
		14: {wire.APIRange{Min: 0, Max: 5}, withHeader((*Proxy).syncGroup)},
		15: {wire.APIRange{Min: 0, Max: 5}, withHeader((*Proxy).describeGroups)},
		16: {wire.APIRange{Min: 0, Max: 5}, withHeader((*Proxy).listGroups)},
		42: {wire.APIRange{Min: 0, Max: 2}, withHeader((*Proxy).deleteGroups)},
		43: {wire.APIRange{Min: 0, Max: 2}, typed((*Proxy).electLeaders)},
		47: {wire.APIRange{Min: 0, Max: 0}, withHeader((*Proxy).offsetDelete)},

		24: {wire.APIRange{Min: 0, Max: 5}, withHeader((*Proxy).addPartitionsToTxn)},
		25: {wire.APIRange{Min: 0, Max: 4}, withHeader((*Proxy).addOffsetsToTxn)},
		26: {wire.APIRange{Min: 0, Max: 5}, withHeader((*Proxy).endTxn)},
		27: {wire.APIRange{Min: 0, Max: 1}, withHeader((*Proxy).writeTxnMarkers)},
		28: {wire.APIRange{Min: 0, Max: 4}, withHeader((*Proxy).txnOffsetCommit)},
		65: {wire.APIRange{Min: 0, Max: 0}, withHeader((*Proxy).describeTransactions)},
		66: {wire.APIRange{Min: 0, Max: 1}, withHeader((*Proxy).listTransactions)},
		68: {wire.APIRange{Min: 0, Max: 1}, withHeader((*Proxy).consumerGroupHeartbeat)},
		69: {wire.APIRange{Min: 0, Max: 1}, withHeader((*Proxy).consumerGroupDescribe)},
	}
}

// answeredByWire stands for the SASL APIs, which never reach the proxy's handler.
func answeredByWire(_ *Proxy, _ context.Context, req *wire.Request) (kmsg.Response, error) {
	return nil, fmt.Errorf("proxy: %s reached the handler; the wire server answers it", kmsg.NameForKey(req.Header.Key))
}

// APIs returns the table of API versions the proxy serves (for wire.Server.Versions).
func APIs() wire.APITable {
	t := make(wire.APITable)
	for key, h := range handlerTable() {
		t[key] = h.versions
	}
	return t
}

// typed adapts a handler of one concrete request type to the table's signature.
func typed[R kmsg.Request](fn func(*Proxy, context.Context, R) (kmsg.Response, error)) func(*Proxy, context.Context, *wire.Request) (kmsg.Response, error) {
	return func(p *Proxy, ctx context.Context, req *wire.Request) (kmsg.Response, error) {
		return fn(p, ctx, req.Body.(R))
	}
}

// withHeader is typed for handlers that also need the request header or peer.
func withHeader[R kmsg.Request](fn func(*Proxy, context.Context, *wire.Request, R) (kmsg.Response, error)) func(*Proxy, context.Context, *wire.Request) (kmsg.Response, error) {
	return func(p *Proxy, ctx context.Context, req *wire.Request) (kmsg.Response, error) {
		return fn(p, ctx, req, req.Body.(R))
	}
}
