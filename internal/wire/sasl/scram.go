package sasl

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"time"
)

// Iteration bounds of SCRAM credentials: Kafka's (4096 is RFC 7677's minimum).
const (
	MinScramIterations = 4096
	MaxScramIterations = 16384
)

// scramHash is a SCRAM mechanism's hash function.
type scramHash struct {
	name string
	new  func() hash.Hash
}

func scramHashFor(mechanism string) (scramHash, bool) {
	switch mechanism {
	case ScramSHA256:
		return scramHash{ScramSHA256, sha256.New}, true
	case ScramSHA512:
		return scramHash{ScramSHA512, sha512.New}, true
	}
	return scramHash{}, false
}

func (h scramHash) hmac(key []byte, parts ...string) []byte {
	m := hmac.New(h.new, key)
	for _, p := range parts {
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

func (h scramHash) sum(b []byte) []byte {
	d := h.new()
	d.Write(b)
	return d.Sum(nil)
}

// keys derives ClientKey, StoredKey and ServerKey from a salted password (RFC 5802,
// section 3).
func (h scramHash) keys(salted []byte) (clientKey, storedKey, serverKey []byte) {
	clientKey = h.hmac(salted, "Client Key")
	return clientKey, h.sum(clientKey), h.hmac(salted, "Server Key")
}

// NewScramCredential derives the credential of password for mechanism (SCRAM-SHA-256
// or SCRAM-SHA-512) with a fresh random salt.
func NewScramCredential(mechanism, password string, iterations int) (ScramCredential, error) {
	salt := make([]byte, 32)
	_, _ = rand.Read(salt)
	h, ok := scramHashFor(mechanism)
	if !ok {
		return ScramCredential{}, fmt.Errorf("sasl: %q is not a SCRAM mechanism", mechanism)
	}
	salted, err := pbkdf2.Key(h.new, password, salt, iterations, h.new().Size())
	if err != nil {
		return ScramCredential{}, fmt.Errorf("sasl: derive a %s credential: %w", mechanism, err)
	}
	return CredentialFromSaltedPassword(mechanism, salt, salted, iterations)
}

// CredentialFromSaltedPassword turns the salted password an AlterUserScramCredentials
// request carries (KIP-554) into what the server keeps.
func CredentialFromSaltedPassword(mechanism string, salt, salted []byte, iterations int) (ScramCredential, error) {
	h, ok := scramHashFor(mechanism)
	switch {
	case !ok:
		return ScramCredential{}, fmt.Errorf("sasl: %q is not a SCRAM mechanism", mechanism)
	case iterations < MinScramIterations || iterations > MaxScramIterations:
		return ScramCredential{}, fmt.Errorf("sasl: %d iterations: want %d to %d", iterations, MinScramIterations, MaxScramIterations)
	case len(salt) == 0 || len(salted) != h.new().Size():
		return ScramCredential{}, fmt.Errorf("sasl: a %s salted password is %d bytes with a salt, not %d", mechanism, h.new().Size(), len(salted))
	}
	_, stored, server := h.keys(salted)
	return ScramCredential{Salt: salt, StoredKey: stored, ServerKey: server, Iterations: iterations}, nil
}

// verifyPassword reports whether password derives cred (PLAIN checked against SCRAM).
func verifyPassword(mechanism, password string, cred ScramCredential) bool {
	h, ok := scramHashFor(mechanism)
	if !ok {
		return false
	}
	salted, err := pbkdf2.Key(h.new, password, cred.Salt, cred.Iterations, h.new().Size())
	if err != nil {
		return false
	}
	_, stored, _ := h.keys(salted)
	return subtle.ConstantTimeCompare(stored, cred.StoredKey) == 1
}

// Scram is the SCRAM-SHA-256 or SCRAM-SHA-512 mechanism over a credential store.
type Scram struct {
	mechanism string
	creds     Credentials
}

// NewScram returns the SCRAM mechanism named mechanism.
func NewScram(mechanism string, creds Credentials) (*Scram, error) {
	if _, ok := scramHashFor(mechanism); !ok {
		return nil, fmt.Errorf("sasl: %q is not a SCRAM mechanism", mechanism)
	}
	return &Scram{mechanism: mechanism, creds: creds}, nil
}

// Name implements Mechanism.
func (s *Scram) Name() string { return s.mechanism }

// NewSession implements Mechanism.
func (s *Scram) NewSession() Session {
	h, _ := scramHashFor(s.mechanism)
	return &scramSession{h: h, creds: s.creds, nonce: randomNonce}
}

// scramSession walks RFC 5802's exchange: client-first, server-first, client-final,
// server-final.
type scramSession struct {
	h     scramHash
	creds Credentials
	nonce func() string

	step        int
	user        string
	known       bool // the user has a credential; an unknown one fails at the end
	cred        ScramCredential
	gs2Header   string
	clientFirst string // client-first-message-bare
	serverFirst string
	fullNonce   string
}

func randomNonce() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawStdEncoding.EncodeToString(b)
}

func (s *scramSession) Principal() string { return userPrincipal(s.user) }
func (s *scramSession) Expiry() time.Time { return time.Time{} }

func (s *scramSession) Step(ctx context.Context, msg []byte) ([]byte, bool, error) {
	s.step++
	switch s.step {
	case 1:
		return s.first(ctx, msg)
	case 2:
		return s.final(msg)
	}
	return nil, false, fmt.Errorf("%w: %s: message after the exchange ended", ErrAuthenticationFailed, s.h.name)
}

// first reads client-first and answers server-first. An unknown user gets a made-up
// salt, so that the exchange looks the same as for a wrong password.
func (s *scramSession) first(ctx context.Context, msg []byte) ([]byte, bool, error) {
	cf, err := parseClientFirst(string(msg))
	if err != nil {
		return nil, false, fmt.Errorf("%w: %s: %w", ErrAuthenticationFailed, s.h.name, err)
	}
	s.user, s.gs2Header, s.clientFirst = cf.user, cf.gs2Header, cf.bare
	s.cred, s.known, err = s.creds.ScramCredential(ctx, cf.user, s.h.name)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %s: look up user %q: %w", ErrAuthenticationFailed, s.h.name, cf.user, err)
	}
	if !s.known {
		s.cred = ScramCredential{Salt: []byte(randomNonce()), Iterations: MinScramIterations}
	}
	s.fullNonce = cf.nonce + s.nonce()
	s.serverFirst = "r=" + s.fullNonce + ",s=" + base64.StdEncoding.EncodeToString(s.cred.Salt) + ",i=" + strconv.Itoa(s.cred.Iterations)
	return []byte(s.serverFirst), false, nil
}

