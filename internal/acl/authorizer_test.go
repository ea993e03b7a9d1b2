package acl

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func allow(rt ResourceType, name string, pt PatternType, principal, host string, op Operation) Binding {
	return Binding{ResourceType: rt, ResourceName: name, PatternType: pt, Principal: principal, Host: host, Operation: op, Permission: Allow}
}

func deny(rt ResourceType, name string, pt PatternType, principal, host string, op Operation) Binding {
	b := allow(rt, name, pt, principal, host, op)
	b.Permission = Deny
	return b
}

// TestAuthorize holds the decisions to Kafka's StandardAuthorizer (AclAuthorizer's
// rules): super users, allow.everyone.if.no.acl.found=false, deny wins, wildcards,
// prefixes (KIP-290) and implied operations.
func TestAuthorize(t *testing.T) {
	const alice, bob = "User:alice", "User:bob"
	for _, tc := range []struct {
		name      string
		bindings  []Binding
		principal string
		host      string
		op        Operation
		rt        ResourceType
		resource  string
		want      bool
	}{
		{"super user without ACLs", nil, "User:admin", "10.0.0.1", Write, Topic, "t", true},
		{"no ACL on the resource denies", nil, alice, "10.0.0.1", Read, Topic, "t", false},
		{"literal allow", []Binding{allow(Topic, "t", Literal, alice, "*", Read)}, alice, "10.0.0.1", Read, Topic, "t", true},
		{"literal allow is for that name only", []Binding{allow(Topic, "t", Literal, alice, "*", Read)}, alice, "10.0.0.1", Read, Topic, "t2", false},
		{"another principal's allow", []Binding{allow(Topic, "t", Literal, bob, "*", Read)}, alice, "10.0.0.1", Read, Topic, "t", false},
		{"wildcard principal", []Binding{allow(Topic, "t", Literal, "User:*", "*", Read)}, alice, "10.0.0.1", Read, Topic, "t", true},
		{"wildcard resource", []Binding{allow(Topic, "*", Literal, alice, "*", Write)}, alice, "10.0.0.1", Write, Topic, "anything", true},
		{"prefixed pattern", []Binding{allow(Topic, "orders-", Prefixed, alice, "*", Write)}, alice, "10.0.0.1", Write, Topic, "orders-eu", true},
		{"prefixed pattern, other prefix", []Binding{allow(Topic, "orders-", Prefixed, alice, "*", Write)}, alice, "10.0.0.1", Write, Topic, "order", false},
		{"host must match", []Binding{allow(Topic, "t", Literal, alice, "10.0.0.2", Read)}, alice, "10.0.0.1", Read, Topic, "t", false},
		{"host matches", []Binding{allow(Topic, "t", Literal, alice, "10.0.0.1", Read)}, alice, "10.0.0.1", Read, Topic, "t", true},
		{"operation must match", []Binding{allow(Topic, "t", Literal, alice, "*", Write)}, alice, "10.0.0.1", Read, Topic, "t", false},
		{"ALL allows every operation", []Binding{allow(Topic, "t", Literal, alice, "*", All)}, alice, "10.0.0.1", Delete, Topic, "t", true},
		{"READ implies DESCRIBE", []Binding{allow(Topic, "t", Literal, alice, "*", Read)}, alice, "10.0.0.1", Describe, Topic, "t", true},
		{"WRITE implies DESCRIBE", []Binding{allow(Topic, "t", Literal, alice, "*", Write)}, alice, "10.0.0.1", Describe, Topic, "t", true},
		{"DELETE implies DESCRIBE", []Binding{allow(Topic, "t", Literal, alice, "*", Delete)}, alice, "10.0.0.1", Describe, Topic, "t", true},
		{"ALTER implies DESCRIBE", []Binding{allow(Topic, "t", Literal, alice, "*", Alter)}, alice, "10.0.0.1", Describe, Topic, "t", true},
		{"DESCRIBE implies nothing", []Binding{allow(Topic, "t", Literal, alice, "*", Describe)}, alice, "10.0.0.1", Read, Topic, "t", false},
		{"ALTER_CONFIGS implies DESCRIBE_CONFIGS", []Binding{allow(Topic, "t", Literal, alice, "*", AlterConfigs)}, alice, "10.0.0.1", DescribeConfigs, Topic, "t", true},
		{"deny wins over allow", []Binding{allow(Topic, "t", Literal, alice, "*", Read), deny(Topic, "t", Literal, alice, "*", Read)}, alice, "10.0.0.1", Read, Topic, "t", false},
		{"wildcard deny wins over literal allow", []Binding{allow(Topic, "t", Literal, alice, "*", Read), deny(Topic, "*", Literal, "User:*", "*", Read)}, alice, "10.0.0.1", Read, Topic, "t", false},
		{"prefixed deny wins", []Binding{allow(Topic, "*", Literal, alice, "*", All), deny(Topic, "secret-", Prefixed, alice, "*", All)}, alice, "10.0.0.1", Write, Topic, "secret-plans", false},
		{"deny of READ leaves DESCRIBE to a WRITE allow", []Binding{allow(Topic, "t", Literal, alice, "*", Write), deny(Topic, "t", Literal, alice, "*", Read)}, alice, "10.0.0.1", Describe, Topic, "t", true},
		{"deny from another host does not apply", []Binding{allow(Topic, "t", Literal, alice, "*", Read), deny(Topic, "t", Literal, alice, "10.0.0.9", Read)}, alice, "10.0.0.1", Read, Topic, "t", true},
		{"ACLs of another type do not apply", []Binding{allow(Group, "t", Literal, alice, "*", Read)}, alice, "10.0.0.1", Read, Topic, "t", false},
		{"another principal's ACL still makes the resource named", []Binding{allow(Group, "g", Literal, bob, "*", Read)}, alice, "10.0.0.1", Read, Group, "g", false},
		{"cluster operation", []Binding{allow(Cluster, ClusterName, Literal, alice, "*", Alter)}, alice, "10.0.0.1", Alter, Cluster, ClusterName, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := New([]string{"User:admin"})
			a.Update(tc.bindings)
			got := a.Authorize(tc.principal, tc.host, tc.op, tc.rt, tc.resource)
			if got.Allowed != tc.want {
				t.Fatalf("Authorize(%s from %s, %v %v %q) = %+v, want allowed=%v", tc.principal, tc.host, tc.op, tc.rt, tc.resource, got, tc.want)
			}
		})
	}
}

