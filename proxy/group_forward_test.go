package proxy

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-io/strait/coordinator"
	"github.com/strait-io/strait/internal/wire"
	"github.com/strait-io/strait/routing"
)

// TestSidecarForwardsGroupRequests: an application that knows only its sidecar joins a
// group, consumes and commits, while the group's coordinator lease is held by another
// proxy: the sidecar names itself coordinator and forwards every group request to the
// proxy that coordinates the group (docs/architecture.md, "Proxy modes").
func TestSidecarForwardsGroupRequests(t *testing.T) {
	c := startCluster(t)
	const topic, group, records = "sidecar-in", "sidecar-group", 30
	c.createTopic(t, topic, 2, nil)

	ln := listen(t)
	controller := routing.NewController(c.store, routing.ControllerConfig{}, discardLogger())
	sidecar, err := New(Config{BrokerID: 1000, AdvertisedAddr: ln.Addr().String(), Mode: Sidecar}, c.cache, c.store, controller, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sidecar.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.store.RegisterProxy(ctx, routing.Proxy{ID: 1000, Addr: ln.Addr().String()}); err != nil {
		t.Fatal(err)
	}
	if err := sidecar.StartGroups(ctx, coordinator.Config{Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	serveWire(t, &wire.Server{Handler: sidecar, Logger: discardLogger(), Versions: APIs().Versions}, ln)
	if holder := c.cache.Snapshot().Leases[coordinatorLeaseName(0)].Holder; holder != "proxy-0" {
		t.Fatalf("coordinator lease held by %q; the test needs proxy 0 to hold it", holder)
	}

	app := func(opts ...kgo.Opt) *kgo.Client {
		opts = append([]kgo.Opt{kgo.SeedBrokers(ln.Addr().String()), kgo.FetchMaxWait(300 * time.Millisecond)}, opts...)
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	producer := app(kgo.DefaultProduceTopic(topic))
	for i := range records {
		if err := producer.ProduceSync(ctx, kgo.StringRecord(fmt.Sprint(i))).FirstErr(); err != nil {
			t.Fatalf("produce through the sidecar: %v", err)
		}
	}
	consumer := app(kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit())
	for n := 0; n < records; {
		fs := consumer.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records through the sidecar as a group member", n, records)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s-%d: %v", topic, p, err) })
		n += fs.NumRecords()
	}
	if err := consumer.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit through the sidecar: %v", err)
	}

	// The commits landed at the coordinator, proxy 0, and the sidecar answers for it.
	for name, addr := range map[string]string{"coordinator": c.proxyAddr, "sidecar": ln.Addr().String()} {
		adm := kadm.NewClient(app(kgo.SeedBrokers(addr)))
		offsets, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			t.Fatalf("fetch offsets through the %s: %v", name, err)
		}
		total := int64(0)
		offsets.Each(func(o kadm.OffsetResponse) { total += o.At })
		if total != records {
			t.Errorf("offsets committed for %s, read through the %s, sum to %d; want %d", group, name, total, records)
		}
	}
	if described, err := kadm.NewClient(app()).DescribeGroups(ctx, group); err != nil || described[group].State != "Stable" {
		t.Errorf("describe %s through the sidecar: %v, state %q; want Stable", group, err, described[group].State)
	}
}

// TestDrainHandsLeasesOver: a proxy that drains releases its coordinator leases, and
// another proxy takes them at once (it watches the view for a free lease) rather than
// a lease TTL later; the drained proxy takes none back.
func TestDrainHandsLeasesOver(t *testing.T) {
	c := startCluster(t)
	ln := listen(t)
	controller := routing.NewController(c.store, routing.ControllerConfig{}, discardLogger())
	other, err := New(Config{BrokerID: 1000, AdvertisedAddr: ln.Addr().String()}, c.cache, c.store, controller, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.store.RegisterProxy(ctx, routing.Proxy{ID: 1000, Addr: ln.Addr().String()}); err != nil {
		t.Fatal(err)
	}
	if err := other.StartGroups(ctx, coordinator.Config{Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	if holder := c.cache.Snapshot().Leases[coordinatorLeaseName(0)].Holder; holder != "proxy-0" {
		t.Fatalf("lease held by %q before the drain; want proxy-0", holder)
	}
	start := time.Now()
	c.proxy.Drain(ctx)
	for c.cache.Snapshot().Leases[coordinatorLeaseName(0)].Holder != "proxy-1000" {
		if time.Since(start) > 3*time.Second {
			t.Fatalf("proxy 1000 did not take the released lease within 3 s (the lease TTL is %v)", coordinatorLeaseTTL)
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.proxy.keepLeases(ctx, c.proxy.groups.Load(), 1)
	if holder := c.cache.Snapshot().Leases[coordinatorLeaseName(0)].Holder; holder != "proxy-1000" {
		t.Errorf("after the drain the lease went back to %q", holder)
	}
}
