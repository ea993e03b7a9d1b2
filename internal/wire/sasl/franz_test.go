package sasl

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// TestScramWithFranzGo runs franz-go's SCRAM client against the server session.
func TestScramWithFranzGo(t *testing.T) {
	for _, mech := range []string{ScramSHA256, ScramSHA512} {
		cred, _ := NewScramCredential(mech, "secret", MinScramIterations)
		m, _ := NewScram(mech, memCreds{"alice/" + mech: cred})
		auth := scram.Auth{User: "alice", Pass: "secret"}
		client := auth.AsSha256Mechanism()
		if mech == ScramSHA512 {
			client = auth.AsSha512Mechanism()
		}
		ctx := context.Background()
		sess, msg, err := client.Authenticate(ctx, "host")
		if err != nil {
			t.Fatal(err)
		}
		server := m.NewSession()
		for i := 0; ; i++ {
			answer, done, err := server.Step(ctx, msg)
			if err != nil {
				t.Fatalf("%s step %d: %v (client sent %q)", mech, i, err, msg)
			}
			var clientDone bool
			clientDone, msg, err = sess.Challenge(answer)
			if err != nil {
				t.Fatalf("%s: client refused %q: %v", mech, answer, err)
			}
			if done || clientDone {
				if !(done && clientDone) {
					t.Fatalf("%s: server done %v, client done %v", mech, done, clientDone)
				}
				break
			}
		}
	}
}
