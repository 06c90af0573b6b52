package rules

import (
	"errors"
	"iter"
	"math"
	"slices"
	"unsafe"
)

// The name table is the packed matcher behind every host rule and list
// entry. A million-entry list as a Go map (a string header, a heap string
// and a map bucket per entry) costs hundreds of megabytes and millions of
// pointers for the collector to scan; here all names live in one []byte
// blob and the table is a []uint32 of entry numbers, so the collector sees
// three pointer-free slices however long the lists are.
//
// Names are hashed from their right end. A lookup walks the host right to
// left once; whenever it reaches a label boundary the running hash is the
// hash of that suffix, so every suffix ("a.b.example.com", "b.example.com",
// "example.com", "com") costs one probe and no re-hashing. Candidates are
// confirmed by comparing bytes in the blob, so a hash collision can never
// make a rule match a name it was not written for.

// Entry kinds: how a stored name matches a host.
const (
	kindExact uint8 = 1 // "example.com": the host itself only
	kindSub   uint8 = 2 // "*.example.com": strict subdomains only
	kindTree  uint8 = 3 // ".example.com" and list entries: the name and its subdomains
	kindMask  uint8 = 3

	flagDeny      uint8 = 4
	flagImportant uint8 = 8
)

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// hashStep extends a right-to-left FNV-1a hash by one byte.
func hashStep(h uint64, c byte) uint64 { return (h ^ uint64(c)) * fnvPrime }

// suffixes yields every label-boundary suffix of the canonical name: the
// index i where it starts (i == 0 or name[i-1] == '.') and the
// right-to-left hash of name[i:], shortest suffix ("com") first. It is
// the one walk behind host rules, http rules and intercept rules, so
// every section agrees on which patterns a name can match; it allocates
// nothing.
func suffixes(name string) iter.Seq2[int, uint64] {
	return func(yield func(int, uint64) bool) {
		h := uint64(fnvOffset)
		for i := len(name) - 1; i >= 0; i-- {
			h = hashStep(h, name[i])
			if i > 0 && name[i-1] != '.' {
				continue
			}
			if !yield(i, h) {
				return
			}
		}
	}
}

// suffixRank is the specificity of a pattern of kind stored under
// name[i:] for the host name, the same for host, http and intercept
// rules: the longer the matching suffix the more specific, and at the
// full host exact beats ".name". ok is false when the pattern does not
// match: an exact pattern below the full host, "*.name" at the full host.
func suffixRank(name string, i int, kind uint8) (rank int, ok bool) {
	rank = (len(name) - i) * 2
	switch kind {
	case kindExact:
		if i != 0 {
			return 0, false
		}
		rank++
	case kindSub:
		if i == 0 {
			return 0, false
		}
	}
	return rank, true
}

// nameEntry is one stored (name, rule) pair: 20 bytes, no pointers.
type nameEntry struct {
	off   uint32 // start of the name in blob
	line  uint32 // line of the rule or list entry, for its id
	src   uint32 // index into Engine.sources: which rule or list wrote it
	next  uint32 // next entry with the same name, plus one; 0 ends the chain
	nlen  uint8  // names are at most 253 bytes
	flags uint8
}

// nameTable is the compiled, immutable matcher.
type nameTable struct {
	blob    []byte
	entries []nameEntry
	// slots is an open-addressing table with linear probing. A slot is
	// the head entry's index plus one in the low half and the low 32 bits
	// of its name's hash in the high half, so a probe that meets another
	// name usually stops without touching entries or blob: one cache
	// line per probe on a miss.
	slots []uint64
	shift uint8 // slot = mix(hash) >> shift
}

// nameBuilder collects entries at load time; finish builds the table.
type nameBuilder struct {
	blob    []byte
	entries []nameEntry
	hashes  []uint64 // full hashes, only while building
}

var errTooBig = errors.New("too many list entries (the packed table holds up to 4 GiB of names)")

