package acl

import (
	"slices"
	"sync/atomic"
)

// Decision says what an Authorizer decided and why, for audit logs.
type Decision struct {
	Allowed bool
	Reason  string // "super user", "no ACL names the resource", "denied by ACL", "allowed by ACL", "no ACL allows it"
}

// Authorizer decides requests against the cluster's bindings (see the package doc).
// Update replaces the bindings at once; Authorize may run concurrently with it and
// sees either the old set or the new one.
type Authorizer struct {
	superUsers map[string]bool
	index      atomic.Pointer[index]
}

// New returns an authorizer whose super users may do anything, and that denies
// everything else until Update gives it bindings.
func New(superUsers []string) *Authorizer {
	a := &Authorizer{superUsers: make(map[string]bool, len(superUsers))}
	for _, u := range superUsers {
		a.superUsers[u] = true
	}
	a.index.Store(&index{})
	return a
}

// IsSuperUser reports whether principal is a super user.
func (a *Authorizer) IsSuperUser(principal string) bool { return a.superUsers[principal] }

// Update replaces the bindings the authorizer decides by.
func (a *Authorizer) Update(bindings []Binding) {
	a.index.Store(newIndex(bindings))
}

// Authorize decides whether principal, connecting from host, may perform op on the
// resource of type rt named name.
func (a *Authorizer) Authorize(principal, host string, op Operation, rt ResourceType, name string) Decision {
	if a.superUsers[principal] {
		return Decision{true, "super user"}
	}
	matching := a.index.Load().forResource(rt, name)
	if len(matching) == 0 {
		return Decision{false, "no ACL names the resource"}
	}
	for _, b := range matching {
		if b.Permission == Deny && b.appliesTo(principal, host) && (b.Operation == op || b.Operation == All) {
			return Decision{false, "denied by ACL"}
		}
	}
	for _, b := range matching {
		if b.Permission == Allow && b.appliesTo(principal, host) && implies(b.Operation, op) {
			return Decision{true, "allowed by ACL"}
		}
	}
	return Decision{false, "no ACL allows it"}
}

// AuthorizeAny decides whether principal may perform op on some resource of type rt,
// as Kafka's authorizeByResourceType does for an idempotent producer's InitProducerId
// (WRITE on any topic): an ALLOW of op on any pattern, unless a DENY covers every
// resource of the type (a literal "*" deny).
func (a *Authorizer) AuthorizeAny(principal, host string, op Operation, rt ResourceType) Decision {
	if a.superUsers[principal] {
		return Decision{true, "super user"}
	}
	ix := a.index.Load()
	for _, b := range ix.literal[rt][Wildcard] {
		if b.Permission == Deny && b.appliesTo(principal, host) && (b.Operation == op || b.Operation == All) {
			return Decision{false, "denied by ACL"}
		}
	}
	for _, b := range ix.all[rt] {
		if b.Permission == Allow && b.appliesTo(principal, host) && implies(b.Operation, op) {
			return Decision{true, "allowed by ACL"}
		}
	}
	return Decision{false, "no ACL allows it"}
}

// index holds bindings by resource type, literal name and prefix, so that deciding
// costs a map lookup and a scan of the prefixes, not of every binding.
type index struct {
	all      map[ResourceType][]Binding
	literal  map[ResourceType]map[string][]Binding
	prefixed map[ResourceType][]Binding
}

func newIndex(bindings []Binding) *index {
	ix := &index{
		all:      map[ResourceType][]Binding{},
		literal:  map[ResourceType]map[string][]Binding{},
		prefixed: map[ResourceType][]Binding{},
	}
	for _, b := range bindings {
		ix.all[b.ResourceType] = append(ix.all[b.ResourceType], b)
		switch b.PatternType {
		case Literal:
			if ix.literal[b.ResourceType] == nil {
				ix.literal[b.ResourceType] = map[string][]Binding{}
			}
			ix.literal[b.ResourceType][b.ResourceName] = append(ix.literal[b.ResourceType][b.ResourceName], b)
		case Prefixed:
			ix.prefixed[b.ResourceType] = append(ix.prefixed[b.ResourceType], b)
		}
	}
	return ix
}

// forResource returns the bindings whose pattern covers the resource.
func (ix *index) forResource(rt ResourceType, name string) []Binding {
	var out []Binding
	out = append(out, ix.literal[rt][name]...)
	if name != Wildcard {
		out = append(out, ix.literal[rt][Wildcard]...)
	}
	for _, b := range ix.prefixed[rt] {
		if b.matchesResource(name) {
			out = append(out, b)
		}
	}
	return slices.Clip(out)
}
