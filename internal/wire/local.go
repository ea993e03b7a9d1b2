package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"runtime/debug"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Local endpoints. When a proxy and its nodes run in one process (`strait dev`), a
// request from one to another need not be encoded, written to a socket, read and
// decoded again: Pool.ServeLocally names the Server that answers an address in this
// process, and Do then calls its handler directly. That is most of the CPU a request
// costs on the way, and so most of the latency on a busy machine.
//
// A local request looks to the handler as if it came over an internal connection: its
// Origin is the one the caller's context carries, Internal is set, and the Server's
// Observe sees it. Its body is the caller's request, which neither side may change
// afterwards. The answer may be a *Spliced (a fetch answered from segment files): a
// caller that relays it to a client keeps the files' bytes off the heap (the client's
// connection sends them with sendfile), and one that wants bytes calls Materialize.

// ServeLocally makes Do answer requests to addr with s's handler, in process.
func (p *Pool) ServeLocally(addr string, s *Server) {
	p.local.Lock()
	defer p.local.Unlock()
	if p.local.servers == nil {
		p.local.servers = make(map[string]*Server)
	}
	p.local.servers[addr] = s
}

// localServer returns the Server that answers addr in process, if any.
func (p *Pool) localServer(addr string) *Server {
	p.local.RLock()
	defer p.local.RUnlock()
	return p.local.servers[addr]
}

// serveLocal answers req, from this process, as the Server would answer it from an
// internal connection.
func (s *Server) serveLocal(ctx context.Context, req kmsg.Request) (resp kmsg.Response, err error) {
	origin, _ := OriginFrom(ctx)
	h := RequestHeader{Key: req.Key(), Version: req.GetVersion(), ClientID: origin.ClientID}
	wr := &Request{Header: h, Body: req, Origin: origin, Internal: true}
	ctx, done := s.observe(WithOrigin(ctx, origin), wr)
	defer func() {
		if p := recover(); p != nil {
			resp, err = nil, fmt.Errorf("wire: handler panic on local %s: %v\n%s", kmsg.NameForKey(h.Key), p, debug.Stack())
		}
		done(0, 0, err)
	}()
	resp, err = s.Handler.ServeKafka(ctx, wr)
	if err != nil {
		return nil, fmt.Errorf("wire: local %s: %w", kmsg.NameForKey(h.Key), err)
	}
	if resp != nil {
		resp.SetVersion(h.Version)
	}
	return resp, nil
}

// Materialize turns a *Spliced answer into an ordinary one, its placeholders replaced by
// the files' bytes, and releases its files. Any other answer is returned as it is.
func Materialize(resp kmsg.Response) (kmsg.Response, error) {
	sp, ok := resp.(*Spliced)
	if !ok {
		return resp, nil
	}
	if sp.Release != nil {
		defer sp.Release()
	}
	fetch, ok := sp.Response.(*kmsg.FetchResponse)
	if !ok {
		return nil, fmt.Errorf("wire: materialize a spliced %s: only Fetch answers carry file ranges", kmsg.NameForKey(sp.Key()))
	}
	for i := range fetch.Topics {
		for j := range fetch.Topics[i].Partitions {
			p := &fetch.Topics[i].Partitions[j]
			idx, ok := PlaceholderIndex(p.RecordBatches)
			if !ok {
				continue
			}
			if idx >= len(sp.Ranges) {
				return nil, fmt.Errorf("wire: materialize: placeholder %d of %d ranges", idx, len(sp.Ranges))
			}
			total, err := rangesLength(sp.Ranges[idx])
			if err != nil {
				return nil, err
			}
			b := make([]byte, total)
			at := 0
			for _, r := range sp.Ranges[idx] {
				if err := readRange(b[at:at+int(r.Length)], r); err != nil {
					return nil, err
				}
				at += int(r.Length)
			}
			p.RecordBatches = b
		}
	}
	return fetch, nil
}

// PlaceholderIndex reports whether b is a Placeholder, and of which range list.
func PlaceholderIndex(b []byte) (int, bool) {
	if len(b) != markerLen || !bytes.Equal(b[:markerPrefixLen], markerPrefix[:]) {
		return 0, false
	}
	return int(binary.BigEndian.Uint32(b[markerPrefixLen:])), true
}
