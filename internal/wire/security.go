package wire

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/wire/sasl"
)

// Security is how a Server's connections authenticate: its listener's security
// protocol, in Kafka's terms PLAINTEXT (the zero value), SSL (TLS), SASL_PLAINTEXT
// (SASL) or SASL_SSL (both).
//
// Who a connection is, its principal, comes from SASL on a SASL listener; otherwise
// from its TLS client certificate ("User:" and the subject, as Kafka's
// "User:CN=alice,O=org"), otherwise it is User:ANONYMOUS. On a SASL listener a
// connection whose client certificate names an internal peer is authenticated by it
// and skips SASL: Strait's own processes authenticate by certificate (mTLS).
type Security struct {
	// Listener names the listener: handlers read it as Origin.Listener, so that
	// Metadata answers with the addresses of the listener the client used.
	Listener string
	// TLS serves TLS. With ClientAuth at VerifyClientCertIfGiven or above, a client's
	// certificate, once verified, names its principal.
	TLS *tls.Config
	// SASL requires SASL authentication (SaslHandshake v1, SaslAuthenticate; KIP-152)
	// before any request but ApiVersions.
	SASL *SASLConfig
	// InternalPeer decides whether a connection whose verified client certificate
	// names principal may declare itself internal, and so speak for other clients
	// (Origin). Nil means: any connection may, on a listener that authenticates no one
	// (no SASL, no client certificates); none may, on one that does.
	InternalPeer func(principal string) bool
	// OnAuthFailure, when set, hears of every failed TLS handshake and SASL
	// authentication, for audit logs and metrics.
	OnAuthFailure func(AuthFailure)
}

// SASLConfig configures SASL on a listener.
type SASLConfig struct {
	Mechanisms []sasl.Mechanism
	// MaxReauth bounds an authenticated session (Kafka's connections.max.reauth.ms,
	// KIP-368): the answer to SaslAuthenticate tells the client, which authenticates
	// again in time; a connection that does not is closed at its next request.
	// 0: sessions last as long as their credentials (an OAUTHBEARER token's exp).
	MaxReauth time.Duration
}

// AuthFailure is one failed authentication.
type AuthFailure struct {
	Listener   string
	RemoteAddr string
	Mechanism  string // "TLS" for a failed handshake
	Principal  string // who the client claimed to be, when it said
	Err        error
}

// Keys of the SASL APIs, which the Server answers itself.
const (
	SASLHandshakeKey    = 17
	SASLAuthenticateKey = 36
)

// SASLAPIs are the versions of the SASL APIs a Server answers. SaslHandshake v0 is
// advertised, as Kafka does and as librdkafka requires before it uses SASL at all, but
// the raw tokens that follow a v0 handshake are not read: clients of the last years
// send SaslHandshake v1 and SaslAuthenticate (KIP-152), and an older one's connection
// closes on its first token.
var SASLAPIs = APITable{
	SASLHandshakeKey:    {Min: 0, Max: 1},
	SASLAuthenticateKey: {Min: 0, Max: 2},
}

// Errors that close a connection for want of authentication.
var (
	errNotAuthenticated = errors.New("request before SASL authentication")
	errSessionExpired   = errors.New("SASL session expired without re-authentication (KIP-368)")
	errAuthFailed       = errors.New("authentication failed")
)

// mayDeclareInternal reports whether a connection authenticated by its client
// certificate as principal ("" without one) may declare itself internal.
func (s *Security) mayDeclareInternal(principal string) bool {
	if s.InternalPeer == nil {
		return s.SASL == nil && (s.TLS == nil || s.TLS.ClientAuth < tls.VerifyClientCertIfGiven)
	}
	return principal != "" && s.InternalPeer(principal)
}

// handshakeTLS runs the TLS handshake of a new connection within the request read
// timeout, and returns the principal its verified client certificate names, if any.
func (c *conn) handshakeTLS() (string, error) {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return "", nil
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.limits.requestReadTimeout())
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		c.authFailed("TLS", "", err)
		return "", fmt.Errorf("%w: TLS handshake: %w", errAuthFailed, err)
	}
	return CertificatePrincipal(tc.ConnectionState()), nil
}

// CertificatePrincipal is the principal of a TLS connection's verified client
// certificate, "User:" and its subject as RFC 2253 writes it, as Kafka names it; ""
// without one.
func CertificatePrincipal(st tls.ConnectionState) string {
	if len(st.VerifiedChains) == 0 || len(st.PeerCertificates) == 0 {
		return ""
	}
	return "User:" + st.PeerCertificates[0].Subject.String()
}

func (c *conn) authFailed(mechanism, principal string, err error) {
	if f := c.srv.Security.OnAuthFailure; f != nil {
		f(AuthFailure{Listener: c.srv.Security.Listener, RemoteAddr: c.remote, Mechanism: mechanism, Principal: principal, Err: err})
	}
}

// connAuth is a connection's authentication: set up before the first request, then
// changed only by the SASL requests, which ordered handling serializes; the lock
// covers the reader's looks at it.
type connAuth struct {
	sync.Mutex
	cert          string       // the principal of the client certificate, if any
	principal     string       // who the connection is; "" until authenticated
	expiry        time.Time    // when the session ends; zero for never
	mechanism     string       // chosen by SaslHandshake
	session       sasl.Session // the exchange under way
	authenticated bool
}

