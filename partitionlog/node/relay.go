package node

// Ordinary Kafka clients. In redirect mode (docs/architecture.md, "Proxy modes") Metadata names the
// nodes as partition leaders, so clients produce and fetch straight to a node, on the
// listener proxies and peers use. A client also sends a node whatever it sends to "any
// broker": Metadata, InitProducerId for an idempotent producer, FindCoordinator,
// DescribeConfigs, admin requests. So a node answers every API a proxy answers: those
// it owns (APIs) itself, every other by relaying the request to a proxy and handing back
// the proxy's answer, so that a client hears the same Metadata and is sent to the same
// coordinator whichever broker it asks.
//
// Clients keep the node's own versions for the APIs it owns: Produce and Fetch at most
// v12, which name topics rather than topic ids.

import (
	"context"
	"fmt"
	"maps"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/wire"
)

// Relay answers a request the node does not serve itself, by asking a proxy. The
// request is the client's own, header included; the response must be at its version.
type Relay func(ctx context.Context, req *wire.Request) (kmsg.Response, error)

// servedAPIs is what a node with relayAPIs behind its relay advertises and accepts: its
// own APIs at its own versions, and the rest at the versions the proxy serves them.
func servedAPIs(relayAPIs wire.APITable) wire.APITable {
	served := maps.Clone(APIs)
	for key, versions := range relayAPIs {
		if _, own := APIs[key]; !own {
			served[key] = versions
		}
	}
	return served
}

// APIs returns the versions this node serves, relayed APIs included: the wire server's
// version check (wire.Server.Versions) and the ApiVersions answer both read it.
func (s *Server) APIs() wire.APITable { return s.apis }

// relay answers a request for an API the node does not own through Config.Relay.
// An error closes the client's connection; the client then asks another broker.
func (s *Server) relay(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	api := kmsg.NameForKey(req.Header.Key)
	if _, served := s.apis[req.Header.Key]; !served || s.cfg.Relay == nil {
		return nil, fmt.Errorf("node %d: no handler for %s", s.cfg.ID, api)
	}
	resp, err := s.cfg.Relay(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("node %d: relay %s of client %q to a proxy: %w", s.cfg.ID, api, req.Header.ClientID, err)
	}
	return resp, nil
}
