package observability

import (
	"sync"
	"sync/atomic"
)

// ClientIDLabels bounds the client_id label of request metrics. Clients choose their
// ids, and a label value per id would let them make series without end: only the ids
// allowed, or failing a list the first Max ids seen, get their own value; every other
// id counts as "other".
type ClientIDLabels struct {
	Allow []string // when set, exactly these ids get their own value
	Max   int      // without Allow: how many ids seen first get their own value; 0 for none
}

// Label values of client ids that get none of their own.
const (
	otherClients = "other"
	noClientID   = "none" // a client that sent no id (a null client id)
)

// clientLabels hands out client_id label values as ClientIDLabels says.
type clientLabels struct {
	allow map[string]bool // nil: first seen
	max   int64
	seen  sync.Map // client id -> struct{}, the ids given their own value
	count atomic.Int64
}

func newClientLabels(cfg ClientIDLabels) *clientLabels {
	l := &clientLabels{max: int64(cfg.Max)}
	if cfg.Allow != nil {
		l.allow = make(map[string]bool, len(cfg.Allow))
		for _, id := range cfg.Allow {
			l.allow[id] = true
		}
	}
	return l
}

// label returns the client_id value of id. A known id costs one map read.
func (l *clientLabels) label(id string) string {
	switch {
	case id == "":
		return noClientID
	case l.allow != nil:
		if l.allow[id] {
			return id
		}
		return otherClients
	}
	if _, ok := l.seen.Load(id); ok {
		return id
	}
	if l.count.Add(1) > l.max {
		l.count.Add(-1)
		return otherClients
	}
	if _, loaded := l.seen.LoadOrStore(id, struct{}{}); loaded {
		l.count.Add(-1) // another request took its place first
	}
	return id
}
