package oauth

import "sync"

// TokenStore keeps what the broker must remember across reloads (and,
// with a persistent implementation, restarts): tokens and registered
// clients, as opaque bytes under a name. creds/vault provides the one
// encrypted at rest; MemoryStore keeps them in memory.
type TokenStore interface {
	Get(name string) ([]byte, bool, error)
	Put(name string, v []byte) error
	Delete(name string) error
}

// MemoryStore is a TokenStore in memory: tokens last as long as the
// process. Safe for concurrent use.
type MemoryStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{m: map[string][]byte{}} }

func (s *MemoryStore) Get(name string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[name]
	return v, ok, nil
}

func (s *MemoryStore) Put(name string, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[name] = append([]byte(nil), v...)
	return nil
}

func (s *MemoryStore) Delete(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, name)
	return nil
}
