package sasl

import (
	"bytes"
	"context"
	"fmt"
	"time"
)

// PlainMechanism is SASL PLAIN (RFC 4616), checking passwords against SCRAM
// credentials: a user's SCRAM-SHA-512 credential, else its SCRAM-SHA-256 one. Use it
// over TLS only: the password crosses the wire as it is.
type PlainMechanism struct{ creds Credentials }

// NewPlain returns PLAIN over creds.
func NewPlain(creds Credentials) *PlainMechanism { return &PlainMechanism{creds: creds} }

// Name implements Mechanism.
func (*PlainMechanism) Name() string { return Plain }

// NewSession implements Mechanism.
func (m *PlainMechanism) NewSession() Session { return &plainSession{creds: m.creds} }

type plainSession struct {
	creds Credentials
	user  string
	done  bool
}

func (s *plainSession) Principal() string { return userPrincipal(s.user) }
func (s *plainSession) Expiry() time.Time { return time.Time{} }

func (s *plainSession) Step(ctx context.Context, msg []byte) ([]byte, bool, error) {
	if s.done {
		return nil, false, fmt.Errorf("%w: PLAIN: message after the exchange ended", ErrAuthenticationFailed)
	}
	s.done = true
	user, password, err := parsePlain(msg)
	if err != nil {
		return nil, false, fmt.Errorf("%w: PLAIN: %w", ErrAuthenticationFailed, err)
	}
	s.user = user
	for _, mech := range []string{ScramSHA512, ScramSHA256} {
		cred, found, err := s.creds.ScramCredential(ctx, user, mech)
		if err != nil {
			return nil, false, fmt.Errorf("%w: PLAIN: look up user %q: %w", ErrAuthenticationFailed, user, err)
		}
		if !found {
			continue
		}
		if verifyPassword(mech, password, cred) {
			return nil, true, nil
		}
		return nil, false, fmt.Errorf("%w: PLAIN: wrong password for user %q", ErrAuthenticationFailed, user)
	}
	return nil, false, fmt.Errorf("%w: PLAIN: unknown user %q", ErrAuthenticationFailed, user)
}

// parsePlain reads [authzid] NUL authcid NUL passwd (RFC 4616, section 2). An authzid
// must be the user itself, as Kafka requires.
func parsePlain(msg []byte) (user, password string, err error) {
	parts := bytes.Split(msg, []byte{0})
	if len(parts) != 3 {
		return "", "", fmt.Errorf("message of %d NUL-separated fields: want authzid, user and password", len(parts))
	}
	authzid, user, password := string(parts[0]), string(parts[1]), string(parts[2])
	switch {
	case user == "" || password == "":
		return "", "", fmt.Errorf("empty user or password")
	case authzid != "" && authzid != user:
		return "", "", fmt.Errorf("authorization id %q is not the user %q", authzid, user)
	}
	return user, password, nil
}
