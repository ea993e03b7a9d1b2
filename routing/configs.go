package routing

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// TopicConfig describes one topic configuration Strait honours: its Kafka name,
// its default and how a value is checked.
type TopicConfig struct {
	Name string
	// BrokerName is the broker setting Kafka takes the cluster's default from (its
	// topic config synonym), as a broker's DescribeConfigs shows it.
	BrokerName string
	Default    string
	Type       string // Kafka's config type: "int", "long", "double", "string", "list", ...
	Doc        string
	Sensitive  bool
	validate   func(string) error
}

// topicConfigs lists what Strait acts on, with Kafka's names and defaults. Accepting a
// setting that does nothing would mislead the operator, so anything else is refused.
var topicConfigs = []TopicConfig{
	{Name: "cleanup.policy", BrokerName: "log.cleanup.policy", Default: "delete", Type: "list",
		Doc:      "delete: remove old segments by retention.ms and retention.bytes; compact: keep the latest record per key; or both.",
		validate: cleanupPolicy},
	{Name: "compression.type", BrokerName: "compression.type", Default: "producer", Type: "string",
		Doc:      "Stored as given; Strait keeps batches as the producer compressed them and does not recompress.",
		validate: oneOf("producer", "uncompressed", "gzip", "snappy", "lz4", "zstd")},
	{Name: "delete.retention.ms", BrokerName: "log.cleaner.delete.retention.ms", Default: "86400000", Type: "long",
		Doc:      "How long a compacted topic keeps tombstones after its segment was cleaned.",
		validate: intRange(0, math.MaxInt64)},
	{Name: "flush.messages", BrokerName: "log.flush.interval.messages", Default: "9223372036854775807", Type: "long",
		Doc:      "Fsync the log after this many messages. The default never forces a flush: durability comes from replication.",
		validate: intRange(1, math.MaxInt64)},
	{Name: "flush.ms", BrokerName: "log.flush.interval.ms", Default: "9223372036854775807", Type: "long",
		Doc:      "Fsync the log when this long has passed since the last flush. The default never forces one.",
		validate: intRange(0, math.MaxInt64)},
	{Name: "index.interval.bytes", BrokerName: "log.index.interval.bytes", Default: "4096", Type: "int",
		Doc:      "Bytes of log between two entries of the sparse offset index.",
		validate: intRange(0, math.MaxInt32)},
	{Name: "max.message.bytes", BrokerName: "message.max.bytes", Default: "1048588", Type: "int",
		Doc:      "The largest record batch a producer may write.",
		validate: intRange(0, math.MaxInt32)},
	{Name: "message.timestamp.type", BrokerName: "log.message.timestamp.type", Default: "CreateTime", Type: "string",
		Doc:      "CreateTime keeps the producer's timestamps; LogAppendTime stamps batches with the time they were appended.",
		validate: oneOf("CreateTime", "LogAppendTime")},
	{Name: "min.cleanable.dirty.ratio", BrokerName: "log.cleaner.min.cleanable.ratio", Default: "0.5", Type: "double",
		Doc:      "Compact a log once this fraction of it has not been compacted yet.",
		validate: floatRange(0, 1)},
	{Name: "min.compaction.lag.ms", BrokerName: "log.cleaner.min.compaction.lag.ms", Default: "0", Type: "long",
		Doc:      "A record stays uncompacted for at least this long.",
		validate: intRange(0, math.MaxInt64)},
	{Name: "min.insync.replicas", BrokerName: "min.insync.replicas", Default: "1", Type: "int",
		Doc:      "acks=all writes fail with NOT_ENOUGH_REPLICAS while fewer replicas are in sync.",
		validate: intRange(1, math.MaxInt32)},
	{Name: "retention.bytes", BrokerName: "log.retention.bytes", Default: "-1", Type: "long",
		Doc:      "Delete the oldest segments while a partition is larger than this; -1 keeps everything.",
		validate: intRange(-1, math.MaxInt64)},
	{Name: "retention.ms", BrokerName: "log.retention.ms", Default: "604800000", Type: "long",
		Doc:      "Delete segments whose newest record is older than this; -1 keeps everything.",
		validate: intRange(-1, math.MaxInt64)},
	{Name: UncleanLeaderElectionEnable, BrokerName: UncleanLeaderElectionEnable, Default: "false", Type: "boolean",
		Doc: "Whether a replica outside the ISR may become leader when no ISR member is live. " +
			"That brings the partition back sooner at the cost of losing every record the ISR held " +
			"and the new leader lacks, acknowledged acks=all writes included. Off by default, as in Kafka since 0.11.",
		validate: boolean},
	{Name: "segment.bytes", BrokerName: "log.segment.bytes", Default: "1073741824", Type: "int",
		Doc:      "Roll the active segment once it reaches this size.",
		validate: intRange(14, math.MaxInt32)},
	{Name: "segment.ms", BrokerName: "log.roll.ms", Default: "604800000", Type: "long",
		Doc:      "Roll the active segment once its first record is this old, so retention can act on it.",
		validate: intRange(1, math.MaxInt64)},
}

