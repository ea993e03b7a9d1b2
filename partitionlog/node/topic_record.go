package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/strait-io/strait/routing"
)

// topicRecordFile keeps, in each partition directory, the topic as the Store described
// it and the Store incarnation that did, so that a node can put the topic back if the
// Store loses its data (a Redis restarted without persistence).
const topicRecordFile = "strait-topic.json"

type topicRecord struct {
	Incarnation string        `json:"incarnation"`
	Topic       routing.Topic `json:"topic"`
}

// writeTopicRecord records t in dir, atomically, when it changed.
func writeTopicRecord(dir, incarnation string, t *routing.Topic) error {
	b, err := json.Marshal(topicRecord{Incarnation: incarnation, Topic: *t})
	if err != nil {
		return fmt.Errorf("encode topic record of %s: %w", t.Name, err)
	}
	path := filepath.Join(dir, topicRecordFile)
	if old, err := os.ReadFile(path); err == nil && string(old) == string(b) {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func readTopicRecord(dir string) (topicRecord, error) {
	var rec topicRecord
	b, err := os.ReadFile(filepath.Join(dir, topicRecordFile))
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("%s in %s is not valid JSON: %w", topicRecordFile, dir, err)
	}
	return rec, nil
}

// Republish puts back, through create, every topic this node holds data of that the
// Store lost: those recorded under another incarnation and missing from the current
// snapshot. Topics keep their ids, partitions and configs. Another node may republish
// the same topic first; create's ErrTopicExists is then expected and ignored.
func (s *Server) Republish(ctx context.Context, create func(context.Context, routing.Topic) error) error {
	snap := s.view.Snapshot()
	entries, err := os.ReadDir(s.cfg.DataDir)
	if err != nil {
		return fmt.Errorf("node %d: list data dir: %w", s.cfg.ID, err)
	}
	done := map[string]bool{}
	var errs []error
	for _, e := range entries {
		rec, err := readTopicRecord(filepath.Join(s.cfg.DataDir, e.Name()))
		name := rec.Topic.Name
		if err != nil || done[name] || rec.Incarnation == snap.Incarnation {
			continue
		}
		if _, ok := snap.Topic(name); ok {
			continue
		}
		done[name] = true
		err = create(ctx, rec.Topic)
		switch {
		case err == nil:
			s.logger.Warn("republished a topic the metadata store had lost", "topic", name, "topic_id", rec.Topic.ID.String())
		case !errors.Is(err, routing.ErrTopicExists):
			errs = append(errs, fmt.Errorf("republish topic %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
