package proxy

// DescribeConfigs, versions 0 to 4.
//
// Topics (resource type 2) list the configurations Strait honours, with their values
// and whether each is an override (DYNAMIC_TOPIC_CONFIG) or the default
// (DEFAULT_CONFIG); v1+ synonyms add the broker setting Kafka takes the default from;
// v3+ add type and documentation.
//
// Brokers (type 4) named by a listed broker id answer with the broker settings a Kafka
// broker reports that Strait has: the cluster defaults of the topic configs under their
// broker names (log.retention.ms, log.segment.bytes, message.max.bytes,
// min.insync.replicas, ...), num.partitions, default.replication.factor,
// auto.create.topics.enable, offsets.topic.*, broker.id, broker.rack and
// advertised.listeners. Settings a flag or the process gave are STATIC_BROKER_CONFIG,
// Strait's built-in defaults DEFAULT_CONFIG. Every one is read-only: Strait cannot
// change a broker setting at run time (Kafka marks its dynamic ones writable), so
// consoles do not offer an edit that would fail. `listeners` is left out: the proxy
// knows the address it advertises, not the one it binds. The empty name (the
// cluster-wide dynamic defaults) has no entries, since Strait keeps none; another name
// gets INVALID_REQUEST, as a Kafka broker answers a name that is not its id. Other
// resource types get INVALID_REQUEST.
//
// Authorization: DESCRIBE_CONFIGS on the topic (TOPIC_AUTHORIZATION_FAILED) or the
// cluster (CLUSTER_AUTHORIZATION_FAILED).

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/coordinator"
	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/routing"
)

