package routing

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

// contractACLs: bindings round-trip through snapshots in a stable order, creating
// one twice keeps one, deleting returns only what was stored, and every change
// notifies subscribers (proxies apply ACLs from the pub/sub refresh).
func contractACLs(t *testing.T, s Store) {
	ctx := context.Background()
	changes, cancel := s.Subscribe()
	defer cancel()
	drain(changes, 50*time.Millisecond)
	read := ACL{ResourceType: 2, ResourceName: "orders", PatternType: 3, Principal: "User:alice", Host: "*", Operation: 3, Permission: 3}
	deny := read
	deny.Permission = 2
	prefix := ACL{ResourceType: 3, ResourceName: "app-", PatternType: 4, Principal: "User:bob", Host: "10.0.0.1", Operation: 2, Permission: 3}
	if err := s.CreateACLs(ctx, []ACL{prefix, read, deny}); err != nil {
		t.Fatal(err)
	}
	waitWake(t, changes, "CreateACLs")
	if err := s.CreateACLs(ctx, []ACL{read}); err != nil {
		t.Fatal(err)
	}
	want := []ACL{deny, read, prefix} // by type, name, ..., permission
	if got := mustSnapshot(t, s).ACLs; !reflect.DeepEqual(got, want) {
		t.Fatalf("snapshot ACLs = %+v, want %+v", got, want)
	}
	drain(changes, 50*time.Millisecond)
	deleted, err := s.DeleteACLs(ctx, []ACL{deny, {ResourceType: 2, ResourceName: "never", PatternType: 3, Principal: "User:x", Host: "*", Operation: 3, Permission: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(deleted, []ACL{deny}) {
		t.Fatalf("DeleteACLs returned %+v, want only the stored %+v", deleted, deny)
	}
	waitWake(t, changes, "DeleteACLs")
	if got := mustSnapshot(t, s).ACLs; !reflect.DeepEqual(got, []ACL{read, prefix}) {
		t.Fatalf("after delete, snapshot ACLs = %+v", got)
	}
	if deleted, err := s.DeleteACLs(ctx, []ACL{deny}); err != nil || len(deleted) != 0 {
		t.Fatalf("deleting a deleted ACL: %+v, %v", deleted, err)
	}
}

// contractScramCredentials: credentials are stored per user and mechanism, replaced
// by a second put, listed in order, and deleted once.
func contractScramCredentials(t *testing.T, s Store) {
	ctx := context.Background()
	if _, found, err := s.ScramCredential(ctx, "alice", "SCRAM-SHA-256"); err != nil || found {
		t.Fatalf("unknown credential: found %v, err %v", found, err)
	}
	a256 := ScramCredential{User: "alice", Mechanism: "SCRAM-SHA-256", Salt: []byte("s1"), StoredKey: []byte("k1"), ServerKey: []byte("v1"), Iterations: 4096}
	a512 := ScramCredential{User: "alice", Mechanism: "SCRAM-SHA-512", Salt: []byte("s2"), StoredKey: []byte("k2"), ServerKey: []byte("v2"), Iterations: 8192}
	b256 := ScramCredential{User: "bob", Mechanism: "SCRAM-SHA-256", Salt: []byte("s3"), StoredKey: []byte("k3"), ServerKey: []byte("v3"), Iterations: 4096}
	for _, c := range []ScramCredential{b256, a512, a256} {
		if err := s.PutScramCredential(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	a256.Salt = []byte("s1-new")
	if err := s.PutScramCredential(ctx, a256); err != nil {
		t.Fatal(err)
	}
	got, found, err := s.ScramCredential(ctx, "alice", "SCRAM-SHA-256")
	if err != nil || !found || !reflect.DeepEqual(got, a256) {
		t.Fatalf("ScramCredential = %+v, %v, %v; want %+v", got, found, err, a256)
	}
	all, err := s.ScramCredentials(ctx)
	if err != nil || !reflect.DeepEqual(all, []ScramCredential{a256, a512, b256}) {
		t.Fatalf("ScramCredentials = %+v, %v", all, err)
	}
	if err := s.DeleteScramCredential(ctx, "alice", "SCRAM-SHA-512"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteScramCredential(ctx, "alice", "SCRAM-SHA-512"); !errors.Is(err, ErrUnknownCredential) {
		t.Fatalf("deleting twice: %v, want ErrUnknownCredential", err)
	}
	if _, found, _ := s.ScramCredential(ctx, "alice", "SCRAM-SHA-512"); found {
		t.Fatal("a deleted credential is still found")
	}
}
