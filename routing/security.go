package routing

import (
	"cmp"
	"encoding/json"
	"errors"
	"slices"
)

// Security metadata: ACL bindings, which every proxy and node applies as soon as they
// change (they are part of the Snapshot, so the version bump and pub/sub that refresh
// caches carry them), and SCRAM credentials, which are read when a client
// authenticates and never spread in snapshots.

// ErrUnknownCredential means a user has no SCRAM credential of that mechanism.
var ErrUnknownCredential = errors.New("no such SCRAM credential")

// ACL is one stored ACL binding, in Kafka's model with Kafka's enum values
// (internal/acl decides with them).
type ACL struct {
	ResourceType int8   `json:"resource_type"`
	ResourceName string `json:"resource_name"`
	PatternType  int8   `json:"pattern_type"`
	Principal    string `json:"principal"`
	Host         string `json:"host"`
	Operation    int8   `json:"operation"`
	Permission   int8   `json:"permission"`
}

// key is an ACL's identity in a store: its JSON, which lists the fields in one order.
func (a ACL) key() string {
	b, _ := json.Marshal(a) // a struct of strings and ints always encodes
	return string(b)
}

func compareACLs(a, b ACL) int {
	return cmp.Or(cmp.Compare(a.ResourceType, b.ResourceType), cmp.Compare(a.ResourceName, b.ResourceName),
		cmp.Compare(a.PatternType, b.PatternType), cmp.Compare(a.Principal, b.Principal), cmp.Compare(a.Host, b.Host),
		cmp.Compare(a.Operation, b.Operation), cmp.Compare(a.Permission, b.Permission))
}

// sortACLs orders ACLs so that snapshots of one state list them alike.
func sortACLs(acls []ACL) []ACL {
	slices.SortFunc(acls, compareACLs)
	return acls
}

// ScramCredential is what the cluster keeps of one user's password for one SCRAM
// mechanism (RFC 5802): salted keys, never the password.
type ScramCredential struct {
	User       string `json:"user"`
	Mechanism  string `json:"mechanism"` // SCRAM-SHA-256 or SCRAM-SHA-512
	Salt       []byte `json:"salt"`
	StoredKey  []byte `json:"stored_key"`
	ServerKey  []byte `json:"server_key"`
	Iterations int    `json:"iterations"`
}

func scramKey(user, mechanism string) string { return user + "\x00" + mechanism }

func sortScram(creds []ScramCredential) []ScramCredential {
	slices.SortFunc(creds, func(a, b ScramCredential) int {
		return cmp.Or(cmp.Compare(a.User, b.User), cmp.Compare(a.Mechanism, b.Mechanism))
	})
	return creds
}
