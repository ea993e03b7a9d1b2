package sasl

import (
	"context"
	"errors"
	"time"
)

// Mechanism names, as SaslHandshake carries them.
const (
	Plain       = "PLAIN"
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
	OAuthBearer = "OAUTHBEARER"
)

// ErrAuthenticationFailed marks every failed authentication.
var ErrAuthenticationFailed = errors.New("authentication failed")

// Mechanism makes sessions of one SASL mechanism.
type Mechanism interface {
	Name() string
	NewSession() Session
}

// Session is one authentication exchange on one connection.
type Session interface {
	// Step consumes the client's next message and returns the server's answer, and
	// whether the client is now authenticated. An error ends the exchange.
	Step(ctx context.Context, msg []byte) (answer []byte, done bool, err error)
	// Principal is who the client authenticated as, "User:name", once done.
	Principal() string
	// Expiry is when the credentials used stop being valid (an OAUTHBEARER token's
	// exp), zero when they do not expire: the session must not outlive it (KIP-368).
	Expiry() time.Time
}

// ScramCredential is what a server keeps of a SCRAM password (RFC 5802, section 3):
// never the password, only keys derived from it with Salt and Iterations.
type ScramCredential struct {
	Salt       []byte
	StoredKey  []byte
	ServerKey  []byte
	Iterations int
}

// Credentials finds users' SCRAM credentials; found is false for an unknown user or
// mechanism.
type Credentials interface {
	ScramCredential(ctx context.Context, user, mechanism string) (cred ScramCredential, found bool, err error)
}

// userPrincipal is the principal of a user name, in Kafka's form.
func userPrincipal(user string) string { return "User:" + user }
