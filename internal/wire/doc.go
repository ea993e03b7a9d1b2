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
// decodes requests ahead, within Limits. Strait's own Client may opt a connection
// into out-of-order answers by sending OutOfOrderClientID as its client id: its requests
// are handled concurrently and answered as they finish, so that a slow request (a
// long-poll fetch) never holds back a fast one. Ordinary Kafka clients never do.
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
//     takes nothing of an answer for that long, is closed.
//
// Stats reports the connections, what they hold and why the server closed them.
//
// See example_test.go for a Server and a Client talking to each other.
package wire
