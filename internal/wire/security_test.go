package wire

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/wire/sasl"
)

// testCA issues certificates for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue makes a certificate for cn, good for 127.0.0.1 as a server and as a client.
func (ca *testCA) issue(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

type credMap map[string]sasl.ScramCredential

func (m credMap) ScramCredential(_ context.Context, user, mech string) (sasl.ScramCredential, bool, error) {
	c, ok := m[user+"/"+mech]
	return c, ok, nil
}

// secureServer starts a SASL_SSL server whose handler records each request's origin;
// internal peers are certificates named CN=node.
// The failures it heard are read with the function it returns (the server's
// connection goroutines append to them).
func secureServer(t *testing.T, ca *testCA, maxReauth time.Duration) (string, *originRecorder, func() []AuthFailure) {
	t.Helper()
	cred, err := sasl.NewScramCredential(sasl.ScramSHA256, "secret", sasl.MinScramIterations)
	if err != nil {
		t.Fatal(err)
	}
	plain := sasl.NewPlain(credMap{"alice/" + sasl.ScramSHA256: cred})
	var mu sync.Mutex
	var failures []AuthFailure
	rec := &originRecorder{}
	serverCert := ca.issue(t, "server")
	addr := startServer(t, &Server{Handler: rec, Security: Security{
		Listener: "SASL_SSL",
		TLS: &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: ca.pool,
			ClientAuth: tls.VerifyClientCertIfGiven},
		SASL:         &SASLConfig{Mechanisms: []sasl.Mechanism{plain}, MaxReauth: maxReauth},
		InternalPeer: func(p string) bool { return p == "User:CN=node" },
		OnAuthFailure: func(f AuthFailure) {
			mu.Lock()
			defer mu.Unlock()
			failures = append(failures, f)
		},
	}})
	return addr, rec, func() []AuthFailure {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(failures)
	}
}

func tlsOptions(ca *testCA, certs ...tls.Certificate) func() (*tls.Config, error) {
	return func() (*tls.Config, error) {
		return &tls.Config{RootCAs: ca.pool, Certificates: certs}, nil
	}
}