// startAuth sets the connection's principal from its certificate where SASL does not
// decide it.
func (c *conn) startAuth(cert string) {
	c.auth.Lock()
	defer c.auth.Unlock()
	c.auth.cert = cert
	sec := &c.srv.Security
	switch {
	case sec.SASL == nil && cert != "":
		c.auth.principal, c.auth.authenticated = cert, true
	case sec.SASL == nil:
		c.auth.principal, c.auth.authenticated = anonymous, true
	case cert != "" && sec.InternalPeer != nil && sec.InternalPeer(cert):
		c.auth.principal, c.auth.authenticated = cert, true
	}
}

// anonymous is the principal of a connection that did not authenticate (Kafka's).
const anonymous = "User:ANONYMOUS"

// principal is who the connection is, "" until authenticated.
func (c *conn) principal() string {
	c.auth.Lock()
	defer c.auth.Unlock()
	return c.auth.principal
}

// certPrincipal is the principal the client certificate names, "" without one.
func (c *conn) certPrincipal() string {
	c.auth.Lock()
	defer c.auth.Unlock()
	return c.auth.cert
}

// gate runs before a request's handler: the SASL requests are answered here (handled
// is true), and any other request must come from an authenticated connection whose
// session has not expired, else the connection closes. ctx and req are given the
// connection's principal.
func (c *conn) gate(ctx context.Context, req *Request) (context.Context, kmsg.Response, bool, error) {
	switch req.Header.Key {
	case SASLHandshakeKey:
		resp, err := c.saslHandshake(req.Body.(*kmsg.SASLHandshakeRequest))
		return ctx, resp, true, err
	case SASLAuthenticateKey:
		resp, err := c.saslAuthenticate(ctx, req.Body.(*kmsg.SASLAuthenticateRequest))
		return ctx, resp, true, err
	}
	if req.Internal {
		return ctx, nil, false, nil // the origin names the client (dispatch)
	}
	c.auth.Lock()
	principal, ok, expiry := c.auth.principal, c.auth.authenticated, c.auth.expiry
	c.auth.Unlock()
	switch {
	case !ok && req.Header.Key == apiVersionsKey: // clients ask before they authenticate
	case !ok:
		return ctx, nil, true, fmt.Errorf("%w: %s", errNotAuthenticated, kmsg.NameForKey(req.Header.Key))
	case !expiry.IsZero() && time.Now().After(expiry):
		return ctx, nil, true, fmt.Errorf("%w: %s of %s", errSessionExpired, kmsg.NameForKey(req.Header.Key), principal)
	}
	req.Origin.Principal = principal
	o, _ := OriginFrom(ctx)
	o.Principal = principal
	return WithOrigin(ctx, o), nil, false, nil
}

// saslHandshake starts an exchange with the mechanism the client names.
func (c *conn) saslHandshake(req *kmsg.SASLHandshakeRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	cfg := c.srv.Security.SASL
	if cfg == nil {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		return resp, nil
	}
	for _, m := range cfg.Mechanisms {
		resp.SupportedMechanisms = append(resp.SupportedMechanisms, m.Name())
	}
	i := slices.IndexFunc(cfg.Mechanisms, func(m sasl.Mechanism) bool { return m.Name() == req.Mechanism })
	if i < 0 {
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		c.authFailed(req.Mechanism, "", fmt.Errorf("mechanism %q is not enabled on this listener", req.Mechanism))
		return resp, nil
	}
	c.auth.Lock()
	defer c.auth.Unlock()
	c.auth.mechanism, c.auth.session = req.Mechanism, cfg.Mechanisms[i].NewSession()
	return resp, nil
}

// saslAuthenticate passes one message of the exchange on. A failure is answered with
// SASL_AUTHENTICATION_FAILED, and the connection closes once the answer is written,
// as Kafka does.
func (c *conn) saslAuthenticate(ctx context.Context, req *kmsg.SASLAuthenticateRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	c.auth.Lock()
	session, mechanism, previous, reauth := c.auth.session, c.auth.mechanism, c.auth.principal, c.auth.authenticated
	c.auth.Unlock()
	if session == nil {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		resp.ErrorMessage = kmsg.StringPtr("SaslAuthenticate without a SaslHandshake first")
		return resp, errCloseAfterAnswer
	}
	answer, done, err := session.Step(ctx, req.SASLAuthBytes)
	if err == nil && done && reauth && previous != session.Principal() {
		err = fmt.Errorf("%w: re-authentication as %s on a connection of %s (KIP-368 keeps the principal)", sasl.ErrAuthenticationFailed, session.Principal(), previous)
	}
	if err != nil {
		c.authFailed(mechanism, session.Principal(), err)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		resp.ErrorMessage = kmsg.StringPtr("Authentication failed during authentication due to invalid credentials with SASL mechanism " + mechanism)
		return resp, errCloseAfterAnswer
	}
	resp.SASLAuthBytes = answer
	if !done {
		return resp, nil
	}
	expiry := session.Expiry()
	if max := c.srv.Security.SASL.MaxReauth; max > 0 && (expiry.IsZero() || time.Until(expiry) > max) {
		expiry = time.Now().Add(max)
	}
	if !expiry.IsZero() {
		resp.SessionLifetimeMillis = max(time.Until(expiry).Milliseconds(), 1)
	}
	c.auth.Lock()
	defer c.auth.Unlock()
	c.auth.principal, c.auth.authenticated, c.auth.expiry = session.Principal(), true, expiry
	c.auth.session = nil
	c.log.Debug("wire: SASL authenticated", "principal", c.auth.principal, "mechanism", mechanism, "session_lifetime_ms", resp.SessionLifetimeMillis)
	return resp, nil
}

// errCloseAfterAnswer, from gate, asks the writer to close the connection once the
// answer it comes with is written.
var errCloseAfterAnswer = fmt.Errorf("%w: closing after the answer", errAuthFailed)
