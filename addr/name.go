package addr

import (
	"errors"
	"fmt"
)

// The one host-name validator: the alphabet and the lengths of a DNS
// name as agentg writes one (labels of letters, digits, '-' and '_', 1 to
// 63 bytes each, at most 253 in all). CanonicalName checks its output
// with it; rules asks IsCanonicalName before it canonicalises (the
// allocation-free fast path); certs asks CheckHostname before it puts a
// name in a certificate.

// nameFault is what scanName found wrong; nameOK when nothing.
type nameFault uint8

const (
	nameOK nameFault = iota
	nameEmpty
	nameTooLong
	nameEmptyLabel
	nameLongLabel
	nameUpper
	nameBadChar
)

// scanName checks b against the alphabet, upper-case letters allowed when
// upper is. It returns what is wrong (bad is the offending byte for
// nameUpper and nameBadChar) and the length of the last label. It does not
// allocate.
func scanName[T string | []byte](b T, upper bool) (fault nameFault, bad byte, last int) {
	if len(b) == 0 {
		return nameEmpty, 0, 0
	}
	if len(b) > 253 {
		return nameTooLong, 0, 0
	}
	label := 0
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '.':
			if label == 0 {
				return nameEmptyLabel, 0, 0
			}
			label = 0
			continue
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		case c >= 'A' && c <= 'Z':
			if !upper {
				return nameUpper, c, 0
			}
		default:
			return nameBadChar, c, 0
		}
		label++
		if label > 63 {
			return nameLongLabel, 0, 0
		}
	}
	if label == 0 {
		return nameEmptyLabel, 0, 0
	}
	return nameOK, 0, label
}

// IsCanonicalName reports whether b is a name CanonicalName returns as
// is: lower-case labels of the alphabet, and a last label that starts with
// a letter (so it can never be an IP literal). It does not allocate: a
// caller asks it first and canonicalises only when it says no.
func IsCanonicalName[T string | []byte](b T) bool {
	fault, _, last := scanName(b, false)
	if fault != nameOK {
		return false
	}
	first := b[len(b)-last]
	return first >= 'a' && first <= 'z'
}

// CheckHostname reports why name is not a DNS name of the alphabet, in
// either letter case, and nil when it is: what may stand as it is in a
// certificate's DNS SAN (no wildcard, no trailing dot, no empty label).
// It does not canonicalise; IP literals are the caller's to tell apart.
func CheckHostname(name string) error {
	fault, bad, _ := scanName(name, true)
	return nameError(len(name), fault, bad)
}

// checkName is CheckHostname for a name already mapped to lower case.
func checkName(name string) error {
	fault, bad, _ := scanName(name, false)
	return nameError(len(name), fault, bad)
}

// nameError says what fault is, of a name of n bytes.
func nameError(n int, fault nameFault, bad byte) error {
	switch fault {
	case nameOK:
		return nil
	case nameEmpty:
		return errors.New("empty name")
	case nameTooLong:
		return fmt.Errorf("name of %d bytes is longer than 253", n)
	case nameEmptyLabel:
		return errors.New("empty label")
	case nameLongLabel:
		return errors.New("label longer than 63 bytes")
	case nameUpper:
		return errors.New("upper-case letter after mapping")
	}
	return fmt.Errorf("character %q not allowed in a host name", bad)
}
