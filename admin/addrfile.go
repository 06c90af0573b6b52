package admin

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/agentg/agentg/internal/atomicfile"
)

// AddrFile is where a serving agentg writes its admin API's address, in
// its data directory, so that the CLI given the same --data-dir asks that
// agentg and no other (a second agentg on this host, with another data
// directory, may hold the default port).
const AddrFile = "admin.addr"

// WriteAddr records addr (as Listen takes it) in dataDir, atomically: a
// CLI reading it while agentg starts sees the old address or the new,
// never a part.
func WriteAddr(dataDir, addr string) error {
	p := filepath.Join(dataDir, AddrFile)
	if err := atomicfile.Write(p, []byte(addr+"\n"), 0o600); err != nil {
		return fmt.Errorf("admin API: record its address: %w", err)
	}
	return nil
}

// RemoveAddr forgets the address, if it is still addr (another agentg may
// have started on the data directory since).
func RemoveAddr(dataDir, addr string) {
	if got, err := ReadAddr(dataDir); err == nil && got == addr {
		os.Remove(filepath.Join(dataDir, AddrFile))
	}
}

// ReadAddr is the address an agentg serving with dataDir recorded; an
// error wrapping fs.ErrNotExist means none serves (or one that predates
// the file).
func ReadAddr(dataDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, AddrFile))
	if err != nil {
		return "", err
	}
	addr := strings.TrimSpace(string(b))
	if _, _, err := Network(addr); err != nil || addr == "" {
		return "", fmt.Errorf("admin API address in %s: %q is not one", filepath.Join(dataDir, AddrFile), addr)
	}
	return addr, nil
}
