package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/strait-io/strait/routing"
)

// Topic records let a node put back the topics whose data it holds when the Store loses
// its data (a Redis restarted without persistence, seen as a new Store incarnation).
// The node keeps one file per topic, <data dir>/topic-records/<topic>.json, with the
// topic as the Store described it and the incarnation that did. It is rewritten only
// when the topic's shape changes (id, partition count, configs, incarnation), and read
// back only when the incarnation changes, so the cost of keeping it does not grow with
// the number of partitions (a node renews its lease every few seconds).
//
// Nodes of earlier versions kept the same record in every partition directory
// (strait-topic.json); Republish still reads those, once per topic.
const (
	topicRecordsDir       = "topic-records" // never a partition directory: no -<n> suffix
	legacyTopicRecordFile = "strait-topic.json"
)

type topicRecord struct {
	Incarnation string        `json:"incarnation"`
	Topic       routing.Topic `json:"topic"`
}

// topicRecords is the node's set of topic records and what it last wrote of each.
type topicRecords struct {
	dir string
	mu  struct {
		sync.Mutex
		written map[string]topicShape // by topic name
		// republishedFor is the incarnation Republish last completed for.
		republishedFor string
	}
}

// topicShape is what, having changed, makes a topic record worth rewriting: leaders and
// ISRs change all the time and matter only until the controller runs again.
type topicShape struct {
	id            routing.TopicID
	partitions    int
	configVersion int64
	incarnation   string
}

func newTopicRecords(dataDir string) *topicRecords {
	tr := &topicRecords{dir: filepath.Join(dataDir, topicRecordsDir)}
	tr.mu.written = make(map[string]topicShape)
	return tr
}

// record writes t's record if its shape changed since the last write.
func (tr *topicRecords) record(incarnation string, t *routing.Topic) error {
	shape := topicShape{t.ID, len(t.Partitions), t.ConfigVersion, incarnation}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.mu.written[t.Name] == shape {
		return nil
	}
	if err := writeTopicRecord(tr.dir, incarnation, t); err != nil {
		return err
	}
	tr.mu.written[t.Name] = shape
	return nil
}

// forget deletes the records of topics the Store deleted: missing from a snapshot of
// the incarnation that recorded them. Records of another incarnation stay for Republish.
func (tr *topicRecords) forget(snap *routing.Snapshot) error {
	entries, err := os.ReadDir(tr.dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return fmt.Errorf("list topic records: %w", err)
	}
	var errs []error
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		if _, exists := snap.Topic(name); exists {
			continue
		}
		rec, err := readTopicRecord(filepath.Join(tr.dir, e.Name()))
		if err != nil || rec.Incarnation != snap.Incarnation {
			continue
		}
		tr.mu.Lock()
		delete(tr.mu.written, name)
		tr.mu.Unlock()
		if err := os.Remove(filepath.Join(tr.dir, e.Name())); err != nil && !os.IsNotExist(err) {
			errs = append(errs, fmt.Errorf("remove the record of deleted topic %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// incarnationOf returns the incarnation that recorded topic, if it is recorded.
func (tr *topicRecords) incarnationOf(topic string) (string, bool) {
	rec, err := readTopicRecord(filepath.Join(tr.dir, topic+".json"))
	return rec.Incarnation, err == nil
}

// writeTopicRecord writes t's record under dir, atomically.
func writeTopicRecord(dir, incarnation string, t *routing.Topic) error {
	b, err := json.Marshal(topicRecord{Incarnation: incarnation, Topic: *t})
	if err != nil {
		return fmt.Errorf("encode topic record of %s: %w", t.Name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	path := filepath.Join(dir, t.Name+".json")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func readTopicRecord(path string) (topicRecord, error) {
	var rec topicRecord
	b, err := os.ReadFile(path)
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("%s is not valid JSON: %w", path, err)
	}
	return rec, nil
}

// Republish puts back, through create, every topic this node holds data of that the
// Store lost: those recorded under another incarnation and missing from the current
// snapshot. Topics keep their ids, partitions and configs. Another node may republish
// the same topic first; create's ErrTopicExists is then expected and ignored. Once it
// succeeded for an incarnation it does nothing until the incarnation changes.
func (s *Server) Republish(ctx context.Context, create func(context.Context, routing.Topic) error) error {
	snap := s.view.Snapshot()
	tr := s.records
	tr.mu.Lock()
	done := tr.mu.republishedFor == snap.Incarnation
	tr.mu.Unlock()
	if done {
		return nil
	}
	recs, err := s.readTopicRecords()
	if err != nil {
		return err
	}
	var errs []error
	for _, rec := range recs {
		name := rec.Topic.Name
		if rec.Incarnation == snap.Incarnation {
			continue
		}
		if _, ok := snap.Topic(name); ok {
			continue
		}
		err := create(ctx, rec.Topic)
		switch {
		case err == nil:
			s.logger.Warn("republished a topic the metadata store had lost", "topic", name, "topic_id", rec.Topic.ID.String())
		case !errors.Is(err, routing.ErrTopicExists):
			errs = append(errs, fmt.Errorf("republish topic %s: %w", name, err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	tr.mu.Lock()
	tr.mu.republishedFor = snap.Incarnation
	tr.mu.Unlock()
	return nil
}

// readTopicRecords reads every topic record: one file per topic, and for topics that
// have none, the legacy record of one of their partition directories.
func (s *Server) readTopicRecords() ([]topicRecord, error) {
	byTopic := map[string]topicRecord{}
	entries, err := os.ReadDir(s.records.dir)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("node %d: list topic records: %w", s.cfg.ID, err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		rec, err := readTopicRecord(filepath.Join(s.records.dir, e.Name()))
		if err != nil {
			s.logger.Warn("skipping an unreadable topic record", "file", e.Name(), "err", err)
			continue
		}
		byTopic[rec.Topic.Name] = rec
	}
	dirs, err := os.ReadDir(s.cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("node %d: list data dir: %w", s.cfg.ID, err)
	}
	for _, e := range dirs {
		key, ok := parseDirName(e.Name())
		if !ok || !e.IsDir() {
			continue
		}
		if _, seen := byTopic[key.topic]; seen {
			continue
		}
		if rec, err := readTopicRecord(filepath.Join(s.cfg.DataDir, e.Name(), legacyTopicRecordFile)); err == nil {
			byTopic[key.topic] = rec
		}
	}
	out := make([]topicRecord, 0, len(byTopic))
	for _, rec := range byTopic {
		out = append(out, rec)
	}
	return out, nil
}