// final checks the client's proof and answers the server's signature.
//
// RFC 5802 (section 5.1) has the client repeat the nonce of server-first exactly.
// librdkafka sends its own nonce and then the whole of the server's, which already
// begins with it (c-nonce, c-nonce, s-nonce), and Kafka's brokers accept any nonce that
// ends with the one they sent; so does this. Nothing is lost by it: the server's fresh
// part is still there, and the proof signs the final message exactly as sent.
func (s *scramSession) final(msg []byte) ([]byte, bool, error) {
	cf, err := parseClientFinal(string(msg))
	if err != nil {
		return nil, false, fmt.Errorf("%w: %s: %w", ErrAuthenticationFailed, s.h.name, err)
	}
	switch {
	case cf.channelBinding != base64.StdEncoding.EncodeToString([]byte(s.gs2Header)):
		return nil, false, fmt.Errorf("%w: %s: channel binding %q does not repeat the GS2 header", ErrAuthenticationFailed, s.h.name, cf.channelBinding)
	case !strings.HasSuffix(cf.nonce, s.fullNonce):
		return nil, false, fmt.Errorf("%w: %s: the final message's nonce %q does not end with the one agreed, %q", ErrAuthenticationFailed, s.h.name, cf.nonce, s.fullNonce)
	case !s.known:
		return nil, false, fmt.Errorf("%w: %s: unknown user %q", ErrAuthenticationFailed, s.h.name, s.user)
	}
	authMessage := s.clientFirst + "," + s.serverFirst + "," + cf.withoutProof
	clientSignature := s.h.hmac(s.cred.StoredKey, authMessage)
	if len(cf.proof) != len(clientSignature) {
		return nil, false, fmt.Errorf("%w: %s: a proof of %d bytes", ErrAuthenticationFailed, s.h.name, len(cf.proof))
	}
	clientKey := make([]byte, len(cf.proof))
	subtle.XORBytes(clientKey, cf.proof, clientSignature)
	if subtle.ConstantTimeCompare(s.h.sum(clientKey), s.cred.StoredKey) != 1 {
		return nil, false, fmt.Errorf("%w: %s: wrong password for user %q", ErrAuthenticationFailed, s.h.name, s.user)
	}
	serverSignature := s.h.hmac(s.cred.ServerKey, authMessage)
	return []byte("v=" + base64.StdEncoding.EncodeToString(serverSignature)), true, nil
}