// add stores one name. name must be canonical (addr.CanonicalName).
func (b *nameBuilder) add(name []byte, flags uint8, line int, src int) error {
	if len(name) == 0 || len(name) > 255 {
		return errors.New("bad name length")
	}
	if len(b.blob)+len(name) > math.MaxUint32 || len(b.entries) >= math.MaxUint32-1 {
		return errTooBig
	}
	h := uint64(fnvOffset)
	for i := len(name) - 1; i >= 0; i-- {
		h = hashStep(h, name[i])
	}
	b.entries = append(b.entries, nameEntry{
		off:   uint32(len(b.blob)),
		line:  uint32(min(line, math.MaxUint32)),
		src:   uint32(src),
		nlen:  uint8(len(name)),
		flags: flags,
	})
	b.hashes = append(b.hashes, h)
	b.blob = append(b.blob, name...)
	return nil
}

// reserve makes room for about n more entries and size more name bytes,
// so a big list is not copied again and again as the slices grow.
func (b *nameBuilder) reserve(n, size int) {
	b.entries = slices.Grow(b.entries, n)
	b.hashes = slices.Grow(b.hashes, n)
	b.blob = slices.Grow(b.blob, size)
}

func slotOf(h uint64, shift uint8) uint32 {
	// Fibonacci mixing: FNV's low bits are weak for short keys.
	return uint32((h * 0x9E3779B97F4A7C15) >> shift)
}

// finish builds the hash table. Entries equal in name, source and flags
// (the same domain twice in one list) are dropped; dup[src] counts them.
func (b *nameBuilder) finish(dup []int) nameTable {
	n := len(b.entries)
	bits := uint8(4)
	for (1<<bits)/2 < n { // load factor at most 1/2
		bits++
	}
	t := nameTable{
		blob:  b.blob,
		slots: make([]uint64, 1<<bits),
		shift: 64 - bits,
	}
	mask := uint32(len(t.slots) - 1)
	kept := b.entries[:0] // compact in place: dropped entries leave no hole
	for i := range b.entries {
		e := b.entries[i]
		h := b.hashes[i]
		name := string(b.blob[e.off : e.off+uint32(e.nlen)])
		s := slotOf(h, t.shift)
		for {
			sv := t.slots[s]
			if sv == 0 {
				kept = append(kept, e)
				t.slots[s] = h<<32 | uint64(len(kept))
				break
			}
			v := uint32(sv)
			head := &kept[v-1]
			if uint32(sv>>32) == uint32(h) && head.nlen == e.nlen && string(b.blob[head.off:head.off+uint32(head.nlen)]) == name {
				isDup := false
				for c := v; c != 0; c = kept[c-1].next {
					if o := kept[c-1]; o.src == e.src && o.flags == e.flags {
						isDup = true
						break
					}
				}
				if isDup {
					dup[e.src]++
				} else {
					e.next = v
					kept = append(kept, e)
					t.slots[s] = h<<32 | uint64(len(kept))
				}
				break
			}
			s = (s + 1) & mask
		}
	}
	// Shrink to fit: the builder's slices grew by doubling.
	t.entries = append([]nameEntry(nil), kept...)
	t.blob = append([]byte(nil), b.blob...)
	*b = nameBuilder{}
	return t
}

// find returns the head of the chain of entries stored for name (whose
// right-to-left hash is h), plus one; 0 when there is none.
func (t *nameTable) find(h uint64, name string) uint32 {
	if len(t.slots) == 0 {
		return 0
	}
	mask := uint32(len(t.slots) - 1)
	tag := uint32(h)
	for s := slotOf(h, t.shift); ; s = (s + 1) & mask {
		sv := t.slots[s]
		if sv == 0 {
			return 0
		}
		if uint32(sv>>32) != tag {
			continue
		}
		e := &t.entries[uint32(sv)-1]
		if int(e.nlen) == len(name) && string(t.blob[e.off:e.off+uint32(e.nlen)]) == name {
			return uint32(sv)
		}
	}
}

// bytesMemory is the table's size in bytes, for Stats.
func (t *nameTable) bytesMemory() int {
	return len(t.blob) + len(t.entries)*int(unsafe.Sizeof(nameEntry{})) + len(t.slots)*8
}
