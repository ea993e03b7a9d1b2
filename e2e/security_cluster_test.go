package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Security in a cluster as deployed: a real redis-server, `strait node` and `strait
// proxy` processes.

const (
	// saslUsers are created by the proxies at start; alice is a super user.
	saslUsers  = "alice:alice-secret,bob:bob-secret"
	superUsers = "User:alice"
	// aclPoll is how often a test looks for an ACL change to apply; aclPatience is when
	// it gives up (the issue asks for a second; the margin keeps a loaded machine from
	// failing the test, and the delays are logged).
	aclPoll     = 50 * time.Millisecond
	aclPatience = 5 * time.Second
)

// brokerAt returns the client's broker whose address is addr.
func brokerAt(t *testing.T, cl *kgo.Client, addr string) *kgo.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	meta, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	for _, b := range meta.Brokers {
		if net.JoinHostPort(b.Host, fmt.Sprint(b.Port)) == addr {
			return cl.Broker(int(b.NodeID))
		}
	}
	t.Fatalf("no broker at %s in %+v", addr, meta.Brokers)
	return nil
}

// describeCode asks broker for topic's metadata and returns the topic's error code.
func describeCode(ctx context.Context, b *kgo.Broker, topic string) (int16, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = []kmsg.MetadataRequestTopic{rt}
	resp, err := b.Request(ctx, req)
	if err != nil {
		return 0, err
	}
	topics := resp.(*kmsg.MetadataResponse).Topics
	if len(topics) != 1 {
		return 0, fmt.Errorf("metadata answered %d topics", len(topics))
	}
	return topics[0].ErrorCode, nil
}

// waitForACL polls check every aclPoll until it reports done, and returns how long that
// took from start; it fails the test after aclPatience.
func waitForACL(t *testing.T, start time.Time, what string, check func(context.Context) (bool, error)) time.Duration {
	t.Helper()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		done, err := check(ctx)
		cancel()
		if done {
			return time.Since(start)
		}
		if time.Since(start) > aclPatience {
			t.Fatalf("%s: not after %v (last error %v)", what, aclPatience, err)
		}
		time.Sleep(aclPoll)
	}
}

// grantACLs creates the ACLs of b through adm, failing the test on any error.
func grantACLs(t *testing.T, adm *kadm.Client, b *kadm.ACLBuilder) {
	t.Helper()
	results, err := adm.CreateACLs(context.Background(), b)
	for _, r := range results {
		err = errors.Join(err, r.Err)
	}
	if err != nil {
		t.Fatalf("CreateAcls: %v", err)
	}
}

// revokeACLs deletes the ACLs b matches through adm, failing the test on any error.
func revokeACLs(t *testing.T, adm *kadm.Client, b *kadm.ACLBuilder) {
	t.Helper()
	results, err := adm.DeleteACLs(context.Background(), b)
	for _, r := range results {
		err = errors.Join(err, r.Err)
	}
	if err != nil {
		t.Fatalf("DeleteAcls: %v", err)
	}
}

// TestSecurityACLPropagation: an ACL granted with kadm through proxy A applies on proxy B
// within a second, and so does its deletion; B is polled every 50 ms and the delays are
// logged.
func TestSecurityACLPropagation(t *testing.T) {
	c := StartCluster(t, ClusterNodes(1), Proxies(2), ClusterListeners("", "SASL_PLAINTEXT"),
		ProxyArgs("--sasl-users", saslUsers, "--super-users", superUsers))
	a, b := c.Proxies[0].Addr(), c.Proxies[1].Addr()
	alice := scramClientOver(t, nil, a, "alice", "alice-secret")
	adm := kadm.NewClient(alice)
	onB := brokerAt(t, scramClientOver(t, nil, b, "bob", "bob-secret"), b)

	for round := range 3 {
		topic := fmt.Sprintf("propagated-%d", round)
		createTopic(t, adm, topic, 1, 30*time.Second)
		visible := func(want bool) func(context.Context) (bool, error) {
			return func(ctx context.Context) (bool, error) {
				code, err := describeCode(ctx, onB, topic)
				return err == nil && (code == 0) == want && (want || code == kerr.TopicAuthorizationFailed.Code), err
			}
		}
		if done, err := visible(false)(context.Background()); !done {
			t.Fatalf("bob sees %s on proxy B before any ACL: %v", topic, err)
		}

		acl := kadm.NewACLs().Allow("User:bob").Topics(topic).Operations(kadm.OpRead)
		start := time.Now()
		grantACLs(t, adm, acl)
		answered := time.Since(start)
		granted := waitForACL(t, start, "the ACL granted through proxy A applies on proxy B", visible(true))

		del := kadm.NewACLs().Allow("User:bob").AllowHosts().Topics(topic).Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral)
		start = time.Now()
		revokeACLs(t, adm, del)
		revoked := waitForACL(t, start, "the ACL deleted through proxy A stops applying on proxy B", visible(false))
		t.Logf("round %d: CreateAcls answered by A in %v; grant applied on B %v after it was sent; revocation applied on B after %v",
			round, answered.Round(time.Millisecond), granted.Round(time.Millisecond), revoked.Round(time.Millisecond))
	}
}

