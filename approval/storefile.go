package approval

import (
	"fmt"
	"io/fs"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// The approvals store's go-memdb plumbing and its file format.

const indexID = "id"

// keyed is a record whose primary key it computes.
type keyed interface{ memKey() string }

// keyIndex indexes records by their memKey; its one argument is the key.
type keyIndex struct{}

func (keyIndex) FromObject(obj any) (bool, []byte, error) {
	k, ok := obj.(keyed)
	if !ok {
		return false, nil, fmt.Errorf("approvals store: %T has no key", obj)
	}
	return true, []byte(k.memKey()), nil
}

func (keyIndex) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("approvals store: key index takes one argument, got %d", len(args))
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("approvals store: key index argument is %T, not string", args[0])
	}
	return []byte(s), nil
}

// fileMode is PendingFile's mode: it says which agents' calls were held.
const fileMode fs.FileMode = 0o600

// marshalFile is PendingFile's JSON: indented, for people who read it.
func marshalFile(v any) ([]byte, error) {
	b, err := json.Marshal(v, jsontext.WithIndent("  "), json.Deterministic(true))
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// unmarshalFile reads PendingFile strictly: duplicate or unknown members
// are errors, not guesses.
func unmarshalFile(b []byte, v any) error {
	return json.Unmarshal(b, v, json.RejectUnknownMembers(true))
}