// clientFirst is a parsed client-first-message.
type clientFirst struct {
	gs2Header string // "n,," or "y,,", with an authzid if given
	bare      string // client-first-message-bare, as signed
	user      string
	nonce     string
}

// parseClientFirst reads gs2-header client-first-message-bare (RFC 5802, section 7).
// Channel binding ("p=") is refused: Kafka does not offer it. An authzid must be the
// user itself, as Kafka requires.
func parseClientFirst(msg string) (clientFirst, error) {
	var cf clientFirst
	flag, rest, ok := strings.Cut(msg, ",")
	if !ok || (flag != "n" && flag != "y") {
		return cf, fmt.Errorf("client-first message: GS2 flag %q: want n or y (channel binding is not supported)", flag)
	}
	authzid, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return cf, fmt.Errorf("client-first message: no authzid field")
	}
	cf.gs2Header, cf.bare = flag+","+authzid+",", bare
	if strings.HasPrefix(bare, "m=") {
		return cf, fmt.Errorf("client-first message: mandatory extension %q is not supported", bare)
	}
	attrs := strings.Split(bare, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "n=") || !strings.HasPrefix(attrs[1], "r=") {
		return cf, fmt.Errorf("client-first message: want n=user,r=nonce")
	}
	user, err := decodeSaslName(attrs[0][2:])
	if err != nil {
		return cf, fmt.Errorf("client-first message: %w", err)
	}
	cf.user, cf.nonce = user, attrs[1][2:]
	if cf.user == "" || !printable(cf.nonce) {
		return cf, fmt.Errorf("client-first message: empty user or a nonce of unprintable characters")
	}
	if authzid != "" {
		az, err := decodeSaslName(strings.TrimPrefix(authzid, "a="))
		if !strings.HasPrefix(authzid, "a=") || err != nil || az != cf.user {
			return cf, fmt.Errorf("client-first message: authorization id %q is not the user %q", authzid, cf.user)
		}
	}
	return cf, nil
}

// decodeSaslName undoes RFC 5802's escaping of ',' as =2C and '=' as =3D.
func decodeSaslName(s string) (string, error) {
	if !strings.Contains(s, "=") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", fmt.Errorf("user name %q: '=' must be escaped as =3D", s)
		}
		i += 2
	}
	return b.String(), nil
}

// printable reports whether s is a non-empty nonce of printable ASCII but ','.
func printable(s string) bool {
	for i := range len(s) {
		if s[i] < 0x21 || s[i] > 0x7e || s[i] == ',' {
			return false
		}
	}
	return s != ""
}

// clientFinal is a parsed client-final-message.
type clientFinal struct {
	channelBinding string
	nonce          string
	proof          []byte
	withoutProof   string // client-final-message-without-proof, as signed
}

// parseClientFinal reads c=binding,r=nonce[,extensions],p=proof.
func parseClientFinal(msg string) (clientFinal, error) {
	var cf clientFinal
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return cf, fmt.Errorf("client-final message: no proof")
	}
	cf.withoutProof = msg[:i]
	proof, err := base64.StdEncoding.DecodeString(msg[i+3:])
	if err != nil {
		return cf, fmt.Errorf("client-final message: proof: %w", err)
	}
	cf.proof = proof
	attrs := strings.Split(cf.withoutProof, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "c=") || !strings.HasPrefix(attrs[1], "r=") {
		return cf, fmt.Errorf("client-final message: want c=binding,r=nonce,p=proof")
	}
	cf.channelBinding, cf.nonce = attrs[0][2:], attrs[1][2:]
	if bytes.ContainsRune([]byte(cf.nonce), 0) {
		return cf, fmt.Errorf("client-final message: nonce with a NUL")
	}
	return cf, nil
}
