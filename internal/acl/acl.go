package acl

import (
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The enums are Kafka's wire values, as kmsg names them.
type (
	ResourceType = kmsg.ACLResourceType
	PatternType  = kmsg.ACLResourcePatternType
	Operation    = kmsg.ACLOperation
	Permission   = kmsg.ACLPermissionType
)

// Resource types, operations and the like that Strait's handlers name.
const (
	Topic           = kmsg.ACLResourceTypeTopic
	Group           = kmsg.ACLResourceTypeGroup
	Cluster         = kmsg.ACLResourceTypeCluster
	TransactionalID = kmsg.ACLResourceTypeTransactionalId

	Literal  = kmsg.ACLResourcePatternTypeLiteral
	Prefixed = kmsg.ACLResourcePatternTypePrefixed

	All             = kmsg.ACLOperationAll
	Read            = kmsg.ACLOperationRead
	Write           = kmsg.ACLOperationWrite
	Create          = kmsg.ACLOperationCreate
	Delete          = kmsg.ACLOperationDelete
	Alter           = kmsg.ACLOperationAlter
	Describe        = kmsg.ACLOperationDescribe
	ClusterAction   = kmsg.ACLOperationClusterAction
	DescribeConfigs = kmsg.ACLOperationDescribeConfigs
	AlterConfigs    = kmsg.ACLOperationAlterConfigs
	IdempotentWrite = kmsg.ACLOperationIdempotentWrite

	Allow = kmsg.ACLPermissionTypeAllow
	Deny  = kmsg.ACLPermissionTypeDeny
)

// ClusterName is the one Cluster resource's name, as Kafka calls it.
const ClusterName = "kafka-cluster"

// Wildcard, as a literal resource name, a principal's name or a host, matches all.
const Wildcard = "*"

// Anonymous is the principal of a connection that did not authenticate.
const Anonymous = "User:ANONYMOUS"

// Binding is one ACL: Permission of Operation on the resources of ResourceType that
// ResourceName names as PatternType, for Principal connecting from Host.
type Binding struct {
	ResourceType ResourceType
	ResourceName string
	PatternType  PatternType
	Principal    string
	Host         string
	Operation    Operation
	Permission   Permission
}

// ErrInvalidBinding is returned by Validate; CreateAcls answers INVALID_REQUEST.
var ErrInvalidBinding = errors.New("invalid ACL binding")

// Validate checks that b names one concrete ACL, as Kafka's CreateAcls requires: no
// ANY or MATCH, a "Type:name" principal, a host.
func (b Binding) Validate() error {
	switch {
	case b.ResourceType <= kmsg.ACLResourceTypeAny || b.ResourceType > kmsg.ACLResourceTypeUser:
		return fmt.Errorf("%w: resource type %v", ErrInvalidBinding, b.ResourceType)
	case b.PatternType != Literal && b.PatternType != Prefixed:
		return fmt.Errorf("%w: pattern type %v: want LITERAL or PREFIXED", ErrInvalidBinding, b.PatternType)
	case b.ResourceName == "":
		return fmt.Errorf("%w: empty resource name", ErrInvalidBinding)
	case b.ResourceType == Cluster && b.ResourceName != ClusterName:
		return fmt.Errorf("%w: the cluster resource is named %q, not %q", ErrInvalidBinding, ClusterName, b.ResourceName)
	case !validPrincipal(b.Principal):
		return fmt.Errorf("%w: principal %q: want Type:name, as User:alice", ErrInvalidBinding, b.Principal)
	case b.Host == "":
		return fmt.Errorf("%w: empty host (use * for any)", ErrInvalidBinding)
	case b.Operation <= kmsg.ACLOperationAny || b.Operation > kmsg.ACLOperationDescribeTokens:
		return fmt.Errorf("%w: operation %v", ErrInvalidBinding, b.Operation)
	case b.Permission != Allow && b.Permission != Deny:
		return fmt.Errorf("%w: permission %v: want ALLOW or DENY", ErrInvalidBinding, b.Permission)
	}
	return nil
}

func validPrincipal(p string) bool {
	kind, name, ok := strings.Cut(p, ":")
	return ok && kind != "" && name != ""
}

// matchesResource reports whether b's pattern covers the resource named name.
func (b Binding) matchesResource(name string) bool {
	switch b.PatternType {
	case Literal:
		return b.ResourceName == name || b.ResourceName == Wildcard
	case Prefixed:
		return strings.HasPrefix(name, b.ResourceName)
	}
	return false
}

// appliesTo reports whether b speaks for principal connecting from host.
func (b Binding) appliesTo(principal, host string) bool {
	return (b.Principal == principal || b.Principal == wildcardPrincipal(principal)) &&
		(b.Host == host || b.Host == Wildcard)
}

// wildcardPrincipal is "User:*" for a "User:..." principal.
func wildcardPrincipal(principal string) string {
	kind, _, _ := strings.Cut(principal, ":")
	return kind + ":" + Wildcard
}

// implies reports whether an ALLOW of granted allows op (Kafka's implied operations).
func implies(granted, op Operation) bool {
	switch {
	case granted == op, granted == All:
		return true
	case op == Describe:
		return granted == Read || granted == Write || granted == Delete || granted == Alter
	case op == DescribeConfigs:
		return granted == AlterConfigs
	}
	return false
}

// Filter selects bindings, as DescribeAcls and DeleteAcls name them: nil strings and
// the ANY values match everything; PatternType MATCH selects the bindings that would
// apply to the resource ResourceName names (literal, wildcard and prefixes of it).
type Filter struct {
	ResourceType ResourceType
	ResourceName *string
	PatternType  PatternType
	Principal    *string
	Host         *string
	Operation    Operation
	Permission   Permission
}

// Matches reports whether the filter selects b.
func (f Filter) Matches(b Binding) bool {
	return (f.ResourceType == kmsg.ACLResourceTypeAny || f.ResourceType == b.ResourceType) &&
		f.matchesPattern(b) &&
		(f.Principal == nil || *f.Principal == b.Principal) &&
		(f.Host == nil || *f.Host == b.Host) &&
		(f.Operation == kmsg.ACLOperationAny || f.Operation == b.Operation) &&
		(f.Permission == kmsg.ACLPermissionTypeAny || f.Permission == b.Permission)
}

func (f Filter) matchesPattern(b Binding) bool {
	switch f.PatternType {
	case kmsg.ACLResourcePatternTypeAny:
		return f.ResourceName == nil || *f.ResourceName == b.ResourceName
	case kmsg.ACLResourcePatternTypeMatch:
		return f.ResourceName == nil || b.matchesResource(*f.ResourceName)
	default:
		return f.PatternType == b.PatternType && (f.ResourceName == nil || *f.ResourceName == b.ResourceName)
	}
}

// Validate rejects a filter that can match nothing for want of a value Kafka
// requires (UNKNOWN enums).
func (f Filter) Validate() error {
	if f.ResourceType == kmsg.ACLResourceTypeUnknown || f.PatternType == kmsg.ACLResourcePatternTypeUnknown ||
		f.Operation == kmsg.ACLOperationUnknown || f.Permission == kmsg.ACLPermissionTypeUnknown {
		return fmt.Errorf("%w: filter with an UNKNOWN resource type, pattern type, operation or permission", ErrInvalidBinding)
	}
	return nil
}
