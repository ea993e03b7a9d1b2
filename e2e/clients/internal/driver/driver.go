// Package driver is what the Go client drivers under e2e/clients share: the command
// line the e2e tests call them with, the records they produce, and how they print what
// they read. Each driver is a small program over one Kafka client; the e2e tests in
// package e2e run it against `strait dev` and check its output, so every client is held
// to the same checks (e2e/client_matrix_test.go describes the commands).
package driver

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"time"
)

// Keys is how many distinct keys the keyed records cycle through.
const Keys = 100

// Key and Value are keyed record i's key and value.
func Key(i int) string   { return fmt.Sprintf("k%d", i%Keys) }
func Value(i int) string { return fmt.Sprintf("v%08d", i) }

// Special is one record of the records check.
type Special struct {
	Key       *string // nil: a null key
	Value     []byte
	Headers   [][2]string
	Timestamp time.Time // zero: the client's own (now)
}

// Specials are the records check's records, produced in this order to a topic of one
// partition: headers and a set timestamp, a null key, an empty value, 900 KB.
func Specials() []Special {
	str := func(s string) *string { return &s }
	large := make([]byte, 900<<10)
	for i := range large {
		large[i] = byte('a' + i%26)
	}
	return []Special{
		{Key: str("headers"), Value: []byte("with headers and a timestamp"),
			Headers: [][2]string{{"h1", "one"}, {"h2", ""}}, Timestamp: time.UnixMilli(1_700_000_000_000)},
		{Key: nil, Value: []byte("null key")},
		{Key: str("empty"), Value: []byte{}},
		{Key: str("large"), Value: large},
	}
}

// Consumed is a record of the records check as drivers print it.
type Consumed struct {
	Key         *string     `json:"key"`
	ValueLen    int         `json:"value_len"`
	ValueSHA256 string      `json:"value_sha256"`
	Headers     [][2]string `json:"headers"`
	TimestampMs int64       `json:"ts"`
}

// NewConsumed describes a consumed record; a nil key is a null one.
func NewConsumed(key []byte, keyNull bool, value []byte, headers [][2]string, ts time.Time) Consumed {
	sum := sha256.Sum256(value)
	c := Consumed{ValueLen: len(value), ValueSHA256: hex.EncodeToString(sum[:]), Headers: headers, TimestampMs: ts.UnixMilli()}
	if !keyNull {
		k := string(key)
		c.Key = &k
	}
	if c.Headers == nil {
		c.Headers = [][2]string{}
	}
	return c
}

var out sync.Mutex

// PrintJSON writes v as one line of JSON.
func PrintJSON(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		Fatalf("encode output: %v", err)
	}
	Println(string(b))
}

// Println writes one line; members of a group print from several goroutines.
func Println(s string) {
	out.Lock()
	defer out.Unlock()
	fmt.Println(s)
}

// PrintPosition prints a consumed keyed record: "partition offset key value".
func PrintPosition(partition int32, offset int64, key, value []byte) {
	Println(fmt.Sprintf("%d %d %s %s", partition, offset, key, value))
}

// PrintMember prints a record a group member consumed: "member partition offset".
func PrintMember(member int, partition int32, offset int64) {
	Println(fmt.Sprintf("%d %d %d", member, partition, offset))
}

// Fatalf reports a failure on stderr and exits 1.
func Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

// Atoi parses a numeric argument or exits.
func Atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		Fatalf("argument %q: %v", s, err)
	}
	return n
}

// Command runs one command with its arguments after the bootstrap address.
type Command struct {
	Args int // how many arguments follow the bootstrap address
	Run  func(bootstrap string, args []string) error
}

// Main runs the command the program was called with:
//
//	driver version              prints the version of module, the client, as built
//	driver COMMAND BOOTSTRAP ARGS...
func Main(module string, commands map[string]Command) {
	if len(os.Args) == 2 && os.Args[1] == "version" {
		fmt.Println(moduleVersion(module))
		return
	}
	if len(os.Args) < 3 {
		Fatalf("usage: %s version | COMMAND BOOTSTRAP ARGS...", os.Args[0])
	}
	name, bootstrap, args := os.Args[1], os.Args[2], os.Args[3:]
	cmd, ok := commands[name]
	if !ok {
		Fatalf("unknown command %q", name)
	}
	if len(args) != cmd.Args {
		Fatalf("%s takes %d arguments after the bootstrap address, got %d", name, cmd.Args, len(args))
	}
	if err := cmd.Run(bootstrap, args); err != nil {
		Fatalf("%s: %v", name, err)
	}
}

// moduleVersion is the version of module the program was built with, so the
// compatibility table names what ran, not what someone wrote down.
func moduleVersion(module string) string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, dep := range info.Deps {
		if dep.Path == module {
			return dep.Version
		}
	}
	return "unknown"
}

// Positions is the set of records a group's members have consumed, by partition and
// offset; members stop once it holds the records asked for.
type Positions struct {
	mu   sync.Mutex
	seen map[[2]int64]bool
	want int
	done chan struct{}
}

// NewPositions returns a set that is done once it holds want records.
func NewPositions(want int) *Positions {
	return &Positions{seen: make(map[[2]int64]bool), want: want, done: make(chan struct{})}
}

// Add records a consumed record.
func (p *Positions) Add(partition int32, offset int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen[[2]int64{int64(partition), offset}] = true
	if len(p.seen) == p.want {
		close(p.done)
	}
}

// Done is closed once every record asked for was consumed.
func (p *Positions) Done() <-chan struct{} { return p.done }
