package proxy

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/wire"
	"github.com/strait-io/strait/partitionlog/node"
)

// TestAPITablesWithinKmsg holds each handler table to what kmsg can encode and decode:
// advertising a version kmsg does not know would make the server refuse what it promised.
func TestAPITablesWithinKmsg(t *testing.T) {
	for name, table := range map[string]wire.APITable{"proxy": APIs(), "node": node.APIs} {
		for key, r := range table {
			req := kmsg.RequestForKey(key)
			if req == nil {
				t.Errorf("%s: key %d is not a request kmsg knows", name, key)
				continue
			}
			if r.Min < 0 || r.Min > r.Max {
				t.Errorf("%s: %s range %d..%d is empty or negative", name, kmsg.NameForKey(key), r.Min, r.Max)
			}
			if r.Max > req.MaxVersion() {
				t.Errorf("%s: %s advertises v%d, kmsg knows up to v%d", name, kmsg.NameForKey(key), r.Max, req.MaxVersion())
			}
		}
	}
}

// TestApiVersionsListsTheTable: the ApiVersions answer (KIP-35, KIP-511 for v3+) lists
// exactly the handler table, at every ApiVersions version served, with Produce listed
// from v0 as wire.Advertised says.
func TestApiVersionsListsTheTable(t *testing.T) {
	c := startCluster(t)
	for _, tc := range []struct {
		name  string
		addr  string
		table wire.APITable
	}{
		{"proxy", c.proxyAddr, APIs()},
		{"node", c.nodes[0].addr, node.APIs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := dial(t, tc.addr)
			for v := tc.table[18].Min; v <= tc.table[18].Max; v++ {
				req := kmsg.NewPtrApiVersionsRequest()
				req.Version = v
				req.ClientSoftwareName, req.ClientSoftwareVersion = "strait-test", "1.0"
				resp := do[*kmsg.ApiVersionsResponse](t, cl, req)
				if resp.ErrorCode != 0 {
					t.Fatalf("v%d: error %d", v, resp.ErrorCode)
				}
				got := make(wire.APITable)
				for _, k := range resp.ApiKeys {
					if _, dup := got[k.ApiKey]; dup {
						t.Errorf("v%d: key %d listed twice", v, k.ApiKey)
					}
					got[k.ApiKey] = wire.APIRange{Min: k.MinVersion, Max: k.MaxVersion}
				}
				if len(got) != len(tc.table) {
					t.Errorf("v%d: %d keys advertised, table has %d", v, len(got), len(tc.table))
				}
				for k, served := range tc.table {
					if want := wire.Advertised(k, served); got[k] != want {
						t.Errorf("v%d: %s advertised %+v, table says %+v (listed as %+v)", v, kmsg.NameForKey(k), got[k], served, want)
					}
				}
			}
		})
	}
}

// TestEveryAdvertisedVersionIsAnswered sends every advertised (key, version) as a
// default request: each must get a response, not a closed connection (Kafka answers
// any version it advertises in ApiVersions).
func TestEveryAdvertisedVersionIsAnswered(t *testing.T) {
	c := startCluster(t)
	for _, tc := range []struct {
		name  string
		addr  string
		table wire.APITable
	}{
		{"proxy", c.proxyAddr, APIs()},
		{"node", c.nodes[0].addr, node.APIs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for key, r := range tc.table {
				cl := dial(t, tc.addr)
				for v := r.Min; v <= r.Max; v++ {
					if key == wire.SASLAuthenticateKey && v > r.Min {
						cl = dial(t, tc.addr) // answered ILLEGAL_SASL_STATE, then closed, as Kafka does
					}
					req := defaultRequest(key, v)
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					resp, err := cl.Do(ctx, req)
					cancel()
					if err != nil {
						t.Errorf("%s v%d: %v", kmsg.NameForKey(key), v, err)
						cl = dial(t, tc.addr) // the connection is gone; go on with a new one
						continue
					}
					if resp == nil || resp.Key() != key || resp.GetVersion() != v {
						t.Errorf("%s v%d: answered with %#v", kmsg.NameForKey(key), v, resp)
					}
				}
			}
		})
	}
}

// defaultRequest is kmsg's default request for key at version v; a Produce asks for
// acks=1 so that it is answered.
func defaultRequest(key, v int16) kmsg.Request {
	req := kmsg.RequestForKey(key)
	if d, ok := req.(interface{ Default() }); ok {
		d.Default()
	}
	req.SetVersion(v)
	if p, ok := req.(*kmsg.ProduceRequest); ok {
		p.Acks = 1
	}
	return req
}
