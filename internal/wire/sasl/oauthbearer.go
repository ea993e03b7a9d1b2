package sasl

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"slices"
	"strings"
	"time"
)

// OAuthBearerConfig says which JWTs OAUTHBEARER accepts.
type OAuthBearerConfig struct {
	// Keys verify token signatures, by key id ("" for a key that verifies tokens
	// naming none): from a JWKS file or an issuer's PEM public key (LoadKeys).
	Keys map[string]crypto.PublicKey
	// Issuer, when set, must be the token's iss; Audience, when set, among its aud.
	Issuer   string
	Audience string
	// SubjectClaim names the claim that names the principal (Kafka's
	// sasl.oauthbearer.sub.claim.name); "" is "sub".
	SubjectClaim string
	// ClockSkew is allowed on exp and nbf (Kafka's 30s default when 0).
	ClockSkew time.Duration
	Now       func() time.Time // nil: time.Now
}

// OAuthBearerMechanism is OAUTHBEARER: the client sends a JWT, which is checked here
// against configured keys rather than asked of an authorization server.
type OAuthBearerMechanism struct{ cfg OAuthBearerConfig }

// NewOAuthBearer returns OAUTHBEARER with cfg; it needs at least one key.
func NewOAuthBearer(cfg OAuthBearerConfig) (*OAuthBearerMechanism, error) {
	if len(cfg.Keys) == 0 {
		return nil, errors.New("sasl: OAUTHBEARER needs a JWKS file or an issuer public key to check tokens with")
	}
	if cfg.SubjectClaim == "" {
		cfg.SubjectClaim = "sub"
	}
	if cfg.ClockSkew == 0 {
		cfg.ClockSkew = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &OAuthBearerMechanism{cfg: cfg}, nil
}

// Name implements Mechanism.
func (*OAuthBearerMechanism) Name() string { return OAuthBearer }

// NewSession implements Mechanism.
func (m *OAuthBearerMechanism) NewSession() Session { return &oauthSession{cfg: &m.cfg} }

type oauthSession struct {
	cfg     *OAuthBearerConfig
	subject string
	expiry  time.Time
	done    bool
}

func (s *oauthSession) Principal() string { return userPrincipal(s.subject) }
func (s *oauthSession) Expiry() time.Time { return s.expiry }

func (s *oauthSession) Step(_ context.Context, msg []byte) ([]byte, bool, error) {
	if s.done {
		return nil, false, fmt.Errorf("%w: OAUTHBEARER: message after the exchange ended", ErrAuthenticationFailed)
	}
	s.done = true
	token, err := parseOAuthBearer(msg)
	if err != nil {
		return nil, false, fmt.Errorf("%w: OAUTHBEARER: %w", ErrAuthenticationFailed, err)
	}
	claims, err := verifyJWT(token, s.cfg)
	if err != nil {
		return nil, false, fmt.Errorf("%w: OAUTHBEARER: %w", ErrAuthenticationFailed, err)
	}
	s.subject, s.expiry = claims.subject, claims.expiry
	return nil, true, nil
}

// parseOAuthBearer reads the client's initial response (RFC 7628, section 3.1):
// a GS2 header, then key=value pairs each ended by ^A, then a final ^A, of which
// auth=Bearer <token> is the one that matters.
func parseOAuthBearer(msg []byte) (string, error) {
	const kvsep = "\x01"
	s := string(msg)
	flag, rest, ok := strings.Cut(s, ",")
	if !ok || (flag != "n" && flag != "y") {
		return "", fmt.Errorf("GS2 flag %q: want n or y", flag)
	}
	_, rest, ok = strings.Cut(rest, ",") // authzid; Kafka ignores it
	if !ok || !strings.HasPrefix(rest, kvsep) || !strings.HasSuffix(rest, kvsep+kvsep) {
		return "", errors.New("want n,[a=authzid],^Aauth=Bearer <token>^A^A")
	}
	token := ""
	for _, kv := range strings.Split(strings.TrimSuffix(rest[1:], kvsep+kvsep), kvsep) {
		key, value, ok := strings.Cut(kv, "=")
		if !ok {
			return "", fmt.Errorf("field %q is not key=value", kv)
		}
		if key != "auth" {
			continue // SASL extensions (KIP-342): none is acted on
		}
		scheme, t, ok := strings.Cut(value, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || t == "" {
			return "", errors.New("auth field: want Bearer <token>")
		}
		token = strings.TrimSpace(t)
	}
	if token == "" {
		return "", errors.New("no auth field")
	}
	return token, nil
}

// jwtClaims are what the server acts on in a verified token.
type jwtClaims struct {
	subject string
	expiry  time.Time
}

// verifyJWT checks a compact JWS (RFC 7515): its signature, RS256 or ES256 by the key
// its kid names, then exp (required), nbf, iss and aud.
func verifyJWT(token string, cfg *OAuthBearerConfig) (jwtClaims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return jwtClaims{}, errors.New("token: not a compact JWS of three parts")
	}
	var header struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := decodeSegment(parts[0], &header); err != nil {
		return jwtClaims{}, fmt.Errorf("token header: %w", err)
	}
	key, ok := cfg.Keys[header.Kid]
	if !ok {
		return jwtClaims{}, fmt.Errorf("token key id %q: no such key", header.Kid)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return jwtClaims{}, fmt.Errorf("token signature: %w", err)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := verifySignature(header.Alg, key, digest[:], sig); err != nil {
		return jwtClaims{}, err
	}
	var claims map[string]any
	if err := decodeSegment(parts[1], &claims); err != nil {
		return jwtClaims{}, fmt.Errorf("token claims: %w", err)
	}
	return checkClaims(claims, cfg)
}

// verifySignature checks sig over digest with key as alg says; the key's own type
// must fit alg, so a token cannot pick a weaker check than its key was made for.
func verifySignature(alg string, key crypto.PublicKey, digest, sig []byte) error {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if alg != "RS256" {
			return fmt.Errorf("token algorithm %q: its key is RSA, which signs RS256", alg)
		}
		if err := rsa.VerifyPKCS1v15(k, crypto.SHA256, digest, sig); err != nil {
			return fmt.Errorf("token signature: %w", err)
		}
	case *ecdsa.PublicKey:
		if alg != "ES256" || k.Curve != elliptic.P256() {
			return fmt.Errorf("token algorithm %q: its key is ECDSA P-256, which signs ES256", alg)
		}
		if len(sig) != 64 {
			return fmt.Errorf("token signature of %d bytes: ES256 signs 64", len(sig))
		}
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(k, digest, r, s) {
			return errors.New("token signature: ECDSA verification failed")
		}
	default:
		return fmt.Errorf("token key of type %T: want RSA or ECDSA P-256", key)
	}
	return nil
}

func checkClaims(claims map[string]any, cfg *OAuthBearerConfig) (jwtClaims, error) {
	now := cfg.Now()
	exp, ok := numericDate(claims["exp"])
	if !ok {
		return jwtClaims{}, errors.New("token has no exp claim")
	}
	if !now.Before(exp.Add(cfg.ClockSkew)) {
		return jwtClaims{}, fmt.Errorf("token expired at %s", exp.Format(time.RFC3339))
	}
	if nbf, ok := numericDate(claims["nbf"]); ok && now.Add(cfg.ClockSkew).Before(nbf) {
		return jwtClaims{}, fmt.Errorf("token not valid before %s", nbf.Format(time.RFC3339))
	}
	if cfg.Issuer != "" && claims["iss"] != cfg.Issuer {
		return jwtClaims{}, fmt.Errorf("token issuer %v: want %q", claims["iss"], cfg.Issuer)
	}
	if cfg.Audience != "" && !hasAudience(claims["aud"], cfg.Audience) {
		return jwtClaims{}, fmt.Errorf("token audience %v does not include %q", claims["aud"], cfg.Audience)
	}
	subject, _ := claims[cfg.SubjectClaim].(string)
	if subject == "" {
		return jwtClaims{}, fmt.Errorf("token has no %s claim to name its principal", cfg.SubjectClaim)
	}
	return jwtClaims{subject: subject, expiry: exp}, nil
}

func numericDate(v any) (time.Time, bool) {
	f, ok := v.(float64)
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

func hasAudience(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		return slices.Contains(a, any(want))
	}
	return false
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// LoadKeys reads the keys that verify tokens from path: a JWKS document (RFC 7517,
// {"keys": [...]}, RSA and EC P-256 keys by kid) or PEM public keys (an issuer's key,
// for tokens naming no kid).
func LoadKeys(path string) (map[string]crypto.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sasl: read token keys: %w", err)
	}
	keys, err := parseKeys(b)
	if err != nil {
		return nil, fmt.Errorf("sasl: token keys in %s: %w", path, err)
	}
	return keys, nil
}

func parseKeys(b []byte) (map[string]crypto.PublicKey, error) {
	keys := map[string]crypto.PublicKey{}
	if block, _ := pem.Decode(b); block != nil {
		for ; block != nil; block, b = pem.Decode(b) {
			key, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("PEM public key: %w", err)
			}
			keys[""] = key
		}
		return keys, nil
	}
	var set struct {
		Keys []struct {
			Kty string `json:"kty"`
			Kid string `json:"kid"`
			Use string `json:"use"`
			N   string `json:"n"`
			E   string `json:"e"`
			Crv string `json:"crv"`
			X   string `json:"x"`
			Y   string `json:"y"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("neither PEM nor a JWKS document: %w", err)
	}
	for _, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		key, err := jwkKey(k.Kty, k.N, k.E, k.Crv, k.X, k.Y)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k.Kid, err)
		}
		keys[k.Kid] = key
	}
	if len(keys) == 0 {
		return nil, errors.New("no signing keys")
	}
	return keys, nil
}

func jwkKey(kty, n, e, crv, x, y string) (crypto.PublicKey, error) {
	num := func(s string) (*big.Int, error) {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(b) == 0 {
			return nil, fmt.Errorf("bad base64url number %q", s)
		}
		return new(big.Int).SetBytes(b), nil
	}
	switch kty {
	case "RSA":
		nn, err := num(n)
		if err != nil {
			return nil, err
		}
		ee, err := num(e)
		if err != nil || !ee.IsInt64() || ee.Int64() < 3 || ee.Int64() > 1<<31 {
			return nil, fmt.Errorf("RSA exponent %q", e)
		}
		if nn.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key of %d bits: want at least 2048", nn.BitLen())
		}
		return &rsa.PublicKey{N: nn, E: int(ee.Int64())}, nil
	case "EC":
		if crv != "P-256" {
			return nil, fmt.Errorf("curve %q: want P-256", crv)
		}
		xb, errX := base64.RawURLEncoding.DecodeString(x)
		yb, errY := base64.RawURLEncoding.DecodeString(y)
		if errX != nil || errY != nil || len(xb) != 32 || len(yb) != 32 {
			return nil, errors.New("P-256 coordinates: want 32 bytes each")
		}
		uncompressed := append(append([]byte{4}, xb...), yb...)
		key, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), uncompressed)
		if err != nil {
			return nil, fmt.Errorf("P-256 point: %w", err)
		}
		return key, nil
	}
	return nil, fmt.Errorf("key type %q: want RSA or EC", kty)
}
