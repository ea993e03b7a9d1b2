package sasl

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// memCreds is a credential store of one process, for tests.
type memCreds map[string]ScramCredential // user + "/" + mechanism

func (m memCreds) ScramCredential(_ context.Context, user, mechanism string) (ScramCredential, bool, error) {
	c, ok := m[user+"/"+mechanism]
	return c, ok, nil
}

// TestScramRFC7677 replays the SCRAM-SHA-256 exchange of RFC 7677, section 3.
func TestScramRFC7677(t *testing.T) {
	salt, _ := base64.StdEncoding.DecodeString("W22ZaJ0SNY7soEsUEjb6gQ==")
	salted, _ := pbkdf2.Key(sha256.New, "pencil", salt, 4096, 32)
	cred, err := CredentialFromSaltedPassword(ScramSHA256, salt, salted, 4096)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := NewScram(ScramSHA256, memCreds{"user/" + ScramSHA256: cred})
	s := m.NewSession().(*scramSession)
	s.nonce = func() string { return "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0" }
	ctx := context.Background()
	first, done, err := s.Step(ctx, []byte("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"))
	if err != nil || done {
		t.Fatalf("client-first: %v, done %v", err, done)
	}
	if want := "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"; string(first) != want {
		t.Fatalf("server-first %q, want %q", first, want)
	}
	final, done, err := s.Step(ctx, []byte("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="))
	if err != nil || !done {
		t.Fatalf("client-final: %v, done %v", err, done)
	}
	if want := "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="; string(final) != want {
		t.Fatalf("server-final %q, want %q", final, want)
	}
	if s.Principal() != "User:user" {
		t.Fatalf("principal %q", s.Principal())
	}
}

// TestScramRefusals: a wrong proof and an unknown user fail alike, at the final step.
func TestScramRefusals(t *testing.T) {
	cred, err := NewScramCredential(ScramSHA512, "secret", 4096)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := NewScram(ScramSHA512, memCreds{"alice/" + ScramSHA512: cred})
	for _, user := range []string{"alice", "mallory"} {
		s := m.NewSession()
		first, _, err := s.Step(context.Background(), []byte("n,,n="+user+",r=abc"))
		if err != nil {
			t.Fatalf("%s: client-first refused: %v", user, err)
		}
		nonce := strings.TrimPrefix(strings.Split(string(first), ",")[0], "r=")
		proof := base64.StdEncoding.EncodeToString(make([]byte, 64))
		_, done, err := s.Step(context.Background(), []byte("c=biws,r="+nonce+",p="+proof))
		if done || !errors.Is(err, ErrAuthenticationFailed) {
			t.Fatalf("%s: a zero proof was not refused: done %v, err %v", user, done, err)
		}
	}
}

func TestPlain(t *testing.T) {
	cred, _ := NewScramCredential(ScramSHA256, "pw", 4096)
	m := NewPlain(memCreds{"bob/" + ScramSHA256: cred})
	if _, done, err := m.NewSession().Step(context.Background(), []byte("\x00bob\x00pw")); err != nil || !done {
		t.Fatalf("right password: done %v, err %v", done, err)
	}
	for _, msg := range []string{"\x00bob\x00wrong", "\x00eve\x00pw", "carol\x00bob\x00pw", "bob\x00pw"} {
		if _, done, err := m.NewSession().Step(context.Background(), []byte(msg)); done || !errors.Is(err, ErrAuthenticationFailed) {
			t.Fatalf("%q: done %v, err %v", msg, done, err)
		}
	}
}

// signJWT makes a compact JWS of claims, RS256 or ES256 by the key's type.
func signJWT(t *testing.T, key crypto.Signer, kid string, claims map[string]any) string {
	t.Helper()
	alg := "RS256"
	if _, ok := key.(*ecdsa.PrivateKey); ok {
		alg = "ES256"
	}
	h, _ := json.Marshal(map[string]string{"alg": alg, "kid": kid, "typ": "JWT"})
	c, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	digest := sha256.Sum256([]byte(input))
	var sig []byte
	switch k := key.(type) {
	case *rsa.PrivateKey:
		sig, _ = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, digest[:])
	case *ecdsa.PrivateKey:
		r, s, _ := ecdsa.Sign(rand.Reader, k, digest[:])
		sig = append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestOAuthBearer(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Unix(1_700_000_000, 0)
	m, err := NewOAuthBearer(OAuthBearerConfig{
		Keys:   map[string]crypto.PublicKey{"r": &rsaKey.PublicKey, "e": &ecKey.PublicKey},
		Issuer: "https://issuer", Audience: "strait",
		Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	good := map[string]any{"sub": "carol", "iss": "https://issuer", "aud": []string{"strait"}, "exp": now.Add(time.Hour).Unix()}
	message := func(token string) []byte { return []byte("n,,\x01auth=Bearer " + token + "\x01\x01") }
	for _, tc := range []struct {
		name  string
		token string
		ok    bool
	}{
		{"RS256", signJWT(t, rsaKey, "r", good), true},
		{"ES256", signJWT(t, ecKey, "e", good), true},
		{"unknown kid", signJWT(t, ecKey, "x", good), false},
		{"key of another kid", signJWT(t, ecKey, "r", good), false},
		{"expired", signJWT(t, rsaKey, "r", map[string]any{"sub": "carol", "iss": "https://issuer", "aud": "strait", "exp": now.Add(-time.Hour).Unix()}), false},
		{"no exp", signJWT(t, rsaKey, "r", map[string]any{"sub": "carol", "iss": "https://issuer", "aud": "strait"}), false},
		{"other issuer", signJWT(t, rsaKey, "r", map[string]any{"sub": "carol", "iss": "x", "aud": "strait", "exp": now.Add(time.Hour).Unix()}), false},
		{"other audience", signJWT(t, rsaKey, "r", map[string]any{"sub": "carol", "iss": "https://issuer", "aud": "x", "exp": now.Add(time.Hour).Unix()}), false},
		{"tampered", signJWT(t, rsaKey, "r", good) + "x", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := m.NewSession()
			_, done, err := s.Step(context.Background(), message(tc.token))
			if tc.ok != done || tc.ok != (err == nil) {
				t.Fatalf("done %v, err %v; want ok %v", done, err, tc.ok)
			}
			if tc.ok && (s.Principal() != "User:carol" || !s.Expiry().Equal(time.Unix(now.Add(time.Hour).Unix(), 0))) {
				t.Fatalf("principal %q, expiry %v", s.Principal(), s.Expiry())
			}
		})
	}
}

func TestParseKeysJWKS(t *testing.T) {
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	x, y := ecKey.X.FillBytes(make([]byte, 32)), ecKey.Y.FillBytes(make([]byte, 32))
	doc := `{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","x":"` + base64.RawURLEncoding.EncodeToString(x) + `","y":"` + base64.RawURLEncoding.EncodeToString(y) + `"}]}`
	keys, err := parseKeys([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if !ecKey.PublicKey.Equal(keys["k1"]) {
		t.Fatalf("JWKS key k1 = %v, want the generated key", keys["k1"])
	}
}
