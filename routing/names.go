package routing

import (
	"fmt"
	"strings"
)

// MaxTopicNameLength is Kafka's limit: 255 less room for a partition suffix in file names.
const MaxTopicNameLength = 249

// ValidateTopicName applies Kafka's rules for topic names: 1 to 249 characters from
// [a-zA-Z0-9._-], and neither "." nor "..", which would name directories.
func ValidateTopicName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("topic name is empty")
	case name == "." || name == "..":
		return fmt.Errorf("topic name %q is not allowed", name)
	case len(name) > MaxTopicNameLength:
		return fmt.Errorf("topic name is %d characters, longer than the limit of %d", len(name), MaxTopicNameLength)
	}
	for _, r := range name {
		if !isTopicNameRune(r) {
			return fmt.Errorf("topic name %q contains %q: only ASCII letters, digits, '.', '_' and '-' are allowed", name, r)
		}
	}
	return nil
}

func isTopicNameRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
}

// collisionKey maps names that Kafka considers colliding ('.' and '_' are the same in
// metric names) to one key.
func collisionKey(name string) string { return strings.ReplaceAll(name, ".", "_") }

// IsInternalTopic reports whether Strait owns the topic (clients may read, not manage it).
func IsInternalTopic(name string) bool {
	return name == "__consumer_offsets" || name == "__transaction_state"
}
