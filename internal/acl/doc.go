// Package acl decides whether a principal may perform an operation on a resource, in
// Apache Kafka's ACL model (KIP-290 for prefixed patterns), so that Strait answers
// Kafka clients and admin tools as a Kafka broker with its standard authorizer does.
//
// A Binding allows or denies one principal ("User:alice", or "User:*" for every one),
// from one host (an IP address, or "*"), one operation on the resources a pattern
// names: a literal name ("orders", or "*" for every resource of the type) or a prefix
// ("orders-"). An Authorizer holds the cluster's bindings and decides, as Kafka's
// StandardAuthorizer does:
//
//  1. a super user may do anything;
//  2. a resource no binding names at all is denied (allow.everyone.if.no.acl.found=false);
//  3. a matching DENY wins over any ALLOW;
//  4. otherwise a matching ALLOW of the operation, or of an operation that implies it,
//     allows: READ, WRITE, DELETE and ALTER imply DESCRIBE, ALTER_CONFIGS implies
//     DESCRIBE_CONFIGS, and ALL implies everything.
//
// Filter selects bindings for DescribeAcls and DeleteAcls, with Kafka's ANY and MATCH
// wildcards. The package keeps no I/O: bindings come from the routing Store, and the
// caller logs and counts decisions.
package acl
