// Package sasl is the server side of the SASL mechanisms Kafka clients speak inside
// SaslAuthenticate requests (KIP-152): PLAIN (RFC 4616), SCRAM-SHA-256 and
// SCRAM-SHA-512 (RFC 5802, RFC 7677) and OAUTHBEARER (RFC 7628) with JWTs signed
// RS256 or ES256 (RFC 7515, RFC 7518).
//
// A Mechanism starts one Session per authentication; the wire server hands the session
// each SaslAuthenticate's bytes and sends back what Step returns, until Step reports
// done (the principal is then known) or fails (SASL_AUTHENTICATION_FAILED, and the
// connection closes):
//
//	client                                   Session
//	PLAIN        [authzid] NUL user NUL pass  -> done
//	SCRAM        n,,n=user,r=cnonce           -> r=cnonce+snonce,s=salt,i=4096
//	             c=biws,r=...,p=proof         -> v=server-signature, done
//	OAUTHBEARER  n,,^Aauth=Bearer <JWT>^A^A   -> done; the token's exp ends the session
//
// Passwords are never stored: SCRAM credentials keep a salt, StoredKey and ServerKey,
// and PLAIN checks a password by deriving the same keys from a SCRAM credential. So
// one credential serves both, as `--sasl-users` creates them.
//
// Failures wrap ErrAuthenticationFailed; their text is for the server's audit log. A
// client is told no more than that its credentials were refused, and an unknown user
// is refused only at the end of a SCRAM exchange, as a wrong password is, so that
// user names cannot be probed.
package sasl