func authenticate(t *testing.T, c *Client, password string) *kmsg.SASLAuthenticateResponse {
	t.Helper()
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, sasl.Plain
	if resp := mustDo(t, c, t.Context(), hs).(*kmsg.SASLHandshakeResponse); resp.ErrorCode != 0 {
		t.Fatalf("SaslHandshake: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	au := kmsg.NewPtrSASLAuthenticateRequest()
	au.Version, au.SASLAuthBytes = 1, []byte("\x00alice\x00"+password)
	return mustDo(t, c, t.Context(), au).(*kmsg.SASLAuthenticateResponse)
}

// TestSASLOverTLS: requests before authentication close the connection; PLAIN
// authenticates and names the principal handlers see; a wrong password is answered
// SASL_AUTHENTICATION_FAILED, then the connection closes (KIP-152).
func TestSASLOverTLS(t *testing.T) {
	ca := newTestCA(t)
	addr, rec, failures := secureServer(t, ca, 0)

	early := dial(t, addr, ClientOptions{ClientID: "early", TLS: tlsOptions(ca)})
	if _, err := early.Do(t.Context(), metadataRequest(12, "t")); err == nil {
		t.Fatal("a request before authentication was answered")
	}

	c := dial(t, addr, ClientOptions{ClientID: "app", TLS: tlsOptions(ca)})
	if resp := authenticate(t, c, "secret"); resp.ErrorCode != 0 || resp.SessionLifetimeMillis != 0 {
		t.Fatalf("SaslAuthenticate: %v, lifetime %d", kerr.ErrorForCode(resp.ErrorCode), resp.SessionLifetimeMillis)
	}
	mustDo(t, c, t.Context(), metadataRequest(12, "t"))
	if got := rec.last(t); got.Principal != "User:alice" || got.Listener != "SASL_SSL" {
		t.Fatalf("origin after PLAIN: %+v", got)
	}

	bad := dial(t, addr, ClientOptions{ClientID: "bad", TLS: tlsOptions(ca)})
	if resp := authenticate(t, bad, "wrong"); resp.ErrorCode != kerr.SaslAuthenticationFailed.Code {
		t.Fatalf("wrong password answered %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	if _, err := bad.Do(t.Context(), metadataRequest(12, "t")); err == nil {
		t.Fatal("the connection stayed open after a failed authentication")
	}
	if f := failures(); len(f) == 0 || f[len(f)-1].Principal != "User:alice" {
		t.Fatalf("failures heard: %+v", f)
	}
}

// TestSASLSessionExpires: SessionLifetimeMs says when to re-authenticate (KIP-368);
// a request after it closes the connection, and re-authenticating in time keeps it.
func TestSASLSessionExpires(t *testing.T) {
	ca := newTestCA(t)
	addr, _, _ := secureServer(t, ca, 300*time.Millisecond)
	c := dial(t, addr, ClientOptions{ClientID: "app", TLS: tlsOptions(ca)})
	if resp := authenticate(t, c, "secret"); resp.SessionLifetimeMillis <= 0 || resp.SessionLifetimeMillis > 300 {
		t.Fatalf("session lifetime %d ms, want at most 300", resp.SessionLifetimeMillis)
	}
	time.Sleep(200 * time.Millisecond)
	if resp := authenticate(t, c, "secret"); resp.ErrorCode != 0 {
		t.Fatalf("re-authentication: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	time.Sleep(200 * time.Millisecond)
	mustDo(t, c, t.Context(), metadataRequest(12, "t")) // within the renewed session
	time.Sleep(200 * time.Millisecond)
	if _, err := c.Do(t.Context(), metadataRequest(12, "t")); err == nil {
		t.Fatal("a request after the session expired was answered")
	}
}

// TestInternalPeersByCertificate: a connection whose certificate names an internal
// peer skips SASL and speaks for its clients (principal included); one without such a
// certificate cannot claim to be internal, and one with a certificate of another CA
// fails its TLS handshake.
func TestInternalPeersByCertificate(t *testing.T) {
	ca := newTestCA(t)
	addr, rec, failures := secureServer(t, ca, 0)
	claimed := Origin{ClientID: "real", ClientAddr: "192.0.2.1:1", Principal: "User:carol", Listener: "SASL_SSL"}
	ctx := WithOrigin(t.Context(), claimed)

	node := dial(t, addr, ClientOptions{ClientID: "strait-proxy", Internal: true, TLS: tlsOptions(ca, ca.issue(t, "node"))})
	mustDo(t, node, ctx, metadataRequest(12, "t"))
	if got := rec.last(t); got != claimed {
		t.Fatalf("internal peer's request: origin %+v, want %+v", got, claimed)
	}

	other := dial(t, addr, ClientOptions{ClientID: "strait-proxy", Internal: true, TLS: tlsOptions(ca, ca.issue(t, "mallory"))})
	if _, err := other.Do(ctx, metadataRequest(12, "t")); err == nil {
		t.Fatal("a peer with another certificate was served without SASL")
	}

	foreign := newTestCA(t)
	_, err := Dial(t.Context(), addr, ClientOptions{ClientID: "x", Internal: true, TLS: tlsOptions(ca, foreign.issue(t, "node"))})
	if err == nil {
		t.Fatal("a certificate of another CA was accepted")
	}
	deadline := time.Now().Add(time.Second)
	for len(failures()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if f := failures(); len(f) == 0 || f[0].Mechanism != "TLS" {
		t.Fatalf("failures heard: %+v", f)
	}
}

// TestTLSReloader: new files on disk are served to the next connection.
func TestTLSReloader(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	write := func(cn string) {
		c := ca.issue(t, cn)
		key, _ := x509.MarshalECPrivateKey(c.PrivateKey.(*ecdsa.PrivateKey))
		os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o600)
		os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: key}), 0o600)
	}
	write("first")
	os.WriteFile(filepath.Join(dir, "ca.pem"), ca.pem, 0o600)
	r, err := NewTLSReloader(TLSFiles{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem"), CAFile: filepath.Join(dir, "ca.pem")}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := r.Principal(); p != "User:CN=first" {
		t.Fatalf("principal %q", p)
	}
	time.Sleep(10 * time.Millisecond) // a new modification time
	write("second")
	r.mu.Lock()
	r.mu.checkedAt = time.Time{} // as if a second had passed
	r.mu.Unlock()
	if p, _ := r.Principal(); p != "User:CN=second" {
		t.Fatalf("after the files changed, principal %q", p)
	}
}