// UncleanLeaderElectionEnable names the topic config that allows unclean leader elections.
const UncleanLeaderElectionEnable = "unclean.leader.election.enable"

// TopicConfigs returns the topic configurations Strait honours, sorted by name.
func TopicConfigs() []TopicConfig {
	out := slices.Clone(topicConfigs)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LookupTopicConfig returns the named configuration, if Strait honours it.
func LookupTopicConfig(name string) (TopicConfig, bool) {
	for _, c := range topicConfigs {
		if c.Name == name {
			return c, true
		}
	}
	return TopicConfig{}, false
}

// ValidateTopicConfigs checks overrides; the error names the setting and what is wrong.
func ValidateTopicConfigs(configs map[string]string) error {
	names := make([]string, 0, len(configs))
	for name := range configs {
		names = append(names, name)
	}
	sort.Strings(names) // the first error reported does not depend on map order
	for _, name := range names {
		if err := ValidateTopicConfig(name, configs[name]); err != nil {
			return err
		}
	}
	return nil
}

// ValidateTopicConfig checks one setting.
func ValidateTopicConfig(name, value string) error {
	c, ok := LookupTopicConfig(name)
	if !ok {
		return fmt.Errorf("config %q is unknown or not supported by Strait yet", name)
	}
	if err := c.validate(value); err != nil {
		return fmt.Errorf("config %s=%q: %w", name, value, err)
	}
	return nil
}

// ConfigValue returns the topic's value for a configuration and whether it is an override.
func (t *Topic) ConfigValue(name string) (value string, override bool) {
	if v, ok := t.Configs[name]; ok {
		return v, true
	}
	c, _ := LookupTopicConfig(name)
	return c.Default, false
}

// ConfigInt returns an integer configuration, falling back to the default when the
// stored value is not an integer (validation keeps that from happening).
func (t *Topic) ConfigInt(name string) int64 {
	v, _ := t.ConfigValue(name)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		c, _ := LookupTopicConfig(name)
		n, _ = strconv.ParseInt(c.Default, 10, 64)
	}
	return n
}

// ConfigFloat returns a floating-point configuration, as ConfigInt does.
func (t *Topic) ConfigFloat(name string) float64 {
	v, _ := t.ConfigValue(name)
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		c, _ := LookupTopicConfig(name)
		f, _ = strconv.ParseFloat(c.Default, 64)
	}
	return f
}

// ConfigBool returns a boolean configuration ("true" or "false", in any case, as Kafka
// reads them), falling back to the default as ConfigInt does.
func (t *Topic) ConfigBool(name string) bool {
	v, _ := t.ConfigValue(name)
	if boolean(v) != nil {
		c, _ := LookupTopicConfig(name)
		v = c.Default
	}
	return strings.EqualFold(strings.TrimSpace(v), "true")
}

// Compacted reports whether the topic's cleanup.policy includes compact.
func (t *Topic) Compacted() bool {
	v, _ := t.ConfigValue("cleanup.policy")
	return listHas(v, "compact")
}

// Deletes reports whether the topic's cleanup.policy includes delete (retention).
func (t *Topic) Deletes() bool {
	v, _ := t.ConfigValue("cleanup.policy")
	return listHas(v, "delete")
}

func intRange(lo, hi int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer")
		}
		if n < lo || n > hi {
			return fmt.Errorf("must be between %d and %d", lo, hi)
		}
		return nil
	}
}

func floatRange(lo, hi float64) func(string) error {
	return func(v string) error {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || math.IsNaN(f) {
			return fmt.Errorf("not a number")
		}
		if f < lo || f > hi {
			return fmt.Errorf("must be between %g and %g", lo, hi)
		}
		return nil
	}
}

func oneOf(allowed ...string) func(string) error {
	return func(v string) error {
		if slices.Contains(allowed, v) {
			return nil
		}
		return fmt.Errorf("must be one of %s", strings.Join(allowed, ", "))
	}
}

func boolean(v string) error {
	if v = strings.TrimSpace(v); strings.EqualFold(v, "true") || strings.EqualFold(v, "false") {
		return nil
	}
	return fmt.Errorf("must be true or false")
}

func cleanupPolicy(v string) error {
	items := splitList(v)
	if len(items) == 0 {
		return fmt.Errorf("must name delete, compact or both")
	}
	for _, item := range items {
		if item != "delete" && item != "compact" {
			return fmt.Errorf("%q is not a cleanup policy: use delete, compact or both", item)
		}
	}
	return nil
}

// listHas reports whether the comma-separated list v names item. Produce asks it on every
// request, so it allocates nothing.
func listHas(v, item string) bool {
	for part := range strings.SplitSeq(v, ",") {
		if strings.TrimSpace(part) == item {
			return true
		}
	}
	return false
}

func splitList(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
