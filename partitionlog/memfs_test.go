package partitionlog

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// memFS is an in-memory FS for crash and fault tests, after pebble's vfs.MemFS CrashClone
// and errorfs. Every file keeps what was written and what was last synced; the namespace
// keeps what it is and what it was at each directory's last SyncDir. crashClone returns the
// filesystem a machine would find after losing power: only synced bytes, under names made
// durable by a directory sync. inject makes chosen operations fail.
type memFS struct {
	mu      sync.Mutex
	names   map[string]*memNode // path -> file now
	durable map[string]*memNode // path -> file as of the last SyncDir of its directory
	ops     int                 // mutating operations so far
	// inject, when set, is asked before each operation ("open", "write", "sync",
	// "truncate", "rename", "remove", "syncdir") and fails it with what it returns.
	inject func(op, path string, n int) error
	// failRead, when set, is asked before each read: opening an existing file ("open",
	// not counted as an operation, since it changes nothing) and ReadAt ("read"). It makes
	// files unreadable now (EMFILE, EIO), as opposed to corrupt.
	failRead func(op, path string) error
	// open counts the files open now, for descriptor tests.
	open int
}

type memNode struct {
	data, synced []byte
	mod          time.Time
}

func newMemFS() *memFS {
	return &memFS{names: map[string]*memNode{}, durable: map[string]*memNode{}}
}

// check counts a mutating operation and asks inject. fs.mu is held.
func (fs *memFS) check(op, path string) error {
	fs.ops++
	if fs.inject != nil {
		if err := fs.inject(op, path, fs.ops); err != nil {
			return &os.PathError{Op: op, Path: path, Err: err}
		}
	}
	return nil
}

// crashClone returns the filesystem as a crash now would leave it.
func (fs *memFS) crashClone() *memFS {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	out := newMemFS()
	clones := map[*memNode]*memNode{}
	for p, n := range fs.durable {
		c, ok := clones[n]
		if !ok {
			c = &memNode{data: bytes.Clone(n.synced), synced: bytes.Clone(n.synced), mod: n.mod}
			clones[n] = c
		}
		out.names[p], out.durable[p] = c, c
	}
	return out
}

func (fs *memFS) OpenFile(name string, flag int, _ os.FileMode) (File, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n, ok := fs.names[name]
	switch {
	case ok && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, &os.PathError{Op: "open", Path: name, Err: os.ErrExist}
	case !ok && flag&os.O_CREATE == 0:
		return nil, &os.PathError{Op: "open", Path: name, Err: os.ErrNotExist}
	}
	if !ok || flag&os.O_TRUNC != 0 {
		if err := fs.check("open", name); err != nil {
			return nil, err
		}
	} else if fs.failRead != nil {
		if err := fs.failRead("open", name); err != nil {
			return nil, &os.PathError{Op: "open", Path: name, Err: err}
		}
	}
	if !ok {
		n = &memNode{mod: time.Now()}
		fs.names[name] = n
	}
	if flag&os.O_TRUNC != 0 {
		n.data = nil
	}
	fs.open++
	return &memFile{fs: fs, n: n, name: name}, nil
}

// openFiles returns how many files are open.
func (fs *memFS) openFiles() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.open
}

func (fs *memFS) Rename(oldpath, newpath string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n, ok := fs.names[oldpath]
	if !ok {
		return &os.PathError{Op: "rename", Path: oldpath, Err: os.ErrNotExist}
	}
	if err := fs.check("rename", oldpath); err != nil {
		return err
	}
	delete(fs.names, oldpath)
	fs.names[newpath] = n
	return nil
}

func (fs *memFS) Remove(name string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if _, ok := fs.names[name]; !ok {
		return &os.PathError{Op: "remove", Path: name, Err: os.ErrNotExist}
	}
	if err := fs.check("remove", name); err != nil {
		return err
	}
	delete(fs.names, name)
	return nil
}

func (fs *memFS) ReadDir(dir string) ([]string, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var names []string
	for p := range fs.names {
		if filepath.Dir(p) == dir {
			names = append(names, filepath.Base(p))
		}
	}
	slices.Sort(names)
	return names, nil
}

func (fs *memFS) MkdirAll(string, os.FileMode) error { return nil }

func (fs *memFS) SyncDir(dir string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.check("syncdir", dir); err != nil {
		return err
	}
	for p := range fs.durable {
		if filepath.Dir(p) == dir {
			delete(fs.durable, p)
		}
	}
	for p, n := range fs.names {
		if filepath.Dir(p) == dir {
			fs.durable[p] = n
		}
	}
	return nil
}

// exists reports whether name is in the namespace now.
func (fs *memFS) exists(name string) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	_, ok := fs.names[name]
	return ok
}

// files lists the names in dir whose name contains substr.
func (fs *memFS) files(dir, substr string) []string {
	names, _ := fs.ReadDir(dir)
	var out []string
	for _, n := range names {
		if strings.Contains(n, substr) {
			out = append(out, n)
		}
	}
	return out
}

// memFile is an open memFS file. A removed or renamed file stays readable through it.
type memFile struct {
	fs     *memFS
	n      *memNode
	name   string
	closed bool
}

func (f *memFile) ReadAt(b []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return 0, os.ErrClosed
	}
	if f.fs.failRead != nil {
		if err := f.fs.failRead("read", f.name); err != nil {
			return 0, &os.PathError{Op: "read", Path: f.name, Err: err}
		}
	}
	if len(b) == 0 {
		return 0, nil // as os.File
	}
	if off >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	n := copy(b, f.n.data[off:])
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

// WriteAt writes b at off. An injected failure first writes half of b, as a full disk may.
func (f *memFile) WriteAt(b []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return 0, os.ErrClosed
	}
	err := f.fs.check("write", f.name)
	if err != nil {
		b = b[:len(b)/2]
	}
	if end := off + int64(len(b)); end > int64(len(f.n.data)) {
		f.n.data = append(f.n.data, make([]byte, end-int64(len(f.n.data)))...)
	}
	copy(f.n.data[off:], b)
	f.n.mod = time.Now()
	return len(b), err
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return os.ErrClosed
	}
	if err := f.fs.check("sync", f.name); err != nil {
		return err
	}
	f.n.synced = bytes.Clone(f.n.data)
	return nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return os.ErrClosed
	}
	if err := f.fs.check("truncate", f.name); err != nil {
		return err
	}
	if size <= int64(len(f.n.data)) {
		f.n.data = f.n.data[:size:size]
	} else {
		f.n.data = append(f.n.data, make([]byte, size-int64(len(f.n.data)))...)
	}
	return nil
}

func (f *memFile) Stat() (os.FileInfo, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	return memInfo{name: filepath.Base(f.name), size: int64(len(f.n.data)), mod: f.n.mod}, nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return os.ErrClosed
	}
	f.closed = true
	f.fs.open--
	return nil
}

type memInfo struct {
	name string
	size int64
	mod  time.Time
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) Mode() os.FileMode  { return 0o644 }
func (i memInfo) ModTime() time.Time { return i.mod }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }

// failOp returns an inject function that fails op on paths ending in suffix, from the nth
// matching call on (a full disk stays full), with err.
func failOp(op, suffix string, nth int, err error) func(string, string, int) error {
	seen := 0
	return func(o, path string, _ int) error {
		if o != op || !strings.HasSuffix(path, suffix) {
			return nil
		}
		if seen++; seen >= nth {
			return err
		}
		return nil
	}
}

var (
	errNoSpace = syscall.ENOSPC
	errIO      = syscall.EIO
	errTooMany = syscall.EMFILE
)
