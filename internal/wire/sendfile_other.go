//go:build !linux

package wire

import (
	"errors"
	"net"
	"sync/atomic"
)

// sendfileBytes is a Linux-only counter; elsewhere it stays zero.
var sendfileBytes atomic.Int64

// canSendFile reports whether file ranges can go to nc with sendfile: only on Linux, so
// elsewhere Spliced responses are copied into their frames.
func canSendFile(net.Conn) bool { return false }

func sendFile(net.Conn, FileRange) error {
	return errors.New("wire: sendfile not supported")
}
