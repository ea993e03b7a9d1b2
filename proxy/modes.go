package proxy

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/strait-io/strait/internal/wire"
	"github.com/strait-io/strait/routing"
)

// Mode is what a proxy tells clients the cluster looks like (docs/architecture.md, "Proxy modes").
type Mode string

const (
	// Forward lists the live proxies as the brokers and spreads partition leadership
	// over them by rendezvous hashing; each proxy forwards to the real leader node.
	Forward Mode = "forward"
	// Sidecar lists this proxy alone, as leader of every partition and coordinator of
	// every group: an application's whole cluster is its local proxy.
	Sidecar Mode = "sidecar"
	// Redirect lists the nodes as leaders, so clients produce and fetch straight to
	// them; proxies keep bootstrap, metadata, admin and groups.
	Redirect Mode = "redirect"
)

// ParseMode checks a mode's name.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Forward, Sidecar, Redirect:
		return m, nil
	case "":
		return Forward, nil
	}
	return "", fmt.Errorf("proxy mode %q: want forward, sidecar or redirect", s)
}

// memberPoll is how often a proxy reads which proxies are live. Lease renewals move
// no metadata version, so the cached view cannot tell; a proxy that died leaves
// Metadata within its lease's TTL and one poll.
const memberPoll = time.Second

// members is the live proxies as last read from the Store.
type members struct {
	live atomic.Pointer[[]routing.Proxy]
}

// watchMembers keeps p.members current until the proxy closes.
func (p *Proxy) watchMembers() {
	t := time.NewTicker(memberPoll)
	defer t.Stop()
	for {
		p.readMembers()
		select {
		case <-p.closed:
			return
		case <-t.C:
		}
	}
}

func (p *Proxy) readMembers() {
	ctx, cancel := context.WithTimeout(context.Background(), memberPoll)
	defer cancel()
	snap, err := p.store.Snapshot(ctx)
	if err != nil {
		p.logger.Debug("reading the live proxies failed; keeping the last list", "err", err)
		return
	}
	live := routing.LiveProxies(snap, time.Now())
	p.members.live.Store(&live)
}

