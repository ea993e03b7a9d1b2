package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/internal/authz"
	"github.com/strait-io/strait/internal/wire"
	"github.com/strait-io/strait/internal/wire/sasl"
	"github.com/strait-io/strait/observability"
	"github.com/strait-io/strait/proxy"
	"github.com/strait-io/strait/routing"
)

// Security settings, shared by dev, proxy and node.
//
// Listeners follow Kafka's syntax, NAME://host:port with NAME one of PLAINTEXT, SSL,
// SASL_PLAINTEXT and SASL_SSL (the listener's name is its security protocol, so one of
// each at most). --listen is the short form of one PLAINTEXT listener.
//
// The TLS files (--tls-cert, --tls-key, --tls-ca) are the process's identity on its
// TLS listeners and, as a client certificate, on its connections to other Strait
// processes (mTLS). They are reloaded when they change on disk, checked at most once a
// second as connections open, so renewing a certificate needs no restart and no signal.
//
// Other Strait processes are trusted to speak for their clients (their requests carry
// the client's principal) only when their certificate names a super user; the
// process's own certificate subject is one, so a cluster whose processes share one
// certificate needs no more configuration.
type securityConfig struct {
	Listeners      string
	TLSCert        string
	TLSKey         string
	TLSCA          string
	TLSClientAuth  string
	SASLMechanisms string
	SASLUsers      string
	SuperUsers     string
	Authorizer     string
	OAuthKeys      string
	OAuthIssuer    string
	OAuthAudience  string
	MaxReauth      time.Duration
}

func (c *securityConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Listeners, "listeners", "", "Kafka listeners, comma-separated NAME://host:port with NAME PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (overrides --listen)")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "PEM certificate chain of this process, for SSL and SASL_SSL listeners and for mTLS to other Strait processes; reloaded when the file changes")
	fs.StringVar(&c.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&c.TLSCA, "tls-ca", "", "PEM CA certificates that client and peer certificates are verified against (default: the system's)")
	fs.StringVar(&c.TLSClientAuth, "tls-client-auth", "requested", "client certificates on TLS listeners: none, requested (verified when given; the subject is the principal) or required (ssl.client.auth)")
	fs.StringVar(&c.SASLMechanisms, "sasl-mechanisms", "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512", "SASL mechanisms of SASL listeners (sasl.enabled.mechanisms); add OAUTHBEARER with --oauthbearer-keys")
	fs.StringVar(&c.SASLUsers, "sasl-users", "", "users to create at start, user:password,...; each gets PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 credentials")
	fs.StringVar(&c.SuperUsers, "super-users", "", "principals allowed everything, User:alice,User:CN=admin (super.users)")
	fs.StringVar(&c.Authorizer, "authorizer", "auto", "enforce ACLs: on, off, or auto (on when a listener authenticates: SASL or client certificates); with it on, what no ACL allows is denied (allow.everyone.if.no.acl.found=false)")
	fs.StringVar(&c.OAuthKeys, "oauthbearer-keys", "", "JWKS file or PEM public key of the token issuer, enabling OAUTHBEARER")
	fs.StringVar(&c.OAuthIssuer, "oauthbearer-issuer", "", "required iss of OAUTHBEARER tokens")
	fs.StringVar(&c.OAuthAudience, "oauthbearer-audience", "", "required aud of OAUTHBEARER tokens")
	fs.DurationVar(&c.MaxReauth, "connections-max-reauth", 0, "SASL sessions last at most this long, then clients re-authenticate (connections.max.reauth.ms, KIP-368); 0: as long as their credentials")
}

// listenerSpec is one --listeners entry.
type listenerSpec struct {
	Name string // the security protocol
	Addr string
}

func (l listenerSpec) tls() bool  { return l.Name == "SSL" || l.Name == "SASL_SSL" }
func (l listenerSpec) sasl() bool { return strings.HasPrefix(l.Name, "SASL_") }

