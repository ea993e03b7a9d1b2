package sasl

import (
	"context"
	"strings"
	"testing"
)

// The parsers see bytes from unauthenticated peers: none may panic, and what one
// accepts must be well formed.

func FuzzParsePlain(f *testing.F) {
	for _, s := range []string{"\x00alice\x00secret", "alice\x00alice\x00pw", "", "\x00\x00", "a\x00b\x00c\x00d"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		user, password, err := parsePlain(msg)
		if err == nil && (user == "" || password == "" || strings.ContainsRune(user, 0)) {
			t.Fatalf("accepted %q as user %q password %q", msg, user, password)
		}
	})
}

func FuzzParseScramClientFirst(f *testing.F) {
	for _, s := range []string{"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", "y,a=user,n=user,r=x", "n,,n=a=2Cb=3D,r=n", "p=tls,,n=u,r=x", "n,,m=ext,n=u,r=x", "n,", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		cf, err := parseClientFirst(msg)
		if err != nil {
			return
		}
		if cf.user == "" || !printable(cf.nonce) || !strings.HasSuffix(msg, cf.bare) || cf.gs2Header+cf.bare != msg {
			t.Fatalf("accepted %q as %+v", msg, cf)
		}
	})
}

func FuzzParseScramClientFinal(f *testing.F) {
	for _, s := range []string{"c=biws,r=abc,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", "c=biws,r=abc,x=ext,p=", "p=", ",p=,p=", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		cf, err := parseClientFinal(msg)
		if err == nil && !strings.HasPrefix(msg, cf.withoutProof+",p=") {
			t.Fatalf("accepted %q as %+v", msg, cf)
		}
	})
}

// FuzzScramSession drives a whole server session with arbitrary messages: it must
// never report success without the user's password.
func FuzzScramSession(f *testing.F) {
	f.Add([]byte("n,,n=alice,r=abc"), []byte("c=biws,r=abc,p=AAAA"))
	cred, err := NewScramCredential(ScramSHA256, "secret", MinScramIterations)
	if err != nil {
		f.Fatal(err)
	}
	m, _ := NewScram(ScramSHA256, memCreds{"alice/" + ScramSHA256: cred})
	f.Fuzz(func(t *testing.T, first, final []byte) {
		s := m.NewSession()
		if _, done, err := s.Step(context.Background(), first); err != nil || done {
			return
		}
		if _, done, _ := s.Step(context.Background(), final); done {
			t.Fatalf("authenticated by %q, %q", first, final)
		}
	})
}

func FuzzParseOAuthBearer(f *testing.F) {
	for _, s := range []string{"n,,\x01auth=Bearer abc.def.ghi\x01\x01", "n,a=u,\x01host=x\x01auth=bearer t\x01\x01", "n,,\x01\x01", "y,,\x01auth=Basic x\x01\x01", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		token, err := parseOAuthBearer(msg)
		if err == nil && (token == "" || strings.ContainsRune(token, 1)) {
			t.Fatalf("accepted %q as token %q", msg, token)
		}
	})
}

// FuzzVerifyJWT feeds arbitrary tokens to the verifier: nothing unsigned by the key
// passes.
func FuzzVerifyJWT(f *testing.F) {
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4IiwiZXhwIjo5OTk5OTk5OTk5fQ.")
	f.Add("a.b.c")
	f.Add("")
	m, err := NewOAuthBearer(OAuthBearerConfig{Keys: testKeys(f)})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, token string) {
		if _, err := verifyJWT(token, &m.cfg); err == nil {
			t.Fatalf("verified %q", token)
		}
	})
}

func FuzzParseKeys(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"a","x":"AA","y":"AA"}]}`))
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseKeys(b)
	})
}