// liveProxies returns the live proxies, this one always among them (it is answering),
// in id order. Before the first read of the Store it is every registered proxy.
func (p *Proxy) liveProxies(snap *routing.Snapshot) []routing.Proxy {
	var live []routing.Proxy
	if l := p.members.live.Load(); l != nil {
		live = *l
	} else {
		for _, px := range snap.Proxies {
			live = append(live, px)
		}
	}
	self := p.self()
	out := []routing.Proxy{self}
	for _, px := range live {
		if px.ID != self.ID {
			out = append(out, px)
		}
	}
	slices.SortFunc(out, func(a, b routing.Proxy) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// self is this proxy as it registers itself.
func (p *Proxy) self() routing.Proxy {
	return routing.Proxy{ID: p.cfg.BrokerID, Addr: p.cfg.AdvertisedAddr, Rack: p.cfg.Rack, Listeners: p.cfg.Listeners}
}

// listenerOf is the listener the request's client connected on (its origin's).
func listenerOf(ctx context.Context) string {
	o, _ := wire.OriginFrom(ctx)
	return o.Listener
}

// broker is a broker as clients see it.
type broker struct {
	id   int32
	host string
	port int32
	rack *string
}

// brokers lists the brokers clients are told of, in id order: the live proxies in
// forward mode, this proxy alone as a sidecar, and the nodes and live proxies in
// redirect mode. Clients must find a group's coordinator among them (franz-go looks the
// FindCoordinator answer up by node id), and it may be another proxy.
//
// Each is named by its address on the listener the client connected on, as Kafka
// does; a proxy without that listener is left out, since the client could not speak
// to it, while a node without it keeps its one address (nodes have one listener).
func (p *Proxy) brokers(snap *routing.Snapshot, listener string) []broker {
	var out []broker
	switch p.cfg.Mode {
	case Sidecar:
		addr, _ := p.self().AdvertisedAddr(listener)
		out = appendBroker(out, p.cfg.BrokerID, addr, p.cfg.Rack)
	case Redirect:
		for _, id := range snap.NodeIDs() {
			n := snap.Nodes[id]
			addr, ok := n.AdvertisedAddr(listener)
			if !ok {
				addr = n.Addr
			}
			out = appendBroker(out, n.ID, addr, n.Rack)
		}
		fallthrough
	default:
		for _, px := range p.liveProxies(snap) {
			if addr, ok := px.AdvertisedAddr(listener); ok {
				out = appendBroker(out, px.ID, addr, px.Rack)
			}
		}
	}
	slices.SortFunc(out, func(a, b broker) int { return cmp.Compare(a.id, b.id) })
	return out
}

func appendBroker(out []broker, id int32, addr, rack string) []broker {
	host, portText, err := net.SplitHostPort(addr)
	port, perr := strconv.ParseInt(portText, 10, 32)
	if err != nil || perr != nil {
		return out
	}
	b := broker{id: id, host: host, port: int32(port)}
	if rack != "" {
		b.rack = &rack
	}
	return append(out, b)
}

// leaders decides which broker clients are told leads each partition of a snapshot's
// topics: in forward mode a live proxy chosen by rendezvous hashing, preferring those
// in this proxy's rack; as a sidecar this proxy; in redirect mode the leader node.
// It also names the replicas and ISR by listed brokers (see replicas).
type leaders struct {
	mode       Mode
	self       int32
	candidates []int32 // forward mode: the proxies to spread leadership over
	listed     []int32 // forward and sidecar modes: the brokers listed, in id order
}

func (p *Proxy) leaders(snap *routing.Snapshot) leaders {
	l := leaders{mode: p.cfg.Mode, self: p.cfg.BrokerID}
	switch l.mode {
	case Redirect:
		return l
	case Sidecar:
		l.listed = []int32{l.self}
		return l
	}
	live := p.liveProxies(snap)
	for _, px := range live {
		l.listed = append(l.listed, px.ID)
	}
	for _, px := range live {
		if p.cfg.Rack != "" && px.Rack == p.cfg.Rack {
			l.candidates = append(l.candidates, px.ID)
		}
	}
	if len(l.candidates) == 0 { // no rack, or none in it but this one's peers elsewhere
		for _, px := range live {
			l.candidates = append(l.candidates, px.ID)
		}
	}
	return l
}

// of returns the broker to name as the leader of partition index of topic, or -1.
func (l leaders) of(topic routing.TopicID, p routing.Partition) int32 {
	switch {
	case p.Leader < 0:
		return -1
	case l.mode == Sidecar:
		return l.self
	case l.mode == Redirect:
		return p.Leader
	}
	return rendezvous(l.candidates, topic, p.Index)
}

// rendezvous picks, among proxies, the one with the highest hash of (proxy, topic,
// partition): every proxy computes the same choice from the same live set, and a proxy
// joining or leaving moves only the partitions it wins or held.
func rendezvous(proxies []int32, topic routing.TopicID, partition int32) int32 {
	best, bestScore := int32(-1), uint64(0)
	var key [16 + 4 + 4]byte
	copy(key[:16], topic[:])
	binary.BigEndian.PutUint32(key[16:], uint32(partition))
	for _, id := range proxies {
		binary.BigEndian.PutUint32(key[20:], uint32(id))
		h := fnv.New64a()
		h.Write(key[:])
		if score := mix64(h.Sum64()); best < 0 || score > bestScore {
			best, bestScore = id, score
		}
	}
	return best
}

// mix64 spreads every input bit over the output (a 64-bit finalizer); FNV alone lets
// the last bytes, which name the proxy, move few bits, which would bias the choice.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// replicas returns the partition's replicas and ISR as clients are told them, given
// the leader they are told (of's answer). In redirect mode the nodes are listed
// brokers, so they are the real node ids. In forward and sidecar modes only proxies are
// listed, and clients (librdkafka, sarama, Kafka's admin tools) look every replica id up
// among the brokers, so each node is named by a listed proxy instead: the real leader by
// the advertised leader, the other replicas, in order, by the proxies that follow it in
// id order (wrapping around). A node keeps its proxy within the answer, so the ISR is the
// ISR's nodes' proxies and an under-replicated partition still shows as one. Replicas
// past the number of listed proxies are left out: naming a proxy twice would read as a
// replica set with a duplicate, which clients reject.
func (l leaders) replicas(p routing.Partition, leader int32) (replicas, isr []int32) {
	if l.mode == Redirect {
		return p.Replicas, p.ISR
	}
	named := l.nodesToBrokers(p, leader)
	replicas = make([]int32, 0, len(named))
	for _, node := range p.Replicas {
		if b, ok := named[node]; ok {
			replicas = append(replicas, b)
		}
	}
	isr = make([]int32, 0, len(p.ISR))
	for _, node := range p.ISR {
		if b, ok := named[node]; ok {
			isr = append(isr, b)
		}
	}
	return replicas, isr
}

// nodesToBrokers pairs the partition's replica nodes with listed brokers: the leader
// node with leader, then the other replicas, in replica order, with the brokers after
// leader in id order. A leaderless partition starts at a broker picked by its index,
// so the naming still spreads.
func (l leaders) nodesToBrokers(p routing.Partition, leader int32) map[int32]int32 {
	named := make(map[int32]int32, len(p.Replicas))
	if len(l.listed) == 0 {
		return named
	}
	start := slices.Index(l.listed, leader)
	if start < 0 {
		start = int(p.Index) % len(l.listed)
	}
	order := p.Replicas
	if p.HasReplica(p.Leader) && slices.Contains(l.listed, leader) {
		order = append([]int32{p.Leader}, p.Replicas...)
	}
	next := 0
	for _, node := range order {
		if _, done := named[node]; done {
			continue
		}
		if next == len(l.listed) {
			break
		}
		named[node] = l.listed[(start+next)%len(l.listed)]
		next++
	}
	return named
}
