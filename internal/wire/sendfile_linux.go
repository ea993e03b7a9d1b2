package wire

import (
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
)

// maxSendfileChunk bounds one sendfile call; Linux moves at most about 2 GiB per call.
const maxSendfileChunk = 1 << 30

// sendfileBytes counts the bytes moved by sendfile, so tests can tell it was used.
var sendfileBytes atomic.Int64

// canSendFile reports whether file ranges can go to nc with sendfile.
func canSendFile(nc net.Conn) bool {
	_, ok := nc.(*net.TCPConn)
	return ok
}

// sendFile sends r from its file to nc, a *net.TCPConn, with sendfile(2) at an explicit
// offset. Go's own path (TCPConn.ReadFrom of an *os.File or an io.LimitedReader over one)
// sends from the file's current position and moves it, which is not safe for a file that
// other connections, or ReadAt-based readers expecting nothing of the position, share;
// passing the offset leaves the position alone. The range must exist in full: a file that
// ends early is an error, since the frame announced its length already.
func sendFile(nc net.Conn, r FileRange) error {
	dst, err := nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		return err
	}
	src, err := r.File.SyscallConn()
	if err != nil {
		return err
	}
	off, end := r.Offset, r.Offset+r.Length
	var sendErr, writeErr error
	// Control keeps the file open while we use its descriptor; Write takes the socket's
	// write lock and, each time we return false, waits until it is writable again.
	ctlErr := src.Control(func(in uintptr) {
		writeErr = dst.Write(func(out uintptr) bool {
			for off < end {
				n, err := syscall.Sendfile(int(out), int(in), &off, int(min(end-off, maxSendfileChunk)))
				if n > 0 {
					sendfileBytes.Add(int64(n))
				}
				switch {
				case err == syscall.EAGAIN:
					return false
				case err == syscall.EINTR:
				case err != nil:
					sendErr = os.NewSyscallError("sendfile", err)
					return true
				case n == 0:
					sendErr = fmt.Errorf("wire: send %d bytes at %d of %s: %w", r.Length, r.Offset, r.File.Name(), io.ErrUnexpectedEOF)
					return true
				}
			}
			return true
		})
	})
	switch {
	case sendErr != nil:
		return sendErr
	case writeErr != nil:
		return writeErr
	}
	return ctlErr
}