// parseListeners reads --listeners, or makes --listen one PLAINTEXT listener.
func parseListeners(listeners, listen string) ([]listenerSpec, error) {
	if listeners == "" {
		return []listenerSpec{{Name: "PLAINTEXT", Addr: listen}}, nil
	}
	var out []listenerSpec
	for _, entry := range strings.Split(listeners, ",") {
		name, addr, ok := strings.Cut(strings.TrimSpace(entry), "://")
		name = strings.ToUpper(name)
		if !ok || !slices.Contains([]string{"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}, name) {
			return nil, fmt.Errorf("--listeners %q: want NAME://host:port with NAME PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", entry)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("--listeners %q: %w", entry, err)
		}
		if slices.ContainsFunc(out, func(l listenerSpec) bool { return l.Name == name }) {
			return nil, fmt.Errorf("--listeners: %s appears twice; each protocol names one listener", name)
		}
		out = append(out, listenerSpec{Name: name, Addr: addr})
	}
	return out, nil
}

func (c *securityConfig) validate(listeners []listenerSpec) error {
	needTLS := slices.ContainsFunc(listeners, listenerSpec.tls)
	switch {
	case needTLS && (c.TLSCert == "" || c.TLSKey == ""):
		return errors.New("--tls-cert and --tls-key are required by SSL and SASL_SSL listeners")
	case c.TLSCert != "" && c.TLSKey == "", c.TLSKey != "" && c.TLSCert == "":
		return errors.New("--tls-cert and --tls-key go together")
	case !slices.Contains([]string{"none", "requested", "required"}, c.TLSClientAuth):
		return fmt.Errorf("--tls-client-auth %q: want none, requested or required", c.TLSClientAuth)
	case !slices.Contains([]string{"auto", "on", "off"}, c.Authorizer):
		return fmt.Errorf("--authorizer %q: want auto, on or off", c.Authorizer)
	case c.MaxReauth < 0:
		return fmt.Errorf("--connections-max-reauth %s: must not be negative", c.MaxReauth)
	}
	for _, u := range splitList(c.SASLUsers) {
		if name, pw, ok := strings.Cut(u, ":"); !ok || name == "" || pw == "" {
			return fmt.Errorf("--sasl-users: entry %q: want user:password", u)
		}
	}
	for _, m := range splitList(c.SASLMechanisms) {
		if !slices.Contains([]string{sasl.Plain, sasl.ScramSHA256, sasl.ScramSHA512, sasl.OAuthBearer}, m) {
			return fmt.Errorf("--sasl-mechanisms: %q: want PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER", m)
		}
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// authorizerOn reports whether ACLs are enforced: "auto" turns them on when a listener
// authenticates its clients, as a Kafka cluster with authentication runs an authorizer.
func (c *securityConfig) authorizerOn(listeners []listenerSpec) bool {
	switch c.Authorizer {
	case "on":
		return true
	case "off":
		return false
	}
	return slices.ContainsFunc(listeners, func(l listenerSpec) bool {
		return l.sasl() || (l.tls() && c.TLSClientAuth != "none")
	})
}

// security is a process's running security: TLS material, authorizer, mechanisms.
type security struct {
	cfg        securityConfig
	tls        *wire.TLSReloader // nil without --tls-cert
	authorizer *acl.Authorizer   // nil when off
	mechanisms []sasl.Mechanism
	superUsers map[string]bool
	metrics    *observability.SecurityMetrics
	logger     *slog.Logger
}

// startSecurity loads the TLS files, creates the --sasl-users, and starts applying the
// cluster's ACLs to the authorizer as the cached view changes.
func startSecurity(ctx context.Context, cfg securityConfig, listeners []listenerSpec, store routing.Store, cache *routing.Cache, tel *observability.Telemetry, tier string, logger *slog.Logger) (*security, error) {
	s := &security{cfg: cfg, logger: logger, superUsers: map[string]bool{}}
	for _, u := range splitList(cfg.SuperUsers) {
		s.superUsers[u] = true
	}
	if cfg.TLSCert != "" {
		r, err := wire.NewTLSReloader(wire.TLSFiles{CertFile: cfg.TLSCert, KeyFile: cfg.TLSKey, CAFile: cfg.TLSCA}, logger)
		if err != nil {
			return nil, err
		}
		s.tls = r
		self, err := r.Principal()
		if err != nil {
			return nil, err
		}
		s.superUsers[self] = true // this cluster's own processes, sharing its certificate
	}
	if err := createSASLUsers(ctx, store, cfg.SASLUsers); err != nil {
		return nil, err
	}
	creds := storeCredentials{store}
	for _, name := range splitList(cfg.SASLMechanisms) {
		m, err := mechanism(name, creds)
		if err != nil {
			return nil, err
		}
		s.mechanisms = append(s.mechanisms, m)
	}
	if cfg.OAuthKeys != "" && !slices.Contains(splitList(cfg.SASLMechanisms), sasl.OAuthBearer) {
		keys, err := sasl.LoadKeys(cfg.OAuthKeys)
		if err != nil {
			return nil, err
		}
		m, err := sasl.NewOAuthBearer(sasl.OAuthBearerConfig{Keys: keys, Issuer: cfg.OAuthIssuer, Audience: cfg.OAuthAudience})
		if err != nil {
			return nil, err
		}
		s.mechanisms = append(s.mechanisms, m)
	}
	if cfg.authorizerOn(listeners) {
		s.authorizer = acl.New(mapsKeys(s.superUsers))
		go watchACLs(ctx, cache, s.authorizer)
	}
	metrics, err := tel.SecurityMetrics(tier)
	if err != nil {
		logger.Warn("security metrics are unavailable; serving without them", "err", err)
	}
	s.metrics = metrics
	return s, nil
}

func mechanism(name string, creds sasl.Credentials) (sasl.Mechanism, error) {
	switch name {
	case sasl.Plain:
		return sasl.NewPlain(creds), nil
	case sasl.OAuthBearer:
		return nil, errors.New("--sasl-mechanisms OAUTHBEARER needs --oauthbearer-keys, which enables it by itself")
	}
	return sasl.NewScram(name, creds)
}

func mapsKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// createSASLUsers stores PLAIN/SCRAM credentials for each user:password of spec.
func createSASLUsers(ctx context.Context, store routing.Store, spec string) error {
	for _, entry := range splitList(spec) {
		user, password, _ := strings.Cut(entry, ":")
		for _, mech := range []string{sasl.ScramSHA256, sasl.ScramSHA512} {
			c, err := sasl.NewScramCredential(mech, password, sasl.MinScramIterations)
			if err != nil {
				return err
			}
			err = store.PutScramCredential(ctx, routing.ScramCredential{User: user, Mechanism: mech, Salt: c.Salt,
				StoredKey: c.StoredKey, ServerKey: c.ServerKey, Iterations: c.Iterations})
			if err != nil {
				return fmt.Errorf("--sasl-users: store the credentials of %q: %w", user, err)
			}
		}
	}
	return nil
}

// storeCredentials reads SCRAM credentials from the routing Store for SASL.
type storeCredentials struct{ store routing.Store }

func (s storeCredentials) ScramCredential(ctx context.Context, user, mechanism string) (sasl.ScramCredential, bool, error) {
	c, found, err := s.store.ScramCredential(ctx, user, mechanism)
	return sasl.ScramCredential{Salt: c.Salt, StoredKey: c.StoredKey, ServerKey: c.ServerKey, Iterations: c.Iterations}, found, err
}

// watchACLs gives the authorizer the cluster's ACLs now and after every change of the
// cached view, which follows the Store's pub/sub: a change made through any proxy
// applies here within the cache's refresh, well under a second.
func watchACLs(ctx context.Context, cache *routing.Cache, a *acl.Authorizer) {
	var last []routing.ACL
	for first := true; ; first = false {
		changed := cache.Changed()
		if acls := cache.Snapshot().ACLs; first || !slices.Equal(acls, last) {
			bindings := make([]acl.Binding, len(acls))
			for i, stored := range acls {
				bindings[i] = proxy.BindingOf(stored)
			}
			a.Update(bindings)
			last = acls
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// internalPeer trusts a certificate principal that is a super user (KIP-590 lets
// brokers forward on behalf of clients as principals with CLUSTER_ACTION).
func (s *security) internalPeer(principal string) bool { return s.superUsers[principal] }

// wire is the wire.Security of listener l.
func (s *security) wire(l listenerSpec) wire.Security {
	if s == nil {
		return wire.Security{Listener: l.Name}
	}
	sec := wire.Security{Listener: l.Name, OnAuthFailure: s.authFailed}
	if l.tls() {
		auth := map[string]tls.ClientAuthType{"none": tls.NoClientCert, "requested": tls.VerifyClientCertIfGiven, "required": tls.RequireAndVerifyClientCert}[s.cfg.TLSClientAuth]
		sec.TLS = s.tls.ServerConfig(auth)
	}
	if l.sasl() {
		sec.SASL = &wire.SASLConfig{Mechanisms: s.mechanisms, MaxReauth: s.cfg.MaxReauth}
	}
	if sec.SASL != nil || sec.TLS != nil || s.authorizer != nil {
		sec.InternalPeer = s.internalPeer
	}
	return sec
}

// authFailed writes the audit line of a failed authentication and counts it.
func (s *security) authFailed(f wire.AuthFailure) {
	s.logger.Warn("audit: authentication failed; check the client's credentials, or its certificate and the CA (--tls-ca)",
		"listener", f.Listener, "client", f.RemoteAddr, "mechanism", f.Mechanism, "principal", f.Principal, "err", f.Err)
	s.metrics.AuthFailed(context.Background(), f.Listener, f.Mechanism)
}

// clientTLS is the TLS of connections to other Strait processes; nil without TLS.
func (s *security) clientTLS() func() (*tls.Config, error) {
	if s == nil || s.tls == nil {
		return nil
	}
	return s.tls.ClientConfig
}

// decider is the authorizer as proxies and nodes take it (nil when off).
func (s *security) decider() authz.Decider {
	if s == nil || s.authorizer == nil {
		return nil
	}
	return s.authorizer
}

// denials counts denied operations.
func (s *security) denials() authz.Denials {
	if s == nil {
		return nil
	}
	return func(ctx context.Context, op, rt string) { s.metrics.Denied(ctx, op, rt) }
}

// boundListener is a listener bound to its port, and the address clients are told.
type boundListener struct {
	spec      listenerSpec
	ln        net.Listener
	advertise string
}

// bindListeners binds every listener. advertise, when given, is the advertised address
// of a single listener; with several, each advertises its own bound address (a
// wildcard host as localhost).
func bindListeners(specs []listenerSpec, advertise string) ([]boundListener, error) {
	var out []boundListener
	for _, spec := range specs {
		ln, adv, err := listenAndAdvertise(spec.Addr, "")
		if err != nil {
			closeListeners(out)
			return nil, fmt.Errorf("listener %s: %w", spec.Name, err)
		}
		if advertise != "" && len(specs) == 1 {
			adv = advertise
		}
		out = append(out, boundListener{spec: spec, ln: ln, advertise: adv})
	}
	return out, nil
}

func closeListeners(ls []boundListener) {
	for _, l := range ls {
		l.ln.Close()
	}
}

// internalAddr is the address other Strait processes dial: the first TLS listener's
// when this process has a certificate (they authenticate by it, mTLS), else the first
// listener's.
func internalAddr(ls []boundListener, tlsOn bool) string {
	if tlsOn {
		if i := slices.IndexFunc(ls, func(l boundListener) bool { return l.spec.tls() }); i >= 0 {
			return ls[i].advertise
		}
	}
	return ls[0].advertise
}

// advertisedListeners maps each listener's name to its advertised address.
func advertisedListeners(ls []boundListener) map[string]string {
	m := make(map[string]string, len(ls))
	for _, l := range ls {
		m[l.spec.Name] = l.advertise
	}
	return m
}
