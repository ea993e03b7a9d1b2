package proxy

// DescribeCluster, versions 0 to 2.
//
// Lists this proxy as the cluster's broker and controller, as Metadata does. Asking
// for controller endpoints (v1 EndpointType 2) gets UNSUPPORTED_ENDPOINT_TYPE: clients
// reach Strait's control plane only through the proxy.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (p *Proxy) describeCluster(_ context.Context, req *kmsg.DescribeClusterRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = 1
	if req.Version >= 1 && req.EndpointType != 1 {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		return resp, nil
	}
	id, host, port, rack := p.broker()
	resp.ClusterID = p.view.Snapshot().ClusterID
	resp.ControllerID = id
	resp.Brokers = []kmsg.DescribeClusterResponseBroker{{NodeID: id, Host: host, Port: port, Rack: rack}}
	return resp, nil
}
