package certs

// IssuerStats is what an Issuer reports for metrics.
type IssuerStats struct {
	Issued    uint64 // leaves signed
	CacheHits uint64 // Leaf calls answered from the cache
}

// Stats returns the issuer's counts as they stand.
func (i *Issuer) Stats() IssuerStats {
	return IssuerStats{Issued: i.issued.Load(), CacheHits: i.hits.Load()}
}
