package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// pki is a throwaway CA and a server certificate for 127.0.0.1, written as PEM files.
type pki struct {
	dir               string
	caFile            string
	certFile, keyFile string
	pool              *x509.CertPool
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "strait test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	p := &pki{dir: dir, caFile: filepath.Join(dir, "ca.pem"), pool: x509.NewCertPool()}
	p.pool.AddCert(caCert)
	writePEM(t, p.caFile, "CERTIFICATE", caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "strait"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	p.certFile, p.keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writePEM(t, p.certFile, "CERTIFICATE", der)
	writePEM(t, p.keyFile, "EC PRIVATE KEY", keyDER)
	return p
}

func writePEM(t *testing.T, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startSecureDev runs strait dev with a SASL_SSL listener, users alice (a super user)
// bob and carol, and returns the listener's address.
func startSecureDev(t *testing.T, p *pki) string {
	t.Helper()
	addr := FreeAddr(t)
	StartDev(t, Name("dev-sasl-ssl"), Args(
		"--listeners", "SASL_SSL://"+addr,
		"--tls-cert", p.certFile, "--tls-key", p.keyFile, "--tls-ca", p.caFile,
		"--sasl-users", "alice:alice-secret,bob:bob-secret,carol:carol-secret",
		"--super-users", "User:alice",
	))
	return addr
}

func scramClient(t *testing.T, p *pki, addr, user, password string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return scramClientOver(t, &tls.Config{RootCAs: p.pool}, addr, user, password, opts...)
}

// scramClientOver is a SCRAM-SHA-512 client, over TLS with tlsCfg or, when it is nil,
// over plaintext (SASL_PLAINTEXT).
func scramClientOver(t *testing.T, tlsCfg *tls.Config, addr, user, password string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	all := []kgo.Opt{kgo.SeedBrokers(addr),
		kgo.SASL(scram.Auth{User: user, Pass: password}.AsSha512Mechanism()),
		kgo.RequestRetries(2), kgo.RetryTimeout(5 * time.Second),
	}
	if tlsCfg != nil {
		all = append(all, kgo.DialTLSConfig(tlsCfg))
	}
	all = append(all, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// TestSecurityFranzGoScramOverTLS: franz-go produces and consumes over SASL_SSL with
// SCRAM-SHA-512; a wrong password is SASL_AUTHENTICATION_FAILED; a principal no ACL
// allows to read gets TOPIC_AUTHORIZATION_FAILED and sees nothing of the topic.
func TestSecurityFranzGoScramOverTLS(t *testing.T) {
	p := newPKI(t)
	addr := startSecureDev(t, p)
	const topic = "secure-orders"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	alice := scramClient(t, p, addr, "alice", "alice-secret", kgo.AllowAutoTopicCreation())
	for i := range 5 {
		if err := alice.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte{byte('a' + i)}}).FirstErr(); err != nil {
			t.Fatalf("alice produce: %v", err)
		}
	}
	reader := scramClient(t, p, addr, "alice", "alice-secret", kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	consumeAll(t, reader, 5, 20*time.Second)

	wrong := scramClient(t, p, addr, "alice", "not-her-password")
	err := wrong.Ping(ctx)
	if !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
	}

	bob := scramClient(t, p, addr, "bob", "bob-secret", kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	short, cancelShort := context.WithTimeout(ctx, 5*time.Second)
	defer cancelShort()
	fs := bob.PollFetches(short)
	denied := false
	fs.EachError(func(tp string, _ int32, err error) {
		denied = denied || errors.Is(err, kerr.TopicAuthorizationFailed)
	})
	if !denied || fs.NumRecords() != 0 {
		t.Fatalf("bob, without ACLs: %d records, errors %v; want TOPIC_AUTHORIZATION_FAILED and nothing", fs.NumRecords(), fs.Errors())
	}
}

// execCommand is an external tool run with the test's clean environment.
func execCommand(ctx context.Context, path string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = cleanEnv()
	return cmd
}
