package partitionlog

import (
	"errors"
	"io"
	"os"
	"path/filepath"
)

// FS is the narrow file seam the log does all its I/O through: the real
// operating system by default, and in tests a filesystem that can lose what was not synced
// and fail chosen operations. Paths are those the log builds with filepath.Join.
//
// Durability follows POSIX: bytes written to a file survive a crash once the file is synced;
// a create, rename or remove survives once its directory is synced (SyncDir).
type FS interface {
	// OpenFile opens name with os.OpenFile's flags (O_RDONLY, O_RDWR, O_CREATE, O_EXCL,
	// O_TRUNC, O_WRONLY). Errors match os.ErrNotExist and os.ErrExist as os's do.
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	Rename(oldpath, newpath string) error
	Remove(name string) error
	// ReadDir returns the names in dir, sorted.
	ReadDir(dir string) ([]string, error)
	MkdirAll(dir string, perm os.FileMode) error
	// SyncDir makes the creates, renames and removes in dir durable.
	SyncDir(dir string) error
}

// File is an open file of an FS. *os.File satisfies it, and the OS FS returns *os.File, which
// ReadSections hands out for sendfile.
type File interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
	Truncate(size int64) error
	Stat() (os.FileInfo, error)
	Close() error
}

// osFS is the default FS.
type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err // not a typed nil *os.File in an interface
	}
	return f, nil
}

func (osFS) Rename(oldpath, newpath string) error        { return os.Rename(oldpath, newpath) }
func (osFS) Remove(name string) error                    { return os.Remove(name) }
func (osFS) MkdirAll(dir string, perm os.FileMode) error { return os.MkdirAll(dir, perm) }

func (osFS) ReadDir(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return names, nil
}

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// readFSFile reads a whole file through fs.
func readFSFile(fs FS, name string) ([]byte, error) {
	f, err := fs.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b := make([]byte, fi.Size())
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b, nil
}

// writeFileAtomic is writeFileAtomicFS on the operating system's files, for a path.
func writeFileAtomic(path string, b []byte) error {
	return writeFileAtomicFS(osFS{}, filepath.Dir(path), filepath.Base(path), b)
}

// writeFileAtomicFS replaces dir/name with b: write a temp file, fsync it, rename it over the
// old one, fsync the directory so the rename survives a crash.
func writeFileAtomicFS(fs FS, dir, name string, b []byte) error {
	path, tmp := filepath.Join(dir, name), filepath.Join(dir, name+".tmp")
	f, err := fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(b, 0)
	if err == nil {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err != nil {
		fs.Remove(tmp)
		return err
	}
	if err := fs.Rename(tmp, path); err != nil {
		return err
	}
	return fs.SyncDir(dir)
}

// syncDir is FS.SyncDir on the operating system's files.
func syncDir(dir string) error { return osFS{}.SyncDir(dir) }
