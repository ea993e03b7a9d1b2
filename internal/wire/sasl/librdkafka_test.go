package sasl

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"hash"
	"strconv"
	"strings"
	"testing"
)

// librdkafkaClient builds SCRAM messages the way librdkafka (kcat, confluent-kafka)
// does: a 32-character nonce of the printable bytes '-' to '~' (so '=', '\\' and '~'
// occur), a user name with ',' and '=' escaped, the GS2 header "n,,", a final message's
// channel binding "biws", and a final nonce of its own nonce followed by the whole of
// the server's.
type librdkafkaClient struct {
	newHash  func() hash.Hash
	user     string
	password string
	cnonce   string
	bare     string
}

func (c *librdkafkaClient) first() string {
	name := strings.NewReplacer(",", "=2C", "=", "=3D").Replace(c.user)
	c.bare = "n=" + name + ",r=" + c.cnonce
	return "n,," + c.bare
}

// serverFirstAttrs splits server-first into its attributes, r, s and i.
func serverFirstAttrs(t *testing.T, serverFirst, cnonce string) map[string]string {
	t.Helper()
	attrs := map[string]string{}
	for _, kv := range strings.Split(serverFirst, ",") {
		attrs[kv[:1]] = kv[2:]
	}
	if !strings.HasPrefix(attrs["r"], cnonce) || len(attrs["r"]) == len(cnonce) {
		t.Fatalf("server-first %q: its nonce does not extend the client's %q", serverFirst, cnonce)
	}
	return attrs
}

// final answers server-first as librdkafka does; it returns the message and the
// server signature the client expects in server-final.
func (c *librdkafkaClient) final(t *testing.T, serverFirst string) (string, string) {
	t.Helper()
	return c.finalWith(t, serverFirst, c.cnonce+serverFirstAttrs(t, serverFirst, c.cnonce)["r"])
}

// finalWith answers server-first with nonce, signed.
func (c *librdkafkaClient) finalWith(t *testing.T, serverFirst, nonce string) (string, string) {
	t.Helper()
	attrs := serverFirstAttrs(t, serverFirst, c.cnonce)
	salt, err := base64.StdEncoding.DecodeString(attrs["s"])
	if err != nil {
		t.Fatalf("server-first salt: %v", err)
	}
	iterations, _ := strconv.Atoi(attrs["i"])
	salted, err := pbkdf2.Key(c.newHash, c.password, salt, iterations, c.newHash().Size())
	if err != nil {
		t.Fatal(err)
	}
	mac := func(key []byte, s string) []byte {
		m := hmac.New(c.newHash, key)
		m.Write([]byte(s))
		return m.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	stored := c.newHash()
	stored.Write(clientKey)
	withoutProof := "c=biws,r=" + nonce
	authMessage := c.bare + "," + serverFirst + "," + withoutProof
	signature := mac(stored.Sum(nil), authMessage)
	proof := make([]byte, len(clientKey))
	for i := range proof {
		proof[i] = clientKey[i] ^ signature[i]
	}
	serverSignature := base64.StdEncoding.EncodeToString(mac(mac(salted, "Server Key"), authMessage))
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof), serverSignature
}

// TestScramLibrdkafkaMessages authenticates librdkafka's messages, both mechanisms:
// before the server accepted a final nonce that ends with the agreed one, as Kafka's
// brokers do, every kcat and confluent-kafka client failed SCRAM.
func TestScramLibrdkafkaMessages(t *testing.T) {
	for _, tc := range []struct {
		mech    string
		newHash func() hash.Hash
		user    string
	}{
		{ScramSHA256, sha256.New, "alice"},
		{ScramSHA512, sha512.New, "alice"},
		{ScramSHA512, sha512.New, "ops=team,eu"},
	} {
		t.Run(tc.mech+"/"+tc.user, func(t *testing.T) {
			cred, err := NewScramCredential(tc.mech, "s3cr=t,pw", MinScramIterations)
			if err != nil {
				t.Fatal(err)
			}
			m, _ := NewScram(tc.mech, memCreds{tc.user + "/" + tc.mech: cred})
			client := &librdkafkaClient{newHash: tc.newHash, user: tc.user, password: "s3cr=t,pw",
				cnonce: `-=.\~}A9z=Q-~\b=c=d.e\f~g-h=ij;k`}
			s := m.NewSession()
			ctx := context.Background()
			serverFirst, done, err := s.Step(ctx, []byte(client.first()))
			if err != nil || done {
				t.Fatalf("client-first %q: %v, done %v", client.first(), err, done)
			}
			final, wantSignature := client.final(t, string(serverFirst))
			if strings.Count(final, client.cnonce) != 2 {
				t.Fatalf("client-final %q should carry the client nonce twice, as librdkafka's does", final)
			}
			serverFinal, done, err := s.Step(ctx, []byte(final))
			if err != nil || !done {
				t.Fatalf("client-final %q: %v, done %v", final, err, done)
			}
			if string(serverFinal) != "v="+wantSignature {
				t.Fatalf("server-final %q, want v=%s", serverFinal, wantSignature)
			}
			if s.Principal() != "User:"+tc.user {
				t.Fatalf("principal %q, want User:%s", s.Principal(), tc.user)
			}
		})
	}
}

// TestScramFinalNonce: a final nonce must end with the whole nonce of server-first;
// what comes before it is signed by the proof, so it may be anything printable.
func TestScramFinalNonce(t *testing.T) {
	cred, _ := NewScramCredential(ScramSHA256, "pw", MinScramIterations)
	m, _ := NewScram(ScramSHA256, memCreds{"bob/" + ScramSHA256: cred})
	for _, tc := range []struct {
		name  string
		nonce func(cnonce, agreed string) string
		ok    bool
	}{
		{"exact (RFC 5802)", func(_, agreed string) string { return agreed }, true},
		{"client nonce first (librdkafka)", func(c, agreed string) string { return c + agreed }, true},
		{"client nonce only", func(c, _ string) string { return c }, false},
		{"server part cut short", func(_, agreed string) string { return agreed[:len(agreed)-1] }, false},
		{"server part changed", func(_, agreed string) string { return agreed[:len(agreed)-1] + "!" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := &librdkafkaClient{newHash: sha256.New, user: "bob", password: "pw", cnonce: "fyko+d2lbbFgONRv9qkxdawL"}
			s := m.NewSession()
			serverFirst, _, err := s.Step(context.Background(), []byte(client.first()))
			if err != nil {
				t.Fatal(err)
			}
			agreed := serverFirstAttrs(t, string(serverFirst), client.cnonce)["r"]
			nonce := tc.nonce(client.cnonce, agreed)
			final, _ := client.finalWith(t, string(serverFirst), nonce)
			_, done, err := s.Step(context.Background(), []byte(final))
			if tc.ok != done || tc.ok != (err == nil) {
				t.Fatalf("nonce %q (agreed %q): done %v, err %v; want ok %v", nonce, agreed, done, err, tc.ok)
			}
			if !tc.ok && !errors.Is(err, ErrAuthenticationFailed) {
				t.Fatalf("err %v, want ErrAuthenticationFailed", err)
			}
		})
	}
}
