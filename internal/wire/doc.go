// Package wire frames the Kafka protocol over TCP, as net/http does HTTP: it reads
// size-prefixed frames, decodes request headers and bodies into kmsg types, hands them to a
// Handler, and writes the responses back; and it sends requests and matches responses as a
// Client. It knows nothing about what any API means.
//
// Every message, in both directions, is one frame:
//
//	+----------------+-----------------------------------------------+
//	| size  int32 BE | payload (size bytes)                          |
//	+----------------+-----------------------------------------------+
//
// A request payload is a header followed by the body kmsg encodes:
//
//	+-----------+---------------+--------------------+--------------------+--------------+------+
//	| key int16 | version int16 | correlation  int32 | client id          | tagged       | body |
//	|           |               |                    | int16 len + bytes  | fields       |      |
//	|           |               |                    | (-1 = null)        | (v2 only)    |      |
//	+-----------+---------------+--------------------+--------------------+--------------+------+
//
// Header v2 (with the tagged fields: a uvarint count, then uvarint tag, uvarint size and
// bytes per field) is used by flexible request versions; v1 by the others; v0 (no client
// id) only by ControlledShutdown v0.
//
// A response payload is:
//
//	+--------------------+------------------------+------+
//	| correlation  int32 | tagged fields (v1)     | body |
//	+--------------------+------------------------+------+
//
// The tagged fields appear for flexible response versions, except ApiVersions, whose
// response header is always v0 so that a client can read it whatever version it asked for
// (KIP-511). When an ApiVersions request is newer than the server knows, the Server answers
// at version 0 with UNSUPPORTED_VERSION and its supported ranges, and keeps the connection.
//
// A Server answers each connection's requests in the order they arrived (the protocol
// demands it) and, like a Kafka broker, handles them one at a time, so two pipelined
// produce requests to one partition are appended in the order sent; it still reads and
// decodes requests ahead, within Limits.
//
// Any other malformed input (a negative or oversized frame size, an unknown API key or
// version, a body that does not decode) is logged and closes that connection only, as
// Kafka does.
//
// What a peer can make a Server hold follows the bytes it sends, never what it announces
// (Limits, MemoryBudget):
//
//   - a frame's size is checked against MaxRequestBytes, and any frame but Produce's
//     against MaxNonRecordBytes, before anything is allocated; its buffer then starts
//     small and doubles as bytes arrive;
//   - before kmsg decodes a request, what decoding may allocate (decodeAmplification
//     bytes per byte that is not a record batch) is reserved;
//   - requests read, with that allowance, and answers not yet written count against the
//     connection's MaxInFlightBytes and the MemoryBudget its Server shares with others;
//     past either the connection is not read, and past the connection's its handlers
//     wait, until answers drain. A connection that holds nothing may always read one
//     request, however large, so nothing is wedged;
//   - a request must arrive in full within RequestReadTimeout of its first byte; a
//     connection with nothing in flight and nothing sent for IdleTimeout, or whose peer
//     takes nothing of an answer for that long, is closed;
//   - past MaxConnections, a new connection is closed as soon as it is accepted.
//
// Stats reports the connections, what they hold, why the server paused reading them and
// why it closed or refused them.
//
// # Internal connections
//
// Connections between Strait processes are few and busy: a proxy multiplexes all its
// clients over a few connections per node (Pool). Strait's Client, with
// ClientOptions.Internal, opens each with a handshake: an ApiVersions v3 request whose
// header (v2) carries Strait's tag 10000. A Server that reads it as a connection's first
// request marks the connection internal, for good: it handles its requests concurrently
// and answers each as soon as it is ready (the Client matches answers by correlation
// id), so that a long-poll fetch never holds back a produce, and reads up to
// MaxInFlightInternal requests ahead instead of MaxInFlight (the byte bounds stay). The
// tag anywhere else is ignored, and an ordinary Kafka client, which never sends it,
// never sees any of this.
//
// On an internal connection each flexible request may carry its Origin, the real client
// behind the proxy, in more tags; a Server hands it to the handler as Request.Origin
// (on an ordinary connection, Origin is the connection's own client id and address):
//
//	header v2 of an internal request, tags in ascending order:
//	+-----+---------+-------------+--------------------+-------+-----------------------------+
//	| key | version | correlation | client id          | count | tag  size  value            |
//	|     |         |             | "strait-proxy"     | uvar  | uvar uvar  bytes  ...       |
//	+-----+---------+-------------+--------------------+-------+-----------------------------+
//
//	tag    value                                      sent
//	10000  uvarint 1, the internal protocol version   on the handshake only
//	10001  the real client's client id                when the context holds an Origin
//	10002  the client's address, host:port            idem
//	10003  W3C traceparent of the caller's span       idem, when there is one
//	10004  the client's principal, "User:alice"       idem
//	10005  the listener the client connected on       idem
//
// Apache Kafka defines no request header tags, and every Kafka reader skips the ones it
// does not know. A Server reads them only from internal peers it trusts (Security).
//
// See example_test.go for a Server and a Client talking to each other.
package wire
