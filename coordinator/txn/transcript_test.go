package txn

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

var rewrite = flag.Bool("rewrite", false, "rewrite testdata/*.txt with the actual output")

// TestTranscripts runs the transcripts in testdata/: each case is a
// command, a line "----" and the expected output up to a blank line; comments (#) cite
// the Kafka behaviour checked. Run with -rewrite to regenerate, and review the diff.
//
// Commands:
//
//	init id=T [timeout=60s] [pid=P epoch=E]      InitProducerId (pid/epoch: KIP-360)
//	add id=T pid=P epoch=E parts=a-0,b-1           AddPartitionsToTxn / AddOffsetsToTxn
//	verify id=T pid=P epoch=E parts=a-0            AddPartitionsToTxn v4+ VerifyOnly (KIP-890)
//	end id=T pid=P epoch=E commit|abort [bump]     EndTxn (bump: v5+, KIP-890 part 2)
//	markers id=T                                   the markers last sent for T are all written
//	tick D                                         the clock moves on by D, then Tick
//	fail-write                                     the next record write fails
//	reload                                         a new coordinator replays the records written
//	state                                          every transaction
//
// Writes are shown as "write:", markers sent as "markers:", then every transaction.
func TestTranscripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txt")
	if len(files) == 0 {
		t.Fatal("no transcripts")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) { runTranscript(t, file) })
	}
}

