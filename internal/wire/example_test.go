package wire_test

import (
	"context"
	"fmt"
	"net"

	"github.com/strait-io/strait/internal/wire"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A Server answering Metadata, and a Client asking it.
func Example() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := &wire.Server{Handler: wire.HandlerFunc(func(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
		if _, ok := req.Body.(*kmsg.MetadataRequest); !ok {
			return nil, fmt.Errorf("%s not served", kmsg.NameForKey(req.Header.Key))
		}
		resp := kmsg.NewPtrMetadataResponse()
		resp.ClusterID = kmsg.StringPtr("example")
		return resp, nil // the server sets its version to the request's
	})}
	go srv.Serve(ln)
	defer srv.Close()

	ctx := context.Background()
	c, err := wire.Dial(ctx, ln.Addr().String(), wire.ClientOptions{ClientID: "example"})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(12)
	resp, err := c.Do(ctx, req)
	if err != nil {
		panic(err)
	}
	fmt.Println(*resp.(*kmsg.MetadataResponse).ClusterID, resp.GetVersion())
	// Output: example 12
}