// TestAuthorizeAny follows Kafka's authorizeByResourceType, which lets an idempotent
// producer's InitProducerId through with WRITE on any topic (KIP-679).
func TestAuthorizeAny(t *testing.T) {
	const alice = "User:alice"
	for _, tc := range []struct {
		name     string
		bindings []Binding
		want     bool
	}{
		{"no ACL", nil, false},
		{"write on one topic", []Binding{allow(Topic, "t", Literal, alice, "*", Write)}, true},
		{"write on a prefix", []Binding{allow(Topic, "t-", Prefixed, alice, "*", Write)}, true},
		{"read only", []Binding{allow(Topic, "t", Literal, alice, "*", Read)}, false},
		{"write denied on every topic", []Binding{allow(Topic, "t", Literal, alice, "*", Write), deny(Topic, "*", Literal, alice, "*", Write)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := New(nil)
			a.Update(tc.bindings)
			if got := a.AuthorizeAny(alice, "10.0.0.1", Write, Topic); got.Allowed != tc.want {
				t.Fatalf("AuthorizeAny = %+v, want allowed=%v", got, tc.want)
			}
		})
	}
}

// TestFilter holds DescribeAcls/DeleteAcls filters to Kafka's AclBindingFilter: ANY
// matches every value, MATCH the bindings that apply to the named resource.
func TestFilter(t *testing.T) {
	name := func(s string) *string { return &s }
	lit := allow(Topic, "orders", Literal, "User:alice", "*", Read)
	wild := allow(Topic, "*", Literal, "User:alice", "*", Read)
	pre := allow(Topic, "ord", Prefixed, "User:bob", "*", Write)
	group := allow(Group, "orders", Literal, "User:alice", "*", Read)
	all := []Binding{lit, wild, pre, group}
	anyFilter := Filter{ResourceType: kmsg.ACLResourceTypeAny, PatternType: kmsg.ACLResourcePatternTypeAny, Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}
	for _, tc := range []struct {
		name string
		edit func(*Filter)
		want []Binding
	}{
		{"any matches all", func(*Filter) {}, all},
		{"by resource type", func(f *Filter) { f.ResourceType = Group }, []Binding{group}},
		{"any pattern, exact name", func(f *Filter) { f.ResourceName = name("orders") }, []Binding{lit, group}},
		{"literal pattern", func(f *Filter) { f.PatternType = Literal; f.ResourceType = Topic }, []Binding{lit, wild}},
		{"prefixed pattern", func(f *Filter) { f.PatternType = Prefixed }, []Binding{pre}},
		{"match: what applies to topic orders", func(f *Filter) {
			f.ResourceType, f.PatternType, f.ResourceName = Topic, kmsg.ACLResourcePatternTypeMatch, name("orders")
		}, []Binding{lit, wild, pre}},
		{"principal", func(f *Filter) { f.Principal = name("User:bob") }, []Binding{pre}},
		{"operation", func(f *Filter) { f.Operation = Write }, []Binding{pre}},
		{"permission deny", func(f *Filter) { f.Permission = Deny }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := anyFilter
			tc.edit(&f)
			var got []Binding
			for _, b := range all {
				if f.Matches(b) {
					got = append(got, b)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("filter %+v matched %v, want %v", f, got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("filter %+v matched %v, want %v", f, got, tc.want)
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	good := allow(Topic, "t", Literal, "User:alice", "*", Read)
	if err := good.Validate(); err != nil {
		t.Fatalf("valid binding refused: %v", err)
	}
	for _, edit := range []func(*Binding){
		func(b *Binding) { b.PatternType = kmsg.ACLResourcePatternTypeMatch },
		func(b *Binding) { b.Principal = "alice" },
		func(b *Binding) { b.Host = "" },
		func(b *Binding) { b.Operation = kmsg.ACLOperationAny },
		func(b *Binding) { b.Permission = kmsg.ACLPermissionTypeAny },
		func(b *Binding) { b.ResourceType, b.ResourceName = Cluster, "other" },
	} {
		b := good
		edit(&b)
		if err := b.Validate(); err == nil {
			t.Errorf("Validate(%+v) accepted an invalid binding", b)
		}
	}
}
