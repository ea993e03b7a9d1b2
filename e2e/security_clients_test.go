package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// confluentScramPy produces and consumes with confluent-kafka (librdkafka) over SASL_SSL:
//
//	scram.py BOOTSTRAP CA MECHANISM USER PASSWORD TOPIC produce N   writes N records
//	scram.py ... consume N                                         prints N records' values
//	scram.py ... refused                                           exits 0 once told authentication failed
const confluentScramPy = `
import sys
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

bootstrap, ca, mechanism, user, password, topic, mode = sys.argv[1:8]
conf = {
    "bootstrap.servers": bootstrap,
    "security.protocol": "SASL_SSL",
    "ssl.ca.location": ca,
    "sasl.mechanism": mechanism,
    "sasl.username": user,
    "sasl.password": password,
}
if mode == "produce":
    p = Producer(conf)
    failed = []
    for i in range(int(sys.argv[8])):
        p.produce(topic, value="py-%d" % i, partition=0,
                  on_delivery=lambda err, msg: err and failed.append(err))
    if p.flush(20) != 0 or failed:
        print("not delivered:", failed, file=sys.stderr)
        sys.exit(1)
elif mode == "consume":
    c = Consumer(dict(conf, **{"group.id": "py-scram", "enable.auto.commit": False}))
    c.assign([TopicPartition(topic, 0, 0)])
    want, got = int(sys.argv[8]), 0
    while got < want:
        m = c.poll(20)
        if m is None:
            print("no record within 20s after", got, file=sys.stderr)
            sys.exit(1)
        if m.error():
            print("consume error:", m.error(), file=sys.stderr)
            sys.exit(1)
        print(m.value().decode())
        got += 1
    c.close()
elif mode == "refused":
    # librdkafka reports the refusal to error_cb, which poll serves.
    errors = []
    p = Producer(dict(conf, error_cb=errors.append))
    deadline = time.monotonic() + 20
    auth = []
    while not auth and time.monotonic() < deadline:
        p.poll(0.2)
        auth = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
    print(auth[0].str() if auth else "no authentication error in %s" % errors)
    sys.exit(0 if auth else 1)
`

// TestSecurityConfluentPythonScram: confluent-kafka produces and consumes over SASL_SSL
// with SCRAM-SHA-512, and a wrong password is refused as an authentication failure.
func TestSecurityConfluentPythonScram(t *testing.T) {
	requirePythonModule(t, "confluent_kafka")
	p := newPKI(t)
	addr := startSecureDev(t, p)
	script := filepath.Join(t.TempDir(), "scram.py")
	if err := os.WriteFile(script, []byte(confluentScramPy), 0o644); err != nil {
		t.Fatal(err)
	}
	const topic, n = "py-scram", 20
	run := func(password string, mode ...string) string {
		t.Helper()
		args := append([]string{script, addr, p.caFile, "SCRAM-SHA-512", "alice", password, topic}, mode...)
		return runTool(t, "", systemPython, args...)
	}
	run("alice-secret", "produce", fmt.Sprint(n))
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("py-%d", i))
	}
	if got := strings.Fields(run("alice-secret", "consume", fmt.Sprint(n))); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("consumed %v, want %v", got, want)
	}
	if out := run("not-alice-secret", "refused"); !strings.Contains(out, "Authentication failed") {
		t.Fatalf("wrong password: %q, want an authentication failure", out)
	}
}

// TestSecurityKcatOverTLS: kcat (librdkafka) produces and consumes over SASL_SSL with
// each mechanism, and a wrong password is refused.
func TestSecurityKcatOverTLS(t *testing.T) {
	kcat := requireTool(t, "kcat")
	p := newPKI(t)
	addr := startSecureDev(t, p)
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			topic := "kcat-" + strings.ToLower(mech)
			args := func(password string, rest ...string) []string {
				return append([]string{"-b", addr, "-X", "security.protocol=SASL_SSL", "-X", "ssl.ca.location=" + p.caFile,
					"-X", "sasl.mechanism=" + mech, "-X", "sasl.username=alice", "-X", "sasl.password=" + password}, rest...)
			}
			input := "one\ntwo\nthree\n"
			runTool(t, input, kcat, args("alice-secret", "-P", "-t", topic, "-p", "0")...)
			out := runTool(t, "", kcat, args("alice-secret", "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q")...)
			if out != input {
				t.Fatalf("kcat read %q, want %q", out, input)
			}
			ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
			defer cancel()
			output, err := execCommand(ctx, kcat, args("wrong", "-L", "-m", "3")...).CombinedOutput()
			if err == nil || !strings.Contains(string(output), "Authentication failed") {
				t.Fatalf("kcat with a wrong password: err %v, output:\n%s", err, output)
			}
		})
	}
}
