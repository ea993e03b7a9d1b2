package offsets

import "testing"

// The hashes are Java's: computed with OpenJDK 17, `"...".hashCode()`, and the
// partitions as (h & 0x7fffffff) % n, Kafka's Utils.abs then modulo.
func TestPartitionMatchesJava(t *testing.T) {
	for _, tc := range []struct {
		group   string
		hash    int32
		p50, p7 int32
	}{
		{"", 0, 0, 0},
		{"group", 98629247, 47, 3},
		{"hello", 99162322, 22, 0},
		{"Aa", 2112, 12, 5},
		{"BB", 2112, 12, 5},
		{"my-consumer-group", 1513705513, 13, 5},
		{"console-consumer-12345", 158455506, 6, 6},
		// Integer.MIN_VALUE: Math.abs would stay negative; Utils.abs gives 0.
		{"polygenelubricants", -2147483648, 0, 0},
		// Negative: & 0x7fffffff (914218836 % 50 = 36), not -h (1233264812 % 50 = 12).
		{"grüppe", -1233264812, 36, 6},
		{"é", 233, 33, 2},              // U+00E9 is one unit, not the bytes C3 A9
		{"消费者组", 871131088, 38, 2},     // BMP CJK
		{"\U0001F600", 1772899, 49, 2}, // a surrogate pair D83D DE00, not the code point
	} {
		if h := javaStringHashCode(tc.group); h != tc.hash {
			t.Errorf("hashCode(%q) = %d, Java says %d", tc.group, h, tc.hash)
		}
		if p := Partition(tc.group, 50); p != tc.p50 {
			t.Errorf("Partition(%q, 50) = %d, want %d", tc.group, p, tc.p50)
		}
		if p := Partition(tc.group, 7); p != tc.p7 {
			t.Errorf("Partition(%q, 7) = %d, want %d", tc.group, p, tc.p7)
		}
	}
}

func TestPartitionPanicsWithoutPartitions(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	Partition("g", 0)
}
