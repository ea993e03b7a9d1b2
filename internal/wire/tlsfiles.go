package wire

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// TLSFiles are the PEM files of a process's TLS identity: its certificate chain and key,
// which it presents as a server and, to other Strait processes, as a client (mTLS);
// and the CA certificates it verifies peers with.
type TLSFiles struct {
	CertFile, KeyFile, CAFile string
}

// tlsReloadEvery bounds how often the files are looked at.
const tlsReloadEvery = time.Second

// TLSReloader serves TLS configs from TLSFiles and picks up new files without a
// restart: as connections open, at most once a second, it compares the files' size
// and modification time with what it loaded, and reloads when they changed (a
// certificate renewed in place, a Kubernetes secret's symlink swapped). A reload that
// fails (a half-written file) keeps the last good material and is logged; the next
// change is tried again. No signal is needed, which suits containers.
type TLSReloader struct {
	files  TLSFiles
	logger *slog.Logger

	mu struct {
		sync.Mutex
		cert      *tls.Certificate
		roots     *x509.CertPool // nil without a CA file: the system's
		stamps    [3]fileStamp
		checkedAt time.Time
	}
}

type fileStamp struct {
	size    int64
	modTime time.Time
}

// NewTLSReloader loads files now, failing if they cannot be read.
func NewTLSReloader(files TLSFiles, logger *slog.Logger) (*TLSReloader, error) {
	if files.CertFile == "" || files.KeyFile == "" {
		return nil, errors.New("wire: TLS needs a certificate and a key file (--tls-cert, --tls-key)")
	}
	r := &TLSReloader{files: files, logger: logger}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.loadLocked(); err != nil {
		return nil, err
	}
	return r, nil
}

// loadLocked reads the files into the reloader.
func (r *TLSReloader) loadLocked() error {
	stamps := r.stamps()
	cert, err := tls.LoadX509KeyPair(r.files.CertFile, r.files.KeyFile)
	if err != nil {
		return fmt.Errorf("wire: TLS certificate %s and key %s: %w", r.files.CertFile, r.files.KeyFile, err)
	}
	var roots *x509.CertPool
	if r.files.CAFile != "" {
		pem, err := os.ReadFile(r.files.CAFile)
		if err != nil {
			return fmt.Errorf("wire: TLS CA file: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return fmt.Errorf("wire: TLS CA file %s holds no PEM certificate", r.files.CAFile)
		}
	}
	r.mu.cert, r.mu.roots, r.mu.stamps = &cert, roots, stamps
	return nil
}

func (r *TLSReloader) stamps() [3]fileStamp {
	var out [3]fileStamp
	for i, name := range []string{r.files.CertFile, r.files.KeyFile, r.files.CAFile} {
		if fi, err := os.Stat(name); name != "" && err == nil {
			out[i] = fileStamp{fi.Size(), fi.ModTime()}
		}
	}
	return out
}

// current returns the loaded material, reloading it first if the files changed.
func (r *TLSReloader) current() (*tls.Certificate, *x509.CertPool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.mu.checkedAt) >= tlsReloadEvery {
		r.mu.checkedAt = now
		if r.stamps() != r.mu.stamps {
			if err := r.loadLocked(); err != nil {
				r.logger.Warn("wire: the TLS files changed but do not load; keeping the previous certificate until they do", "err", err)
			} else {
				r.logger.Info("wire: reloaded the TLS certificate and CA files", "cert", r.files.CertFile, "ca", r.files.CAFile)
			}
		}
	}
	return r.mu.cert, r.mu.roots
}

// ServerConfig is a listener's TLS config: the current certificate, and client
// certificates verified against the CA file as clientAuth says.
func (r *TLSReloader) ServerConfig(clientAuth tls.ClientAuthType) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, roots := r.current()
			return &tls.Config{
				MinVersion:   tls.VersionTLS12,
				Certificates: []tls.Certificate{*cert},
				ClientCAs:    roots,
				ClientAuth:   clientAuth,
			}, nil
		},
		// Read by Security before any handshake: the listener authenticates clients.
		ClientAuth: clientAuth,
	}
}

// ClientConfig is the config of a connection to another Strait process: the current
// certificate presented as the client's (mTLS), the server verified against the CA
// file. Use it as ClientOptions.TLS.
func (r *TLSReloader) ClientConfig() (*tls.Config, error) {
	cert, roots := r.current()
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*cert}, RootCAs: roots}, nil
}

// Principal is the principal the current certificate names, as peers see it.
func (r *TLSReloader) Principal() (string, error) {
	cert, _ := r.current()
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return "", fmt.Errorf("wire: parse the TLS certificate: %w", err)
	}
	return "User:" + leaf.Subject.String(), nil
}