func (p *Proxy) describeConfigs(ctx context.Context, req *kmsg.DescribeConfigsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	snap := p.view.Snapshot()
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		if code := p.configsAuthorization(ctx, acl.DescribeConfigs, rr.ResourceType, rr.ResourceName); code != 0 {
			sr.ErrorCode = code
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			t, ok := snap.Topic(rr.ResourceName)
			if !ok {
				sr.ErrorCode = kerr.UnknownTopicOrPartition.Code
				sr.ErrorMessage = kmsg.StringPtr("unknown topic " + rr.ResourceName)
				break
			}
			sr.Configs = filterConfigEntries(topicConfigEntries(t), rr.ConfigNames, req.IncludeSynonyms, req.IncludeDocumentation)
		case kmsg.ConfigResourceTypeBroker:
			entries, err := p.brokerConfigEntries(snap, listenerOf(ctx), rr.ResourceName)
			if err != nil {
				sr.ErrorCode = kerr.InvalidRequest.Code
				sr.ErrorMessage = kmsg.StringPtr(err.Error())
				break
			}
			sr.Configs = filterConfigEntries(entries, rr.ConfigNames, req.IncludeSynonyms, req.IncludeDocumentation)
		default:
			sr.ErrorCode = kerr.InvalidRequest.Code
			sr.ErrorMessage = kmsg.StringPtr("Strait describes topic and broker configs only")
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}

// filterConfigEntries keeps the named entries (all when names is nil), and drops
// synonyms and documentation unless they were asked for.
func filterConfigEntries(entries []kmsg.DescribeConfigsResponseResourceConfig, names []string, withSynonyms, withDocs bool) []kmsg.DescribeConfigsResponseResourceConfig {
	out := entries[:0]
	for _, e := range entries {
		if names != nil && !slices.Contains(names, e.Name) {
			continue
		}
		if !withSynonyms {
			e.ConfigSynonyms = nil
		}
		if !withDocs {
			e.Documentation = nil
		}
		out = append(out, e)
	}
	return out
}

// configsAuthorization is the error code for a principal that may not op the configs
// of a topic or broker, 0 if it may.
func (p *Proxy) configsAuthorization(ctx context.Context, op acl.Operation, rt kmsg.ConfigResourceType, name string) int16 {
	switch rt {
	case kmsg.ConfigResourceTypeTopic:
		if !p.allowed(ctx, op, acl.Topic, name) {
			return kerr.TopicAuthorizationFailed.Code
		}
	case kmsg.ConfigResourceTypeBroker, kmsg.ConfigResourceTypeBrokerLogger:
		if !p.allowed(ctx, op, acl.Cluster, acl.ClusterName) {
			return kerr.ClusterAuthorizationFailed.Code
		}
	}
	return 0
}

// topicConfigEntries lists the topic's honoured configs; each has as synonyms its
// override, if any, and the broker default it otherwise takes.
func topicConfigEntries(t *routing.Topic) []kmsg.DescribeConfigsResponseResourceConfig {
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, c := range routing.TopicConfigs() {
		value, override := t.ConfigValue(c.Name)
		e := configEntry(c.Name, &value, kmsg.ConfigSourceDefaultConfig, configType(c.Type), c.Doc)
		e.IsSensitive = c.Sensitive
		if override {
			e.IsDefault = false
			e.Source = kmsg.ConfigSourceDynamicTopicConfig
			e.ConfigSynonyms = append(e.ConfigSynonyms, configSynonym(c.Name, &value, e.Source))
		}
		e.ConfigSynonyms = append(e.ConfigSynonyms, configSynonym(c.BrokerName, &c.Default, kmsg.ConfigSourceDefaultConfig))
		out = append(out, e)
	}
	return out
}

// brokerConfigEntries lists the settings of the broker named by id, as listed to clients
// of listener, sorted by name, or none for the empty name.
func (p *Proxy) brokerConfigEntries(snap *routing.Snapshot, listener, name string) ([]kmsg.DescribeConfigsResponseResourceConfig, error) {
	if name == "" {
		return nil, nil
	}
	id, err := strconv.ParseInt(name, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("broker %q: a broker is named by its id", name)
	}
	brokers := p.brokers(snap, listener)
	i := slices.IndexFunc(brokers, func(b broker) bool { return b.id == int32(id) })
	if i < 0 {
		return nil, fmt.Errorf("broker %d is not a broker of this cluster's Metadata", id)
	}
	b := brokers[i]

	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, c := range routing.TopicConfigs() {
		out = append(out, configEntry(c.BrokerName, kmsg.StringPtr(c.Default), kmsg.ConfigSourceDefaultConfig, configType(c.Type), c.Doc))
	}
	// set is a setting the process was given, which Kafka reports as from its
	// configuration file, unless it equals Kafka's default.
	set := func(name, value, kafkaDefault string, typ kmsg.ConfigType, doc string) {
		source := kmsg.ConfigSourceStaticBrokerConfig
		if value == kafkaDefault {
			source = kmsg.ConfigSourceDefaultConfig
		}
		out = append(out, configEntry(name, &value, source, typ, doc))
	}
	idText := strconv.Itoa(int(b.id))
	set("broker.id", idText, "-1", kmsg.ConfigTypeInt, "The id clients know this broker by.")
	set("node.id", idText, "-1", kmsg.ConfigTypeInt, "The id clients know this broker by.")
	rack := configEntry("broker.rack", b.rack, kmsg.ConfigSourceDefaultConfig, kmsg.ConfigTypeString, "The broker's rack (zone), for rack-aware placement and KIP-392 reads.")
	if b.rack != nil {
		rack.Source, rack.IsDefault = kmsg.ConfigSourceStaticBrokerConfig, false
	}
	out = append(out, rack)
	set("advertised.listeners", listenerName(listener)+"://"+net.JoinHostPort(b.host, strconv.Itoa(int(b.port))), "", kmsg.ConfigTypeString,
		"The address clients are told to connect to.")
	partitions, rf := p.controller.Defaults()
	set("num.partitions", strconv.Itoa(int(partitions)), "1", kmsg.ConfigTypeInt, "Partitions of a topic created without a count.")
	set("default.replication.factor", strconv.Itoa(int(rf)), "1", kmsg.ConfigTypeInt,
		"Replicas of a topic created without a replication factor (capped at the number of nodes).")
	set("auto.create.topics.enable", strconv.FormatBool(p.cfg.AutoCreateTopics), "true", kmsg.ConfigTypeBoolean,
		"Create a topic when a client asks Metadata for or produces to an unknown one.")
	if t, ok := snap.Topic(coordinator.OffsetsTopic); ok && len(t.Partitions) > 0 {
		set("offsets.topic.num.partitions", strconv.Itoa(len(t.Partitions)), "50", kmsg.ConfigTypeInt,
			"Partitions of __consumer_offsets, over which group coordinators are spread.")
		set("offsets.topic.replication.factor", strconv.Itoa(len(t.Partitions[0].Replicas)), "3", kmsg.ConfigTypeShort,
			"Replicas of each __consumer_offsets partition.")
	}
	for i := range out {
		e := &out[i]
		e.ReadOnly = true
		if e.Value != nil { // a setting from one place is its own synonym, as in Kafka
			e.ConfigSynonyms = append(e.ConfigSynonyms, configSynonym(e.Name, e.Value, e.Source))
		}
	}
	slices.SortFunc(out, func(a, b kmsg.DescribeConfigsResponseResourceConfig) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// configEntry is a non-sensitive entry without synonyms.
func configEntry(name string, value *string, source kmsg.ConfigSource, typ kmsg.ConfigType, doc string) kmsg.DescribeConfigsResponseResourceConfig {
	e := kmsg.NewDescribeConfigsResponseResourceConfig()
	e.Name, e.Value, e.Source, e.ConfigType = name, value, source, typ
	e.IsDefault = source == kmsg.ConfigSourceDefaultConfig
	e.Documentation = kmsg.StringPtr(doc)
	return e
}

func configSynonym(name string, value *string, source kmsg.ConfigSource) kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	s := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
	s.Name, s.Value, s.Source = name, value, source
	return s
}

func configType(t string) kmsg.ConfigType {
	switch t {
	case "int":
		return kmsg.ConfigTypeInt
	case "long":
		return kmsg.ConfigTypeLong
	case "double":
		return kmsg.ConfigTypeDouble
	case "list":
		return kmsg.ConfigTypeList
	case "boolean":
		return kmsg.ConfigTypeBoolean
	default:
		return kmsg.ConfigTypeString
	}
}

// listenerName is a listener's name as Kafka's listener specs spell it.
func listenerName(listener string) string {
	if listener == "" {
		return "PLAINTEXT"
	}
	return strings.ToUpper(listener)
}
