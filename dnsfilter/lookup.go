package dnsfilter

import (
	"context"
	"strconv"
	"time"
)

// lookup returns the answer for (name, qtype): from the cache when fresh,
// else from the upstreams, with concurrent identical questions sent
// upstream once; a stale answer (within serve_stale) when no upstream
// answers. cached reports an answer from the cache (stale included); one
// fetched by an identical query in flight is not.
func (s *Server) lookup(ps *policyState, name string, qtype uint16) (ent *entry, cached bool, err error) {
	k := cacheKey{name: name, qtype: qtype}
	ent, fresh := s.cache.get(k)
	if fresh {
		return ent, true, nil
	}
	stale := ent
	v, err, _ := s.flight.Do(name+"/"+strconv.Itoa(int(qtype)), func() (any, error) {
		if e, fresh := s.cache.get(k); fresh {
			return e, nil // filled while this flight was being set up
		}
		// The budget is the upstreams' attempts, not the client's
		// patience: a client that gave up does not cancel a lookup
		// others share.
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(max(1, len(ps.fwd.ups)))*ps.fwd.timeout+time.Second)
		defer cancel()
		e, err := ps.fwd.exchange(ctx, name, qtype, ps.set.Cache, s.now, s.isSelf)
		if err != nil {
			s.metrics.UpstreamErrors.Add(1)
			return nil, err
		}
		if e.expires.After(s.now()) {
			s.cache.put(k, e)
		}
		return e, nil
	})
	if err != nil {
		if stale != nil {
			s.metrics.Stale.Add(1)
			return stale, true, nil
		}
		return nil, false, err
	}
	return v.(*entry), false, nil
}
