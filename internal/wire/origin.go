package wire

import "context"

// Origin is who a request comes from: the real client, even when a proxy forwards its
// request over an internal connection, so that a node logs, meters and traces per real
// client.
//
// A Server sets Request.Origin, and puts it in the handler's context, from the
// connection itself (its client id and remote address) on an ordinary connection, and
// from the request header's tags, where present, on an internal one. A Client dialed
// with ClientOptions.Internal sends the Origin of the context given to Do in the header
// of each flexible request; so a handler that forwards with its own context carries
// its client's origin on, and one that sets WithOrigin overrides it.
//
// These fields are trusted only from internal peers: a connection may declare itself
// internal only if Security.InternalPeer accepts the principal its TLS client
// certificate names (any connection may, on a listener without authentication). On an
// ordinary connection Principal is the one it authenticated as, and Listener the
// listener's name.
type Origin struct {
	ClientID    string // the Kafka client id the client sent
	ClientAddr  string // the client's host:port, as its proxy saw it
	TraceParent string // W3C traceparent of the caller's span; "" when there is none
	Principal   string // who the client authenticated as, "User:alice"; "" when unknown
	Listener    string // the name of the listener the client connected on, "SASL_SSL"
}

type originKey struct{}

// WithOrigin returns ctx carrying o, for Client.Do and Pool.Do to send.
func WithOrigin(ctx context.Context, o Origin) context.Context {
	return context.WithValue(ctx, originKey{}, o)
}

// OriginFrom returns the Origin ctx carries, if any.
func OriginFrom(ctx context.Context) (Origin, bool) {
	o, ok := ctx.Value(originKey{}).(Origin)
	return o, ok
}