// TestSecurityMTLSBetweenProxyAndNodes: nodes whose listener requires client
// certificates serve the proxy (and each other: replication factor 2) over mTLS, so
// produce and consume through the proxy work, while a connection to a node without a
// certificate, or with one of another CA, is refused.
func TestSecurityMTLSBetweenProxyAndNodes(t *testing.T) {
	p := newPKI(t)
	c := StartCluster(t, ClusterNodes(2), ClusterListeners("SSL", "SASL_SSL"),
		ClusterArgs("--tls-cert", p.certFile, "--tls-key", p.keyFile, "--tls-ca", p.caFile),
		NodeArgs("--tls-client-auth", "required"),
		ProxyArgs("--sasl-users", saslUsers, "--super-users", superUsers, "--default-replication-factor", "2"))
	const topic = "mtls-orders"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	alice := scramClient(t, p, c.Proxies[0].Addr(), "alice", "alice-secret", kgo.DefaultProduceTopic(topic),
		kgo.AllowAutoTopicCreation(), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for i := range 10 {
		if err := alice.ProduceSync(ctx, kgo.StringRecord(fmt.Sprint("m-", i))).FirstErr(); err != nil {
			t.Fatalf("produce through the proxy: %v", err)
		}
	}
	consumeAll(t, alice, 10, 20*time.Second)

	foreign := newPKI(t)
	foreignCert, err := tls.LoadX509KeyPair(foreign.certFile, foreign.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	node := c.Nodes[0]
	for _, tc := range []struct {
		name  string
		certs []tls.Certificate
	}{{"no certificate", nil}, {"a certificate of another CA", []tls.Certificate{foreignCert}}} {
		err := tlsRequest(node.Addr(), &tls.Config{RootCAs: p.pool, Certificates: tc.certs})
		if err == nil {
			t.Fatalf("%s: the node answered", tc.name)
		}
		t.Logf("%s: refused: %v", tc.name, err)
	}
	if err := plainRequest(node.Addr()); err == nil {
		t.Fatal("plaintext: the node answered")
	}
	if !strings.Contains(node.Log(), "audit: authentication failed") {
		t.Fatalf("the node logged no audit line for the refused connections")
	}
}

// apiVersionsFrame is an ApiVersions v0 request (correlation id 1, client id "x").
var apiVersionsFrame = []byte{0, 0, 0, 11, 0, 18, 0, 0, 0, 0, 0, 1, 0, 1, 'x'}

// tlsRequest connects over TLS with cfg and sends an ApiVersions request; it returns
// nil only if an answer comes back.
func tlsRequest(addr string, cfg *tls.Config) error {
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	return exchange(conn)
}

// plainRequest sends an ApiVersions request without TLS.
func plainRequest(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	return exchange(conn)
}

func exchange(conn net.Conn) error {
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(apiVersionsFrame); err != nil {
		return err
	}
	size := make([]byte, 4)
	if _, err := io.ReadFull(conn, size); err != nil {
		return err
	}
	if size[0] != 0 || size[1] != 0 {
		return errors.New("an answer of no Kafka shape")
	}
	return nil
}

// TestSecurityRedirectNodeEnforcesACLs: in redirect mode clients fetch from nodes
// directly, and the node applies the same ACLs as the proxies: bob, who may describe
// the topic but not read it, gets TOPIC_AUTHORIZATION_FAILED from the node for a Fetch
// and a Produce; once READ is granted through the proxy, the node serves his fetch.
func TestSecurityRedirectNodeEnforcesACLs(t *testing.T) {
	p := newPKI(t)
	c := StartCluster(t, ClusterNodes(1), ClusterListeners("SASL_SSL", "SASL_SSL"),
		ClusterArgs("--tls-cert", p.certFile, "--tls-key", p.keyFile, "--tls-ca", p.caFile, "--super-users", superUsers),
		ProxyArgs("--mode", "redirect", "--sasl-users", saslUsers))
	const topic = "redirect-guarded"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	proxy := c.Proxies[0].Addr()
	alice := scramClient(t, p, proxy, "alice", "alice-secret", kgo.DefaultProduceTopic(topic))
	adm := kadm.NewClient(alice)
	createTopic(t, adm, topic, 1, 30*time.Second)
	for i := range 3 {
		if err := alice.ProduceSync(ctx, kgo.StringRecord(fmt.Sprint("r-", i))).FirstErr(); err != nil {
			t.Fatalf("alice produces: %v", err)
		}
	}
	grantACLs(t, adm, kadm.NewACLs().Allow("User:bob").Topics(topic).Operations(kadm.OpDescribe))

	bob := scramClient(t, p, proxy, "bob", "bob-secret")
	node := brokerAt(t, bob, c.Nodes[0].Addr())
	// fetch asks the node itself for the topic, as a consumer in redirect mode does.
	fetch := func(ctx context.Context) (code int16, bytes int, err error) {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID, req.MaxWaitMillis, req.MaxBytes, req.SessionEpoch = -1, 100, 1<<20, -1
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.PartitionMaxBytes, rp.CurrentLeaderEpoch, rp.LastFetchedEpoch = 1<<20, -1, -1
		req.Topics = []kmsg.FetchRequestTopic{{Topic: topic, Partitions: []kmsg.FetchRequestTopicPartition{rp}}}
		resp, err := node.Request(ctx, req)
		if err != nil {
			return 0, 0, err
		}
		fr := resp.(*kmsg.FetchResponse)
		if fr.ErrorCode != 0 || len(fr.Topics) != 1 || len(fr.Topics[0].Partitions) != 1 {
			return 0, 0, fmt.Errorf("fetch answer %+v", fr)
		}
		got := fr.Topics[0].Partitions[0]
		return got.ErrorCode, len(got.RecordBatches), nil
	}
	code, n, err := fetch(ctx)
	if err != nil || code != kerr.TopicAuthorizationFailed.Code || n != 0 {
		t.Fatalf("bob's fetch from the node without READ: %v, code %v, %d bytes; want TOPIC_AUTHORIZATION_FAILED and nothing",
			err, kerr.ErrorForCode(code), n)
	}
	produce := kmsg.NewPtrProduceRequest()
	produce.Acks, produce.TimeoutMillis = -1, 5000
	produce.Topics = []kmsg.ProduceRequestTopic{{Topic: topic, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: oneRecordBatch([]byte("refused"))}}}}
	resp, err := node.Request(ctx, produce)
	if err != nil {
		t.Fatalf("bob's produce to the node: %v", err)
	}
	if code := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode; code != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("bob's produce to the node without WRITE: %v, want TOPIC_AUTHORIZATION_FAILED", kerr.ErrorForCode(code))
	}
	if !strings.Contains(c.Nodes[0].Log(), "audit: operation denied") {
		t.Fatal("the node logged no audit line for the denials")
	}

	start := time.Now()
	grantACLs(t, adm, kadm.NewACLs().Allow("User:bob").Topics(topic).Operations(kadm.OpRead))
	took := waitForACL(t, start, "READ granted through the proxy applies on the node", func(ctx context.Context) (bool, error) {
		code, n, err := fetch(ctx)
		return err == nil && code == 0 && n > 0, err
	})
	t.Logf("READ granted through the proxy applied on the node after %v", took.Round(time.Millisecond))
}
