package nameserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/gopyro/gopyro"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Entry is one registration.
type Entry struct {
	Name     string   `msgpack:"name" json:"name"`
	URI      string   `msgpack:"uri" json:"uri"`
	Metadata []string `msgpack:"metadata" json:"metadata,omitempty"`
}

// Store keeps registrations. Implementations must be safe for concurrent
// use; a store for a distributed backend (etcd, say) implements the same
// five calls. Put with safe set fails with gopyro.ErrExists when the name
// is taken.
type Store interface {
	Put(e Entry, safe bool) error
	Get(name string) (Entry, bool, error)
	// Delete removes the names that exist and returns how many it removed.
	Delete(names ...string) (int, error)
	// All returns every entry, sorted by name.
	All() ([]Entry, error)
	Close() error
}

var (
	_ Store = (*MemoryStore)(nil)
	_ Store = (*BoltStore)(nil)
)

func existsErr(name string) error {
	return &gopyro.Error{Code: gopyro.CodeExists, Op: "register", Message: fmt.Sprintf("name %q is already registered", name)}
}

// MemoryStore keeps registrations in memory only.
type MemoryStore struct {
	mu sync.RWMutex
	m  map[string]Entry // guarded by mu
}

// NewMemoryStore returns an empty in-memory store.
func NewMemoryStore() *MemoryStore { return &MemoryStore{m: map[string]Entry{}} }

func (s *MemoryStore) Put(e Entry, safe bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[e.Name]; ok && safe {
		return existsErr(e.Name)
	}
	e.Metadata = slices.Clone(e.Metadata)
	s.m[e.Name] = e
	return nil
}

func (s *MemoryStore) Get(name string) (Entry, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.m[name]
	e.Metadata = slices.Clone(e.Metadata)
	return e, ok, nil
}

func (s *MemoryStore) Delete(names ...string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, name := range names {
		if _, ok := s.m[name]; ok {
			delete(s.m, name)
			n++
		}
	}
	return n, nil
}

func (s *MemoryStore) All() ([]Entry, error) {
	s.mu.RLock()
	out := make([]Entry, 0, len(s.m))
	for _, e := range s.m {
		e.Metadata = slices.Clone(e.Metadata)
		out = append(out, e)
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b Entry) int { return cmpString(a.Name, b.Name) })
	return out, nil
}

func (s *MemoryStore) Close() error { return nil }

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// BoltStore keeps registrations in a bbolt file. Every change is synced to
// disk before the call that made it returns, so a registration survives
// even kill -9 right after Register returned.
type BoltStore struct {
	db   *bolt.DB
	path string
}

var bucket = []byte("names")

// OpenBoltStore opens (creating if needed) the store file at path, in a
// directory that must exist (a mistyped path does not create a tree of
// directories; [DefaultStoreDir] makes the default one). It fails, saying
// what and where, when the file is locked by another name server,
// corrupt, or cannot be written.
func OpenBoltStore(path string) (*BoltStore, error) {
	fail := func(what string, err error) (*BoltStore, error) {
		return nil, &gopyro.Error{Code: gopyro.CodeInvalid, Op: "open store", URI: path, Message: what, Err: err}
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
		if err == nil {
			err = fmt.Errorf("%s is not a directory", filepath.Dir(path))
		}
		return fail("its directory does not exist (create it first)", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		switch {
		case errors.Is(err, berrors.ErrTimeout):
			return fail("the store is locked: is another name server using it?", err)
		case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
			return fail("the store file is corrupt or not a gopyro store (move it away to start empty)", err)
		}
		return fail("cannot open the store file", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		// Every value must decode: refuse to start on a damaged store.
		return b.ForEach(func(k, v []byte) error {
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("entry %q: %w", k, err)
			}
			return nil
		})
	})
	if err != nil {
		db.Close()
		return fail("the store file cannot be read or written", err)
	}
	return &BoltStore{db: db, path: path}, nil
}

// Path returns the file the store lives in.
func (s *BoltStore) Path() string { return s.path }

func (s *BoltStore) Put(e Entry, safe bool) error {
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if safe && b.Get([]byte(e.Name)) != nil {
			return existsErr(e.Name)
		}
		return b.Put([]byte(e.Name), v)
	})
}

func (s *BoltStore) Get(name string) (Entry, bool, error) {
	var e Entry
	var ok bool
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucket).Get([]byte(name))
		if v == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(v, &e)
	})
	return e, ok, err
}

func (s *BoltStore) Delete(names ...string) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		for _, name := range names {
			if b.Get([]byte(name)) != nil {
				if err := b.Delete([]byte(name)); err != nil {
					return err
				}
				n++
			}
		}
		return nil
	})
	return n, err
}

func (s *BoltStore) All() ([]Entry, error) {
	var out []Entry
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			out = append(out, e)
			return nil
		})
	})
	return out, err
}

func (s *BoltStore) Close() error { return s.db.Close() }

// DefaultStorePath is where "gopyro ns" keeps its store unless told:
// $XDG_STATE_HOME/gopyro/ns.db, or ~/.local/state/gopyro/ns.db.
func DefaultStorePath() (string, error) {
	dir, err := DefaultStoreDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "ns.db"), nil
}

// DefaultStoreDir returns the directory of [DefaultStorePath], creating it
// (the only directory a name server creates) when missing.
func DefaultStoreDir() (string, error) {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("nameserver: no state directory: %w", err)
		}
		dir = filepath.Join(home, ".local", "state")
	}
	dir = filepath.Join(dir, "gopyro")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("nameserver: cannot create the state directory: %w", err)
	}
	return dir, nil
}
