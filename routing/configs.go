package routing

import (
	"fmt"
	"math"
	"sort"
	"strconv"
)

// TopicConfig describes one topic configuration Strait honours: its Kafka name,
// its default and how a value is checked.
type TopicConfig struct {
	Name      string
	Default   string
	Type      string // Kafka's config type: "int", "long", "string", "list", ...
	Doc       string
	Sensitive bool
	validate  func(string) error
}

// topicConfigs lists only what partition logs act on today; accepting a setting
// that does nothing would mislead the operator.
var topicConfigs = []TopicConfig{
	{
		Name: "segment.bytes", Default: "1073741824", Type: "int",
		Doc:      "Roll the active segment once it reaches this size.",
		validate: intRange(14, math.MaxInt32),
	},
	{
		Name: "max.message.bytes", Default: "1048588", Type: "int",
		Doc:      "The largest record batch a producer may write.",
		validate: intRange(0, math.MaxInt32),
	},
	{
		Name: "index.interval.bytes", Default: "4096", Type: "int",
		Doc:      "Bytes of log between two entries of the sparse offset index.",
		validate: intRange(0, math.MaxInt32),
	},
}

// TopicConfigs returns the topic configurations Strait honours, sorted by name.
func TopicConfigs() []TopicConfig {
	out := append([]TopicConfig(nil), topicConfigs...)
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
	for name, value := range configs {
		c, ok := LookupTopicConfig(name)
		if !ok {
			return fmt.Errorf("config %q is unknown or not supported by Strait yet", name)
		}
		if err := c.validate(value); err != nil {
			return fmt.Errorf("config %s=%q: %w", name, value, err)
		}
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

func intRange(lo, hi int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer")
		}
		if n < lo || n > hi {
			return fmt.Errorf("must be between %d and %d", lo, hi)
		}
		return nil
	}
}
