package offsets

import (
	"reflect"
	"testing"
	"time"
)

func commitAt(o int64, at time.Time) Commit {
	return Commit{Offset: o, LeaderEpoch: 1, CommitTime: at}
}

// TestTableReplay replays a log through Decode: later records win, tombstones delete,
// group records leave offsets alone.
func TestTableReplay(t *testing.T) {
	var log []byte
	write := func(kvs ...KV) {
		log = append(log, at(int64(len(log)), Batch(kvs, t0))...) // any increasing base works
	}
	write(kv(OffsetCommitRecord("g", "t", 0, commitAt(5, t0))), kv(OffsetCommitRecord("g", "t", 1, commitAt(3, t0))))
	write(kv(OffsetCommitRecord("g", "t", 0, commitAt(7, t1))))
	write(kv(OffsetTombstone("g", "t", 1)), kv(GroupMetadataRecord("g", sampleGroup())))
	write(kv(OffsetCommitRecord("b", "u", 2, commitAt(1, t0))), kv(GroupTombstone("g")))
	write(kv(OffsetCommitRecord("gone", "u", 0, commitAt(1, t0))))
	write(kv(OffsetTombstone("gone", "u", 0)))

	tab := NewTable()
	if _, err := Decode(log, func(_ int64, r Record) { tab.Apply(r) }); err != nil {
		t.Fatal(err)
	}
	if c, ok := tab.Get("g", "t", 0); !ok || c != commitAt(7, t1) {
		t.Fatalf("g t/0 = %+v %v", c, ok)
	}
	if _, ok := tab.Get("g", "t", 1); ok {
		t.Fatal("tombstoned offset survived")
	}
	if got, want := tab.Groups(), []string{"b", "g"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Groups = %v, want %v", got, want)
	}
	want := map[string]map[int32]Commit{"t": {0: commitAt(7, t1)}}
	g := tab.Group("g")
	if !reflect.DeepEqual(g, want) {
		t.Fatalf("Group = %+v", g)
	}
	g["t"][0] = Commit{} // a copy
	if c, _ := tab.Get("g", "t", 0); c.Offset != 7 {
		t.Fatal("Group returned the table's own map")
	}
	if tab.Group("nope") != nil {
		t.Fatal("unknown group")
	}

	tab.DeletePartition("b", "u", 2)
	tab.Delete("g")
	if len(tab.Groups()) != 0 {
		t.Fatalf("groups left: %v", tab.Groups())
	}
}

func TestExpired(t *testing.T) {
	const retention = 7 * 24 * time.Hour
	now := t0.Add(30 * 24 * time.Hour)
	old := now.Add(-retention) // exactly retention ago: expired (>=)
	young := now.Add(-retention + time.Millisecond)
	subscribed := func(topic string) bool { return topic == "live" }

	tab := NewTable()
	put := func(group, topic string, p int32, c Commit) {
		key, value := OffsetCommitRecord(group, topic, p, c)
		if _, err := Decode(Batch([]KV{{key, value}}, now), func(_ int64, r Record) { tab.Apply(r) }); err != nil {
			t.Fatal(err)
		}
	}
	put("g", "live", 0, commitAt(1, old))
	put("g", "live", 1, commitAt(1, young))
	put("g", "dead", 0, commitAt(1, old))
	put("g", "dead", 1, commitAt(1, young))
	put("g", "dead", 2, Commit{Offset: 1, CommitTime: young, ExpireTime: now})                // explicit, due
	put("g", "live", 2, Commit{Offset: 1, CommitTime: old, ExpireTime: now.Add(time.Second)}) // explicit, not due

	tp := func(topic string, p int32) TopicPartition { return TopicPartition{topic, p} }
	for _, tc := range []struct {
		name string
		in   ExpiryInput
		want []TopicPartition
	}{
		{"empty, since unknown: commit time decides",
			ExpiryInput{Group: "g", Empty: true},
			[]TopicPartition{tp("dead", 0), tp("dead", 2), tp("live", 0)}},
		{"empty long ago: commit time is later",
			ExpiryInput{Group: "g", Empty: true, EmptySince: old.Add(-time.Hour)},
			[]TopicPartition{tp("dead", 0), tp("dead", 2), tp("live", 0)}},
		{"empty recently: nothing by retention, explicit expiry still",
			ExpiryInput{Group: "g", Empty: true, EmptySince: young},
			[]TopicPartition{tp("dead", 2)}},
		{"members: only unsubscribed topics",
			ExpiryInput{Group: "g", Subscribed: subscribed},
			[]TopicPartition{tp("dead", 0), tp("dead", 2)}},
		{"members, subscriptions unknown: nothing",
			ExpiryInput{Group: "g"},
			nil},
		{"unknown group",
			ExpiryInput{Group: "other", Empty: true},
			nil},
	} {
		if got := tab.Expired(now, retention, tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// Explicit expiry wins over a young commit and a recent EmptySince alike.
	if got := tab.Expired(now.Add(-time.Millisecond), retention, ExpiryInput{Group: "g", Empty: true, EmptySince: now}); len(got) != 0 {
		t.Errorf("before explicit expiry: %v", got)
	}
}
