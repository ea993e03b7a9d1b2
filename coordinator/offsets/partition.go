package offsets

import "unicode/utf16"

// Partition returns the __consumer_offsets partition that holds group, as Kafka
// computes it: Utils.abs(group.hashCode()) % partitions, where hashCode is Java's
// String.hashCode over UTF-16 code units (s[0]*31^(n-1) + ... + s[n-1], wrapping
// int32) and Utils.abs is n & 0x7fffffff (so Integer.MIN_VALUE maps to 0, unlike
// Math.abs). It panics if partitions <= 0.
//
// A group id that is not valid UTF-8 may map elsewhere than in Kafka: Go counts a
// U+FFFD per bad byte, while Java's decoder replaces whole bad sequences (for example
// "aâb" is 4 units here and 3 in Java). Java clients cannot send such ids.
func Partition(group string, partitions int32) int32 {
	if partitions <= 0 {
		panic("offsets: Partition with no partitions")
	}
	return (javaStringHashCode(group) & 0x7fffffff) % partitions
}

func javaStringHashCode(s string) int32 {
	var h int32
	for _, r := range s {
		if r1, r2 := utf16.EncodeRune(r); r1 != '\uFFFD' || r2 != '\uFFFD' {
			h = 31*h + r1
			h = 31*h + r2
			continue
		}
		h = 31*h + r
	}
	return h
}
