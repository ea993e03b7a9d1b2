package offsets

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Key and value versions Strait writes.
const (
	offsetKeyVersion      = 1
	offsetValueVersion    = 3
	offsetValueVersionExp = 1 // the only value version with an expire timestamp
	groupKeyVersion       = 2
	groupValueVersion     = 3
	maxOffsetValueVersion = 4 // newest versions Decode reads
	maxGroupValueVersion  = 3
)

// MaxStringLen is the longest group, topic, metadata or member string a record can
// hold: strings are int16-length-prefixed. The encoders panic beyond it, so request
// handlers must reject longer input first (Kafka: OFFSET_METADATA_TOO_LARGE for
// metadata over offset.metadata.max.bytes, INVALID_GROUP_ID / INVALID_TOPIC_EXCEPTION).
const MaxStringLen = math.MaxInt16

// Commit is one committed offset.
type Commit struct {
	Offset      int64
	LeaderEpoch int32 // -1 if unknown
	Metadata    string
	CommitTime  time.Time
	ExpireTime  time.Time // zero when not set (value v1 only); retention decides
}

// Record is one decoded __consumer_offsets record. Exactly one of the kinds is set.
// A Record never aliases the bytes it was decoded from.
type Record struct {
	Group string
	// offset commit (or its tombstone when Commit == nil)
	Topic     string
	Partition int32
	Commit    *Commit
	IsOffset  bool
	// group metadata (or its tombstone when Metadata == nil)
	Metadata *kmsg.GroupMetadataValue
	IsGroup  bool
}

// OffsetCommitRecord returns the key and value of an offset commit: key v1 and value
// v3, or value v1 when c.ExpireTime is set (as Kafka does; v1 has no leader epoch, so
// it is lost). It panics if a string is longer than MaxStringLen.
func OffsetCommitRecord(group, topic string, partition int32, c Commit) (key, value []byte) {
	mustFit(group, topic, c.Metadata)
	v := kmsg.OffsetCommitValue{
		Version:         offsetValueVersion,
		Offset:          c.Offset,
		LeaderEpoch:     c.LeaderEpoch,
		Metadata:        c.Metadata,
		CommitTimestamp: c.CommitTime.UnixMilli(),
	}
	if !c.ExpireTime.IsZero() {
		v.Version = offsetValueVersionExp
		v.ExpireTimestamp = c.ExpireTime.UnixMilli()
	}
	key, _ = OffsetTombstone(group, topic, partition)
	return key, v.AppendTo(nil)
}

// OffsetTombstone returns the key of an offset commit and a nil value, which deletes
// the commit on replay and, after compaction, from the log. It panics if a string is
// longer than MaxStringLen.
func OffsetTombstone(group, topic string, partition int32) (key, value []byte) {
	mustFit(group, topic)
	k := kmsg.OffsetCommitKey{Version: offsetKeyVersion, Group: group, Topic: topic, Partition: partition}
	return k.AppendTo(nil), nil
}

// GroupMetadataRecord returns the key (v2) and value of a group's metadata. The
// value is always written as version 3, whatever v.Version says. It panics if a
// string is longer than MaxStringLen.
func GroupMetadataRecord(group string, v kmsg.GroupMetadataValue) (key, value []byte) {
	strs := []string{v.ProtocolType, deref(v.Protocol), deref(v.Leader)}
	for _, m := range v.Members {
		strs = append(strs, m.MemberID, deref(m.InstanceID), m.ClientID, m.ClientHost)
	}
	mustFit(strs...)
	v.Version = groupValueVersion
	key, _ = GroupTombstone(group)
	return key, v.AppendTo(nil)
}

