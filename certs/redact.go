package certs

// RedactURI is a KMS URI with its PINs and passwords replaced by
// REDACTED, for errors and logs: what the CA shows for its own key, for
// another holder of a KMS key (the vault) to show the same way.
func RedactURI(raw string) string { return redactURI(raw) }