func runTranscript(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	h := newHarness()
	var out strings.Builder
	for i := 0; i < len(lines); {
		line := lines[i]
		if line == "" || strings.HasPrefix(line, "#") {
			out.WriteString(line + "\n")
			i++
			continue
		}
		pos := fmt.Sprintf("%s:%d", filepath.Base(file), i+1)
		if i+1 >= len(lines) || lines[i+1] != "----" {
			t.Fatalf("%s: command without ----", pos)
		}
		i += 2
		var want []string
		for ; i < len(lines) && lines[i] != ""; i++ {
			want = append(want, lines[i])
		}
		got := strings.TrimRight(h.run(t, pos, line), "\n")
		if !*rewrite && got != strings.Join(want, "\n") {
			t.Errorf("%s: %s\n got:\n%s\nwant:\n%s", pos, line, got, strings.Join(want, "\n"))
		}
		out.WriteString(line + "\n----\n" + got + "\n")
	}
	if *rewrite {
		if err := os.WriteFile(file, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// harness drives a Machine as the runtime does: records are written (to an in-memory
// log, encoded as Kafka's) before they are applied.
type harness struct {
	m         *Machine
	now       time.Time
	nextPID   int64
	log       [][2][]byte // written records, key and value
	failWrite bool
	markers   map[string]*Markers
}

var t0 = time.UnixMilli(1_700_000_000_000)

func newHarness() *harness {
	return &harness{m: New(Config{IDExpiration: time.Hour}), now: t0, nextPID: 1000, markers: map[string]*Markers{}}
}

func (h *harness) newPID() (int64, error) {
	h.nextPID++
	return h.nextPID, nil
}

func (h *harness) run(t *testing.T, pos, line string) string {
	fields := strings.Fields(line)
	args := map[string]string{}
	flags := map[string]bool{}
	for _, f := range fields[1:] {
		if k, v, ok := strings.Cut(f, "="); ok {
			args[k] = v
		} else {
			flags[f] = true
		}
	}
	num := func(k string, def int64) int64 {
		v, ok := args[k]
		if !ok {
			return def
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("%s: %s=%q: %v", pos, k, v, err)
		}
		return n
	}
	var b strings.Builder
	id := args["id"]
	switch fields[0] {
	case "init":
		timeout := 60 * time.Second
		if v, ok := args["timeout"]; ok {
			var err error
			if timeout, err = time.ParseDuration(v); err != nil {
				t.Fatalf("%s: %v", pos, err)
			}
		}
		h.result(&b, h.m.InitProducerID(id, int32(timeout.Milliseconds()), num("pid", -1), int16(num("epoch", -1)), h.now, h.newPID))
	case "add":
		h.result(&b, h.m.AddPartitions(id, num("pid", 0), int16(num("epoch", 0)), parseParts(args["parts"]), h.now))
	case "verify":
		parts := parseParts(args["parts"])
		for i, c := range h.m.Verify(id, num("pid", 0), int16(num("epoch", 0)), parts) {
			fmt.Fprintf(&b, "verify %s: %s\n", parts[i], codeName(c))
		}
	case "end":
		h.result(&b, h.m.EndTransaction(id, num("pid", 0), int16(num("epoch", 0)), flags["commit"], flags["bump"], h.now, h.newPID))
	case "markers":
		mk := h.markers[id]
		if mk == nil {
			t.Fatalf("%s: no markers sent for %s", pos, id)
		}
		delete(h.markers, id)
		h.result(&b, h.m.MarkersWritten(mk, h.now))
	case "tick":
		d, err := time.ParseDuration(fields[1])
		if err != nil {
			t.Fatalf("%s: %v", pos, err)
		}
		h.now = h.now.Add(d)
		for _, res := range h.m.Tick(h.now) {
			res.Code, res.ProducerID, res.Epoch = 0, 0, 0 // nobody to answer
			h.result(&b, res)
		}
		if d, ok := h.m.NextDeadline(); ok {
			fmt.Fprintf(&b, "next deadline: +%s\n", d.Sub(h.now))
		}
	case "fail-write":
		h.failWrite = true
	case "reload":
		h.m = New(Config{IDExpiration: time.Hour})
		for _, rec := range h.log {
			txn, ok, err := DecodeRecord(rec[0], rec[1])
			if err != nil || !ok {
				t.Fatalf("%s: replay: %v %v", pos, ok, err)
			}
			h.m.Apply(txn)
		}
		h.markers = map[string]*Markers{}
		for _, mk := range h.m.Prepared() {
			h.sendMarkers(&b, mk)
		}
	case "state":
	default:
		t.Fatalf("%s: unknown command %q", pos, fields[0])
	}
	for _, txn := range h.m.All() {
		fmt.Fprintf(&b, "%s\n", txn)
	}
	return b.String()
}

// result writes what the runtime would do with res: write its record (or fail to), then
// answer and send its markers.
func (h *harness) result(b *strings.Builder, res Result) {
	if res.Write != nil {
		if h.failWrite {
			h.failWrite = false
			fmt.Fprintf(b, "write failed: %s\n", res.Write)
			fmt.Fprintf(b, "answer: %s\n", codeName(kerr.CoordinatorNotAvailable.Code))
			return
		}
		key, value := res.Write.Record()
		h.log = append(h.log, [2][]byte{key, value})
		fmt.Fprintf(b, "write: %s\n", res.Write)
		h.m.Apply(res.Write)
	}
	if res.Code != 0 || res.ProducerID != 0 || res.Epoch != 0 {
		fmt.Fprintf(b, "answer: %s pid=%d epoch=%d\n", codeName(res.Code), res.ProducerID, res.Epoch)
	}
	if res.Markers != nil {
		h.sendMarkers(b, res.Markers)
	}
}

func (h *harness) sendMarkers(b *strings.Builder, mk *Markers) {
	kind := "ABORT"
	if mk.Commit {
		kind = "COMMIT"
	}
	var parts []string
	for _, tp := range mk.Partitions {
		parts = append(parts, tp.String())
	}
	fmt.Fprintf(b, "markers: %s %s pid=%d epoch=%d [%s]\n", kind, mk.ID, mk.ProducerID, mk.Epoch, strings.Join(parts, " "))
	h.markers[mk.ID] = mk
}

func parseParts(s string) []TopicPartition {
	var out []TopicPartition
	for _, p := range strings.Split(s, ",") {
		i := strings.LastIndexByte(p, '-')
		n, _ := strconv.Atoi(p[i+1:])
		out = append(out, TopicPartition{p[:i], int32(n)})
	}
	return out
}

func codeName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	if err := kerr.ErrorForCode(code); err != nil {
		return err.(*kerr.Error).Message
	}
	return strconv.Itoa(int(code))
}