// GroupTombstone returns the key of a group's metadata and a nil value. It does not
// delete the group's offsets, which have keys of their own. It panics if group is
// longer than MaxStringLen.
func GroupTombstone(group string) (key, value []byte) {
	mustFit(group)
	k := kmsg.GroupMetadataKey{Version: groupKeyVersion, Group: group}
	return k.AppendTo(nil), nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func mustFit(strs ...string) {
	for _, s := range strs {
		if len(s) > MaxStringLen {
			panic(fmt.Sprintf("offsets: string of %d bytes exceeds the record format's %d", len(s), MaxStringLen))
		}
	}
}

// decodeRecord decodes one key/value pair. ok is false for a key version it does not
// know, which the caller skips. Errors (a missing or short key, a value that does not
// parse, a value version newer than maxValueVersion) are not wrapped; the caller adds
// ErrCorrupt and the offset.
func decodeRecord(key, value []byte) (r Record, ok bool, err error) {
	if len(key) < 2 {
		return Record{}, false, fmt.Errorf("key of %d bytes has no version", len(key))
	}
	switch version := int16(binary.BigEndian.Uint16(key)); version {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(key); err != nil {
			return Record{}, false, fmt.Errorf("offset commit key v%d: %v", version, err)
		}
		r = Record{Group: k.Group, Topic: k.Topic, Partition: k.Partition, IsOffset: true}
		if value == nil {
			return r, true, nil
		}
		if err := checkOffsetValue(value); err != nil {
			return Record{}, false, err
		}
		var v kmsg.OffsetCommitValue
		if err := v.ReadFrom(value); err != nil {
			return Record{}, false, fmt.Errorf("offset commit value: %v", err)
		}
		c := &Commit{
			Offset:      v.Offset,
			LeaderEpoch: -1,
			Metadata:    v.Metadata,
			CommitTime:  time.UnixMilli(v.CommitTimestamp).UTC(),
		}
		if v.Version >= 3 {
			c.LeaderEpoch = v.LeaderEpoch
		}
		if v.Version == offsetValueVersionExp && v.ExpireTimestamp >= 0 {
			c.ExpireTime = time.UnixMilli(v.ExpireTimestamp).UTC()
		}
		r.Commit = c
		return r, true, nil
	case 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(key); err != nil {
			return Record{}, false, fmt.Errorf("group metadata key: %v", err)
		}
		r = Record{Group: k.Group, IsGroup: true}
		if value == nil {
			return r, true, nil
		}
		// Version 4 is flexible; see checkOffsetValue for why it is not handed to
		// kmsg. Strait writes version 3.
		if len(value) >= 2 {
			if ver := int16(binary.BigEndian.Uint16(value)); ver < 0 || ver > maxGroupValueVersion {
				return Record{}, false, fmt.Errorf("group metadata value version %d is not supported", ver)
			}
		}
		// ReadFrom leaves member subscriptions and assignments pointing into its
		// input; clone it so that a Record never aliases the caller's buffer.
		var v kmsg.GroupMetadataValue
		if err := v.ReadFrom(bytes.Clone(value)); err != nil {
			return Record{}, false, fmt.Errorf("group metadata value: %v", err)
		}
		r.Metadata = &v
		return r, true, nil
	default:
		return Record{}, false, nil
	}
}

// checkOffsetValue rejects offset commit values whose version Decode does not read
// and, for flexible version 4 (Kafka 4.1, topic id tag), a tagged-field count larger
// than the bytes left: kmsg's ReadFrom loops over the count even after its input runs
// out, so a corrupt count of 2^32 would hang replay. Short values pass, for ReadFrom
// to report.
func checkOffsetValue(v []byte) error {
	if len(v) < 2 {
		return nil
	}
	ver := int16(binary.BigEndian.Uint16(v))
	if ver < 0 || ver > maxOffsetValueVersion {
		return fmt.Errorf("offset commit value version %d is not supported", ver)
	}
	if ver < 4 {
		return nil
	}
	p := 2 + 8 + 4 // version, offset, leader epoch
	if p > len(v) {
		return nil
	}
	l, n := binary.Uvarint(v[p:]) // compact string: length + 1
	if n <= 0 || l == 0 || l-1 > uint64(len(v)-p-n) {
		return nil
	}
	p += n + int(l-1) + 8 // metadata, commit timestamp
	if p > len(v) {
		return nil
	}
	count, n := binary.Uvarint(v[p:])
	if n > 0 && count > uint64(len(v)-p-n)/2 { // a tag is at least a key and a size
		return fmt.Errorf("offset commit value v4 claims %d tagged fields in %d bytes", count, len(v)-p-n)
	}
	return nil
}
