package proxy

// DescribeCluster, versions 0 to 2.
//
// Lists the cluster's brokers as Metadata does for the proxy's mode, and this proxy as controller. Asking
// for controller endpoints (v1 EndpointType 2) gets UNSUPPORTED_ENDPOINT_TYPE: clients
// reach Strait's control plane only through the proxy.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (p *Proxy) describeCluster(ctx context.Context, req *kmsg.DescribeClusterRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = 1
	if req.Version >= 1 && req.EndpointType != 1 {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		return resp, nil
	}
	snap := p.view.Snapshot()
	resp.ClusterID = snap.ClusterID
	resp.ControllerID = p.cfg.BrokerID
	for _, b := range p.brokers(snap, listenerOf(ctx)) {
		resp.Brokers = append(resp.Brokers, kmsg.DescribeClusterResponseBroker{NodeID: b.id, Host: b.host, Port: b.port, Rack: b.rack})
	}
	return resp, nil
}
