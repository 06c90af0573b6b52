package app

import (
	"fmt"

	"github.com/agentg/agentg/creds/vault"
)

// openVault opens the encrypted store of the tokens agentg obtains at
// runtime (creds/vault) in the data directory, with the key Config.VaultKey
// names: "" or "file" for <data dir>/vault.key, else a KMS URI. Opened at
// start, so that a key that cannot be read or a KMS that cannot unwrap is
// found now rather than at the first token. Without a data directory there
// is no vault (nil).
func openVault(dataDir, key string) (*vault.Vault, error) {
	if dataDir == "" {
		return nil, nil
	}
	ks, err := vault.ParseKeySource(key)
	if err != nil {
		return nil, err
	}
	v, err := vault.Open(dataDir, ks)
	if err != nil {
		return nil, fmt.Errorf("open the token vault: %w", err)
	}
	return v, nil
}

// Vault is the encrypted store of tokens agentg obtains at runtime (nil
// without a data directory); *vault.Vault is a vault.TokenStore.
func (a *App) Vault() *vault.Vault { return a.vault }
